"""Every error each ``/public`` event can answer, and that the connection
that got it goes on working, with nothing written."""
from __future__ import annotations

import pytest

from app import create_app
from app.extensions import db, socketio
from app.services.connections import live
from tests.conftest import AuthActions, _reset_process_state, call

from .conftest import drain, joined, public_room, received, sent, snapshot

ACKED_EVENTS = ["rooms:list", "room:create", "room:join", "room:leave", "room:invite",
                "message:send", "message:history", "message:edit", "message:delete",
                "room:read", "dm:open", "message:search"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """#general (public, alice owns it, bob joined), #secret (private, alice
    only), one message of alice's in each; carol is connected and a member of
    nothing; dave exists but never connected.

    One scene serves the whole module: every test here shows that its event
    wrote nothing, so the next test finds the scene as it was.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("PARLEY_ENV", "testing")
        database = tmp_path_factory.mktemp("errors") / "scene.sqlite3"
        app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    with app.app_context():
        db.create_all()
    _reset_process_state()
    auth = AuthActions(app)
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    auth.create("dave")
    public_room(alice, "General")
    secret = public_room(alice, "Secret", private=True)
    joined(bob, "general")
    ids = {"general": sent(alice, "general")["id"], "secret": sent(alice, secret)["id"],
           "room:secret": secret}
    yield {"app": app, "alice": alice, "bob": bob, "carol": carol, "ids": ids}
    _reset_process_state()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def quiet(scene):
    """The scene, with what its clients received so far forgotten."""
    drain(scene["alice"], scene["bob"], scene["carol"])
    return scene


def resolve(payload, ids):
    """``"#general"`` in a payload stands for the id of the scene's message there,
    and the room ``"secret"`` for the private room's (unlisted) slug."""
    if not isinstance(payload, dict):
        return payload
    return {k: ids[v[1:]] if isinstance(v, str) and v.startswith("#")
            else ids["room:secret"] if k == "room" and v == "secret" else v
            for k, v in payload.items()}


CASES = [
    # (who, event, payload, code, field)
    ("alice", "rooms:list", [], "invalid", "payload"),
    ("alice", "room:create", {"name": ""}, "invalid", "name"),
    ("bob", "room:create", {"name": "GENERAL"}, "conflict", "name"),
    ("bob", "room:join", {"room": "general", "since": -1}, "invalid", "since"),
    ("bob", "room:join", {"room": "nowhere"}, "not_found", "room"),
    ("bob", "room:leave", {}, "invalid", "room"),
    ("bob", "room:leave", {"room": "nowhere"}, "not_found", "room"),
    ("alice", "room:invite", {"room": "general"}, "invalid", "user"),
    ("alice", "room:invite", {"room": "nowhere", "user": "dave"}, "not_found", "room"),
    ("alice", "room:invite", {"room": "general", "user": "nobody"}, "not_found", "user"),
    ("carol", "room:invite", {"room": "general", "user": "dave"}, "forbidden", "room"),
    ("bob", "message:send", {"room": "general", "body": "", "client_id": "x"}, "invalid",
     "body"),
    ("bob", "message:send", {"room": "nowhere", "body": "hi", "client_id": "x"}, "not_found",
     "room"),
    ("carol", "message:send", {"room": "general", "body": "hi", "client_id": "x"}, "forbidden",
     "room"),
    ("bob", "message:history", {"room": "general", "limit": 0}, "invalid", "limit"),
    ("bob", "message:history", {"room": "nowhere"}, "not_found", "room"),
    ("carol", "message:history", {"room": "general"}, "forbidden", "room"),
    ("alice", "message:edit", {"id": "#general", "body": " "}, "invalid", "body"),
    ("alice", "message:edit", {"id": 10**9, "body": "x"}, "not_found", "id"),
    ("bob", "message:edit", {"id": "#general", "body": "x"}, "forbidden", "id"),
    ("alice", "message:delete", {"id": -1}, "invalid", "id"),
    ("alice", "message:delete", {"id": 10**9}, "not_found", "id"),
    ("bob", "message:delete", {"id": "#general"}, "forbidden", "id"),
    ("bob", "room:read", {"room": "general"}, "invalid", "last_read_id"),
    ("bob", "room:read", {"room": "nowhere", "last_read_id": 1}, "not_found", "room"),
    ("carol", "room:read", {"room": "general", "last_read_id": 1}, "forbidden", "room"),
    ("alice", "dm:open", {"user": "alice"}, "invalid", "user"),
    ("alice", "dm:open", {"user": 5}, "invalid", "user"),
    ("alice", "dm:open", {"user": "nobody"}, "not_found", "user"),
    ("bob", "message:search", {"query": '" * :'}, "invalid", "query"),
    ("bob", "message:search", {"query": "hi", "room": "nowhere"}, "not_found", "room"),
    ("bob", "message:search", {"query": "hi", "author": "nobody"}, "not_found", "user"),
    ("bob", "message:search", {"query": "hi", "cursor": "n1; DROP"}, "invalid", "cursor"),
    ("bob", "message:search", {"query": "hi", "after": "2026-12-02", "before": "2026-12-01"},
     "invalid", "payload"),
]


@pytest.mark.parametrize("who, event, payload, code, field", CASES,
                         ids=[f"{c[1]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_each_error_is_a_clear_ack_that_writes_nothing_and_keeps_the_connection(
        quiet, who, event, payload, code, field):
    scene, app = quiet, quiet["app"]
    sock = scene[who]
    before = snapshot(app)
    ack = call(sock, event, resolve(payload, scene["ids"]))
    assert ack["ok"] is False
    assert ack["error"]["code"] == code
    assert ack["error"]["field"] == field
    assert isinstance(ack["error"]["message"], str) and ack["error"]["message"]
    assert snapshot(app) == before
    assert [received(scene[n]) for n in ("alice", "bob", "carol")] == [[], [], []]
    assert sock.is_connected("/public")
    assert call(sock, "rooms:list")["ok"]
    assert call(sock, "message:history", {"room": "general"})["ok"] is (who != "carol")


OUTSIDER_CASES = [
    ("room:join", {"room": "secret"}),
    ("room:join", {"room": "secret", "since": 0}),
    ("message:history", {"room": "secret"}),
    ("message:history", {"room": "secret", "after": 0}),
    ("message:send", {"room": "secret", "body": "let me in", "client_id": "x"}),
    ("room:invite", {"room": "secret", "user": "carol"}),
    ("room:invite", {"room": "secret", "user": "bob"}),
    ("room:read", {"room": "secret", "last_read_id": 1}),
    ("room:leave", {"room": "secret"}),
    ("message:edit", {"id": "#secret", "body": "mine now"}),
    ("message:delete", {"id": "#secret"}),
    ("message:search", {"query": "hello", "room": "secret"}),
]


@pytest.mark.parametrize("event, payload", OUTSIDER_CASES)
def test_a_private_room_answers_outsiders_not_found(quiet, event, payload):
    scene, app = quiet, quiet["app"]
    before = snapshot(app)
    for outsider in ("bob", "carol"):  # a member elsewhere, and a member of nothing
        ack = call(scene[outsider], event, resolve(payload, scene["ids"]))
        assert ack["ok"] is False and ack["error"]["code"] == "not_found", (outsider, ack)
    # Word for word what a room that does not exist answers.
    unknown = call(scene["carol"], event, {**resolve(payload, scene["ids"]), "room": "nope"})
    if "room" in payload:
        assert ack["error"] == unknown["error"]
    assert snapshot(app) == before
    assert [received(scene[n]) for n in ("alice", "bob", "carol")] == [[], [], []]


@pytest.mark.parametrize("event", ACKED_EVENTS)
def test_every_event_of_a_connection_that_is_not_signed_in_answers_unauthenticated(
        app, auth, event):
    alice = auth.socket("alice")
    assert call(alice, "room:create", {"name": "General"})["ok"]
    sid = socketio.server.manager.sid_from_eio_sid(alice.eio_sid, "/public")
    # What the registry holds is what the server knows of who is signed in.
    live.public.remove(sid)
    before = snapshot(app)
    ack = call(alice, event, {"room": "general", "name": "x", "user": "alice", "id": 1,
                              "body": "x", "client_id": "x", "last_read_id": 1})
    assert ack == {"ok": False, "error": {"code": "unauthenticated",
                                          "message": "this connection is not signed in"}}
    assert snapshot(app) == before
