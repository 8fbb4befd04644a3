"""The change log on the socket: cursors on live events and acks, catch-up with ``cursor``.

A client that was away rejoins with the last ``cursor`` it saw and gets
every change it missed (new messages, edits, deletions, room changes,
members), in order, exactly as a joined connection received them live.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Room, RoomChange, utcnow
from app.services import changes
from tests.conftest import call, received

from .conftest import drain, in_db, joined, public_room, sent


@pytest.fixture
def room(auth):
    """alice owns #general and has joined it; bob has joined it too."""
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob)
    return alice, bob


def cursor_of(sock, slug: str = "general") -> int:
    ack = call(sock, "message:history", {"room": slug, "limit": 1})
    assert ack["ok"], ack
    return ack["cursor"]


def room_events(sock) -> list[dict]:
    """What ``sock`` received since the last look, presence aside, as ``room:join``
    lists changes: ``{"event", "data"}``."""
    return [{"event": p["name"], "data": p["args"][0] if isinstance(p["args"], list) else p["args"]}
            for p in sock.get_received("/public") if p["name"] != "presence"]


# -- cursors ------------------------------------------------------------------

def test_every_room_event_carries_its_cursor_and_cursors_only_grow(room):
    alice, bob = room
    first = sent(alice, "general", "one")
    call(alice, "message:edit", {"id": first["id"], "body": "one!"})
    call(alice, "message:delete", {"id": first["id"]})
    call(alice, "room:update", {"room": "general", "topic": "news"})
    cursors = [change["data"]["cursor"] for change in room_events(bob)]
    assert len(cursors) == 4
    assert cursors == sorted(cursors) and len(set(cursors)) == 4
    assert cursor_of(bob) == cursors[-1]


def test_join_and_history_acks_carry_the_rooms_current_cursor(room):
    alice, bob = room
    before = call(bob, "room:join", {"room": "general"})["cursor"]
    sent(alice, "general")
    after = call(bob, "room:join", {"room": "general"})["cursor"]
    assert isinstance(before, int) and after == before + 1
    assert cursor_of(bob) == after


# -- catch-up -------------------------------------------------------------------

def test_a_client_away_gets_every_change_it_missed_in_order_as_it_was_sent_live(auth, room):
    alice, bob = room
    old = sent(alice, "general", "old news")
    doomed = sent(alice, "general", "to be retracted")
    watcher = auth.socket("carol")
    joined(watcher, "general")
    drain(watcher)
    cursor = cursor_of(bob)
    bob.disconnect("/public")  # away
    call(alice, "message:edit", {"id": old["id"], "body": "old news, corrected"})
    call(alice, "message:delete", {"id": doomed["id"]})
    call(alice, "room:update", {"room": "general", "topic": "corrections"})
    new = sent(alice, "general", "while you were away")
    live = room_events(watcher)

    back = auth.socket("bob")
    ack = call(back, "room:join", {"room": "general", "cursor": cursor})
    assert ack["ok"] is True
    assert ack["changes"] == live
    assert [c["event"] for c in ack["changes"]] == [
        "message:updated", "message:deleted", "room:updated", "message"]
    assert ack["changes"][-1]["data"]["id"] == new["id"]
    assert ack["messages"] == [] and ack["has_more"] is False
    assert ack["cursor"] == ack["changes"][-1]["data"]["cursor"]
    assert "reset" not in ack
    assert ack["room"]["topic"] == "corrections"


def test_catch_up_pages_on_with_message_history_cursor(room):
    alice, bob = room
    cursor = cursor_of(bob)
    bodies = [sent(alice, "general", f"m{i}")["body"] for i in range(7)]
    ack = call(bob, "room:join", {"room": "general", "cursor": cursor, "limit": 3})
    seen = [c["data"]["body"] for c in ack["changes"]]
    assert ack["has_more"] is True and len(seen) == 3
    while ack["has_more"]:
        ack = call(bob, "message:history", {"room": "general", "cursor": ack["cursor"],
                                            "limit": 3})
        assert ack["ok"], ack
        seen += [c["data"]["body"] for c in ack["changes"]]
    assert seen == bodies
    again = call(bob, "message:history", {"room": "general", "cursor": ack["cursor"]})
    assert again["changes"] == [] and again["has_more"] is False
    assert again["cursor"] == ack["cursor"]


