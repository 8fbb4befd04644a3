"""Connecting to ``/public``: who is let in, and events that name no handler."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.extensions import db, socketio
from app.models import LoginSession, User
from app.services import users
from app.services.connections import live
from tests.conftest import call

from .conftest import public_room, sent

PUBLIC = "/public"


def connect(app, http=None):
    return socketio.test_client(app, namespace=PUBLIC, flask_test_client=http)


def test_a_signed_in_user_connects_and_is_registered(app, auth):
    alice = auth.socket("alice")
    assert alice.is_connected(PUBLIC)
    assert len(live.public) == 1
    assert call(alice, "rooms:list", {}) == {"ok": True, "rooms": []}


def test_a_connection_without_a_session_is_refused(app):
    sock = connect(app)
    assert not sock.is_connected(PUBLIC)
    assert len(live.public) == 0


def test_a_connection_with_a_signed_out_session_is_refused(app, auth):
    auth.create("alice")
    http = auth.login("alice")
    assert http.post("/logout").status_code == 303
    assert not connect(app, http).is_connected(PUBLIC)


def test_a_connection_with_a_session_revoked_elsewhere_is_refused(app, auth):
    auth.create("alice")
    http = auth.login("alice")
    with app.app_context():
        # The cookie still names the session; only the database says it ended.
        token = db.session.scalars(select(LoginSession.token)).one()
        users.end_session(token)
        db.session.remove()
    assert not connect(app, http).is_connected(PUBLIC)


def test_signing_out_closes_the_sessions_open_connections(app, auth):
    alice = auth.socket("alice")
    assert alice.http.post("/logout").status_code == 303
    assert not alice.is_connected(PUBLIC)
    assert len(live.public) == 0


def test_a_banned_user_is_refused_at_connect(app, auth):
    auth.create("mallory")
    http = auth.login("mallory")
    with app.app_context():
        db.session.execute(update(User).values(banned=True))
        db.session.commit()
        db.session.remove()
    assert not connect(app, http).is_connected(PUBLIC)
    assert len(live.public) == 0


def test_an_unknown_event_answers_not_found_and_the_connection_stays_usable(auth):
    alice = auth.socket("alice")
    ack = call(alice, "room:explode", {"room": "general"})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "not_found"
    assert call(alice, "rooms:list", {})["ok"]


def test_a_client_event_named_disconnect_does_not_sign_the_connection_out(app, auth):
    alice = auth.socket("alice")
    slug = public_room(alice)
    ack = call(alice, "disconnect", {})
    assert ack["error"]["code"] == "not_found"
    assert alice.is_connected(PUBLIC) and len(live.public) == 1
    assert sent(alice, slug)["room"] == slug


def test_a_client_event_named_connect_does_not_register_the_connection_twice(app, auth):
    alice = auth.socket("alice")
    slug = public_room(alice)
    ack = call(alice, "connect", {})
    assert ack["error"]["code"] == "not_found"
    # The connection keeps the rooms it joined, and counts once: when it
    # closes, its user is offline.
    alice_id = sent(alice, slug)["user"]["id"]
    alice.disconnect(PUBLIC)
    assert len(live.public) == 0
    assert not live.presence.is_user_online(alice_id)


@pytest.mark.parametrize("name", ["null", "5", '["room:join"]', '{"room": "x"}', "true"])
def test_an_event_whose_name_is_not_text_answers_not_found(auth, name):
    alice = auth.socket("alice")
    # Raw Socket.IO packets: official clients only send text names, others may not.
    socketio.server._handle_eio_message(alice.eio_sid, f'2/public,7[{name},{{}}]')
    assert alice.acks["args"][0]["error"]["code"] == "not_found"
    assert alice.is_connected(PUBLIC)
    assert call(alice, "rooms:list", {})["ok"]


def test_events_reuse_the_connections_session_instead_of_reopening_the_cookie(app, auth, monkeypatch):
    from flask.sessions import SecureCookieSessionInterface

    opened = []
    original = SecureCookieSessionInterface.open_session

    def counting(self, app_, request):
        opened.append(request.path)
        return original(self, app_, request)

    monkeypatch.setattr(SecureCookieSessionInterface, "open_session", counting)
    alice = auth.socket("alice")
    assert opened, "the connection opens the cookie session once"
    opened.clear()
    for _ in range(3):
        assert call(alice, "rooms:list", {})["ok"]
    assert opened == []
    # HTTP requests still read the cookie.
    assert alice.http.get("/").status_code == 200
    assert opened == ["/"]


def test_an_error_inside_connect_refuses_instead_of_retrying_without_auth(app, auth, monkeypatch):
    # Flask-SocketIO calls a connect handler that raised TypeError once more
    # without ``auth``: a token (or presence) connect would become a cookie one.
    from app.sockets.public import PublicNamespace

    calls = []

    def broken(self, user, auth_payload):
        calls.append(auth_payload)
        raise TypeError("a bug in admit")

    monkeypatch.setattr(PublicNamespace, "admit", broken)
    auth.create("alice")
    http = auth.login("alice")
    sock = socketio.test_client(app, namespace=PUBLIC, flask_test_client=http,
                                auth={"presence": "each"})
    assert not sock.is_connected(PUBLIC)
    assert calls == [{"presence": "each"}]
    assert len(live.public) == 0
