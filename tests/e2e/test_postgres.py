"""The server on PostgreSQL: messages are rows there, and a DB wait never stalls the worker.

The chat path itself (send, receive, catch-up, retry) runs on PostgreSQL too:
see ``BOTH_DATABASES`` in test_chat.py.
"""
from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
import requests

from tests.support.server import wait_until

from .conftest import NS

pytestmark = [pytest.mark.e2e, pytest.mark.postgres,
              pytest.mark.parametrize("target", ["postgres"], indirect=True)]


@pytest.fixture
def database(postgres_url):
    """A psycopg connection to the server's database, to look at its rows."""
    with psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://", 1),
                         autocommit=True) as conn:
        yield conn


def test_the_server_stores_messages_in_postgresql(target, peers, database):
    assert requests.get(target.url + "/healthz", timeout=10).json()["db"] == "ok"
    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    client_id = uuid.uuid4().hex

    first = alice.send(room, "kept in postgres", client_id=client_id)
    again = alice.send(room, "kept in postgres", client_id=client_id)

    assert again == first
    rows = database.execute(
        "SELECT m.id, m.body FROM messages m JOIN rooms r ON r.id = m.room_id"
        " WHERE r.slug = %s AND m.client_id = %s", (room, client_id)).fetchall()
    assert rows == [(first["id"], "kept in postgres")]


def waiting_on_locks(database) -> int:
    return database.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'").fetchone()[0]


def test_sends_complete_while_another_request_waits_on_the_database(target, peers, database,
                                                                     postgres_url):
    # psycopg's C wait function would block the whole gevent worker while one
    # request waits on PostgreSQL; under gevent it must use a cooperative wait.
    # A row lock held from here makes one request wait as long as we like.
    waiter = peers("alice")
    locked_room = waiter.create_room()
    waiter.ok("room:join", {"room": locked_room})
    # Five clients, each its own signed-in session.
    senders = [peers(name) for name in ("alice", "bob", "alice", "bob", "alice")]
    busy_room = senders[0].create_room()
    for sender in senders:
        sender.ok("room:join", {"room": busy_room})

    lock = psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://", 1))
    try:
        lock.execute("SELECT id FROM rooms WHERE slug = %s FOR UPDATE", (locked_room,))
        waiting: list[dict] = []
        waiter.sio.emit("message:send", {"room": locked_room, "body": "waits for the lock",
                                        "client_id": uuid.uuid4().hex},
                       namespace=NS, callback=waiting.append)
        wait_until(lambda: waiting_on_locks(database) >= 1, 10,
                   message="the send never reached the row lock")

        acks: list[dict] = []
        guard = threading.Lock()

        def keep(ack):
            with guard:
                acks.append(ack)

        for i in range(20):
            for sender in senders:
                sender.sio.emit("message:send",
                                {"room": busy_room, "body": f"{sender.username} {i}",
                                 "client_id": uuid.uuid4().hex},
                                namespace=NS, callback=keep)
        wait_until(lambda: len(acks) == 100, 30,
                   message=f"{len(acks)} of 100 sends acked while one request waited on the DB")
        assert all(ack["ok"] for ack in acks), [a for a in acks if not a["ok"]][:3]
        assert waiting == [], "the locked send cannot have committed yet"
    finally:
        lock.rollback()
        lock.close()

    wait_until(lambda: waiting, 10, message="the locked send never finished")
    assert waiting[0]["ok"] is True