def test_since_keeps_working_beside_cursor(room):
    alice, bob = room
    first = sent(alice, "general", "a")
    second = sent(alice, "general", "b")
    ack = call(bob, "room:join", {"room": "general", "since": first["id"]})
    assert [m["id"] for m in ack["messages"]] == [second["id"]]
    assert "changes" not in ack


@pytest.mark.parametrize("event, payload", [
    ("room:join", {"room": "general", "since": 1, "cursor": 1}),
    ("message:history", {"room": "general", "cursor": 1, "after": 1}),
    ("message:history", {"room": "general", "cursor": -1}),
    ("room:join", {"room": "general", "cursor": "5"}),
])
def test_a_bad_cursor_answers_invalid(room, event, payload):
    _, bob = room
    ack = call(bob, event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"


def test_a_cursor_this_room_never_reached_answers_reset_with_the_latest_page(room):
    alice, bob = room
    message = sent(alice, "general")
    ack = call(bob, "room:join", {"room": "general", "cursor": 10**9})
    assert ack["reset"] is True and ack["changes"] == []
    assert ack["messages"] == [message] and ack["cursor"] == cursor_of(bob)


# -- deletion compacts the log ------------------------------------------------------

def test_deleting_a_message_removes_its_text_from_the_log(app, room):
    alice, bob = room
    cursor = cursor_of(bob)
    message = sent(alice, "general", "my secret phone number")
    call(alice, "message:edit", {"id": message["id"], "body": "my secret, edited"})
    call(alice, "message:delete", {"id": message["id"]})
    ack = call(bob, "room:join", {"room": "general", "cursor": cursor})
    assert [c["event"] for c in ack["changes"]] == ["message:deleted"]
    payloads = [p for (p,) in in_db(app, select(RoomChange.payload))]
    assert not any("secret" in p for p in payloads)


# -- retention ----------------------------------------------------------------------

def test_pruning_keeps_the_newest_entries_and_a_pruned_cursor_answers_reset(app, room):
    alice, bob = room
    start = cursor_of(bob)
    for i in range(6):
        sent(alice, "general", f"m{i}")
    app.config.update(CHANGE_LOG_RETENTION_ENTRIES=2, CHANGE_LOG_RETENTION_DAYS=1)
    with app.app_context():
        # Nothing is a day old yet: the age window keeps everything.
        assert changes.prune() == 0
        assert changes.prune(now=utcnow() + timedelta(days=2)) > 0
        db.session.remove()
    newest = cursor_of(bob)
    kept = [p for (p,) in in_db(app, select(RoomChange.position).order_by(RoomChange.position))]
    assert kept == [newest - 1, newest]
    assert in_db(app, select(Room.floor_position))[0][0] == newest - 2
    ack = call(bob, "room:join", {"room": "general", "cursor": start})
    assert ack["reset"] is True and [m["body"] for m in ack["messages"]][-1] == "m5"
    # At the floor itself nothing is missing.
    ack = call(bob, "message:history", {"room": "general", "cursor": newest - 2})
    assert "reset" not in ack and len(ack["changes"]) == 2


# -- membership and room changes ------------------------------------------------------

def test_members_joining_and_leaving_are_room_changes(app, auth, room):
    alice, bob = room
    carol = auth.socket("carol")
    joined(carol, "general")
    assert call(carol, "room:leave", {"room": "general"})["ok"]
    events = [(c["event"], c["data"]["user"]["username"]) for c in room_events(alice)
              if c["event"].startswith("member:")]
    assert events == [("member:added", "carol"), ("member:removed", "carol")]
    # The leaver's connections stop receiving the room before it hears of it.
    assert received(carol, "member:removed") == []


def test_the_owner_renames_a_room_and_changes_its_topic(room):
    alice, bob = room
    ack = call(alice, "room:update", {"room": "general", "name": "General chat",
                                      "topic": "anything goes"})
    assert ack["ok"] is True
    assert ack["room"]["slug"] == "general" and ack["room"]["name"] == "General chat"
    [update] = [p for p in received(bob, "room:updated")]
    assert update == {"room": "general", "name": "General chat", "topic": "anything goes",
                      "cursor": update["cursor"]}


@pytest.mark.parametrize("payload, code", [
    ({"room": "general", "topic": "mine now"}, "forbidden"),   # bob is not the owner
    ({"room": "nowhere", "topic": "x"}, "not_found"),
    ({"room": "general", "name": ""}, "invalid"),
    ({"room": "general", "topic": "x" * 257}, "invalid"),
])
def test_a_room_update_by_anyone_but_the_owner_or_an_admin_is_refused(app, room, payload,
                                                                      code):
    alice, bob = room
    sock = bob if code == "forbidden" else alice
    before = in_db(app, select(Room.name, Room.topic, Room.last_position))
    ack = call(sock, "room:update", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert in_db(app, select(Room.name, Room.topic, Room.last_position)) == before
    assert received(bob, "room:updated") == []


def test_an_admin_may_update_any_room(auth, room):
    _, bob = room
    auth.create("root", admin=True)
    root = auth.socket("root")
    assert call(root, "room:update", {"room": "general", "topic": "moderated"})["ok"]
    assert received(bob, "room:updated")[0]["topic"] == "moderated"


# -- published after commit, or not at all --------------------------------------------

def test_a_rolled_back_change_is_neither_stored_nor_published(app, room, monkeypatch):
    alice, bob = room
    from app.services import rooms as room_service

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(room_service, "room_to_public", fail)  # after the record, before commit
    before = in_db(app, select(Room.topic, Room.last_position))
    ack = call(alice, "room:update", {"room": "general", "topic": "never"})
    assert ack["error"]["code"] == "internal"
    assert in_db(app, select(Room.topic, Room.last_position)) == before
    assert received(bob) == []
    # The next change is published normally (nothing stale left in the outbox).
    monkeypatch.undo()
    sent(alice, "general", "after")
    assert [m["body"] for m in received(bob, "message")] == ["after"]


def test_an_audit_entry_is_written_with_its_action_or_not_at_all(app, auth, monkeypatch):
    from app.services import users
    from tests.admin.conftest import ADMIN, acall, pushed

    auth.create("root", admin=True)
    auth.create("mallory")
    console = auth.socket("root", namespace=ADMIN)

    def fail(user):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(users, "end_all_sessions", fail)
    ack = acall(console, "user:ban", {"user": "mallory"})
    assert ack["error"]["code"] == "internal"
    assert in_db(app, select(AuditEntry.action)) == []
    assert pushed(console, "audit") == []
    monkeypatch.undo()
    assert acall(console, "user:ban", {"user": "mallory"})["ok"]
    assert [a for (a,) in in_db(app, select(AuditEntry.action))] == ["user:ban"]
    assert [e["action"] for e in pushed(console, "audit")] == ["user:ban"]


def test_operators_can_prune_from_the_command_line(app, room, runner):
    alice, _ = room
    for i in range(4):
        sent(alice, "general", f"m{i}")
    app.config.update(CHANGE_LOG_RETENTION_ENTRIES=1, CHANGE_LOG_RETENTION_DAYS=0)
    result = runner.invoke(args=["prune-changes"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("removed ") and result.output.split()[1] != "0"
    assert len(in_db(app, select(RoomChange.position))) == 1
