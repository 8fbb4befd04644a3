"""The socket edge: the database session goes back to the pool after every
event, and an unexpected failure is an ``internal`` ack, logged, that leaves
the connection usable and nothing half-written."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import Room
from app.services import rooms
from tests.conftest import AuthActions, _reset_process_state, call

from .conftest import in_db, joined, public_room, send, sent, snapshot

INTERNAL = {"ok": False, "error": {"code": "internal", "message": "internal error"}}


@pytest.fixture
def small_pool_app(tmp_path, monkeypatch):
    """The app on a pool of ONE connection that waits at most 1 s for it: an
    event that kept its connection would starve the next one."""
    monkeypatch.setenv("PARLEY_ENV", "testing")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'pool.sqlite3'}",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0, "pool_timeout": 1},
    })
    with app.app_context():
        db.create_all()
        pool = db.engine.pool
    _reset_process_state()
    app.pool = pool
    yield app
    _reset_process_state()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_every_event_returns_its_database_connection_to_the_pool(small_pool_app):
    app = small_pool_app
    assert app.pool.size() == 1
    auth = AuthActions(app)
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = public_room(alice)
    joined(bob, slug)
    dm = call(alice, "dm:open", {"user": "bob"})["room"]["slug"]
    events = [
        ("rooms:list", {}, True),
        ("room:join", {"room": slug, "since": 0}, True),
        ("message:history", {"room": slug, "limit": 5}, True),
        ("room:read", {"room": slug, "last_read_id": 10**6}, True),
        ("room:invite", {"room": slug, "user": "bob"}, True),
        ("dm:open", {"user": "bob"}, True),
        ("message:history", {"room": dm}, True),
        # errors too: each has touched the database before refusing
        ("room:join", {"room": "nowhere"}, False),
        ("room:create", {"name": "General"}, False),
        ("message:edit", {"id": 10**9, "body": "x"}, False),
        ("message:delete", {"id": 10**9}, False),
        ("room:invite", {"room": slug, "user": "nobody"}, False),
        ("message:send", {"room": slug, "body": " ", "client_id": "x"}, False),
        ("rooms:list", [], False),
        ("no:such-event", {}, False),
    ]
    count = 0
    for round_ in range(15):
        for event, payload, ok in events:
            assert call(alice, event, payload)["ok"] is ok, (round_, event)
            count += 1
            assert app.pool.checkedout() == 0, (round_, event)
        message = sent(bob, slug, f"round {round_}")
        assert call(bob, "message:edit", {"id": message["id"], "body": "edited"})["ok"]
        assert call(bob, "message:delete", {"id": message["id"]})["ok"]
        count += 3
        assert app.pool.checkedout() == 0
    assert count > 250


def test_the_edge_itself_returns_the_connection_even_when_the_context_lives_on(
        small_pool_app):
    """Flask-SocketIO happens to pop a request context per event today; the
    edge does not count on it. Here one context serves many events, as a
    server that keeps a context per connection would."""
    from flask import request

    from app.extensions import socketio

    app = small_pool_app
    alice = AuthActions(app).socket("alice")
    sid = socketio.server.manager.sid_from_eio_sid(alice.eio_sid, "/public")
    namespace = socketio.server.namespace_handlers["/public"]
    with app.test_request_context():
        request.sid = sid
        for i in range(5):
            assert namespace.on_room_create({"name": f"Room {i}"})["ok"]
            assert app.pool.checkedout() == 0
            assert namespace.on_rooms_list({})["ok"]
            assert app.pool.checkedout() == 0
            assert namespace.on_room_join({"room": "nowhere"})["error"]["code"] == "not_found"
            assert app.pool.checkedout() == 0


def test_connecting_and_disconnecting_return_the_connection_to_the_pool(small_pool_app):
    app = small_pool_app
    auth = AuthActions(app)
    for i in range(20):
        sock = auth.socket(f"user{i}")
        assert app.pool.checkedout() == 0
        sock.disconnect("/public")
        assert app.pool.checkedout() == 0


def test_an_unexpected_failure_answers_internal_is_logged_and_the_connection_goes_on(
        app, auth, monkeypatch, caplog):
    alice = auth.socket("alice")

    def broken(actor):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(rooms, "list_rooms", broken)
    with caplog.at_level(logging.ERROR, logger="app.sockets.edge"):
        assert call(alice, "rooms:list", {}) == INTERNAL
    [record] = [r for r in caplog.records if r.name == "app.sockets.edge"]
    assert record.levelno == logging.ERROR
    assert "on_rooms_list failed" in record.getMessage()
    assert record.exc_info[0] is RuntimeError
    # The detail stays in the log: the client learns nothing of it.
    assert "fire" not in str(INTERNAL)
    assert alice.is_connected("/public")
    assert call(alice, "room:create", {"name": "General"})["ok"]
    monkeypatch.undo()
    assert [r["slug"] for r in call(alice, "rooms:list", {})["rooms"]] == ["general"]


def test_a_failure_half_way_through_a_write_leaves_nothing_stored(app, auth, monkeypatch):
    alice, _ = auth.socket("alice"), auth.socket("bob")
    before = snapshot(app)

    def broken(room, user_id):
        raise RuntimeError("lost the connection mid-transaction")

    # dm:open has flushed the new room when it adds the members.
    monkeypatch.setattr(rooms, "_add_member", broken)
    assert call(alice, "dm:open", {"user": "bob"}) == INTERNAL
    assert snapshot(app) == before
    monkeypatch.undo()
    assert call(alice, "dm:open", {"user": "bob"})["ok"]
    assert len(in_db(app, select(Room))) == 1


def test_a_failure_in_a_send_is_internal_and_the_next_send_works(app, auth, monkeypatch):
    from app.services import messages

    alice = auth.socket("alice")
    slug = public_room(alice)

    def broken(body):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(messages, "check_body", broken)
    assert send(alice, slug, "lost", "c-1") == INTERNAL
    monkeypatch.undo()
    assert send(alice, slug, "kept", "c-1")["message"]["body"] == "kept"
