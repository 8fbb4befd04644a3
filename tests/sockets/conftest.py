"""Helpers for the ``/public`` namespace's tests (Flask-SocketIO test client).

The test client handles each event synchronously, so an ack in hand means the
handler has finished. Work the server does later (presence after the grace
period) runs in gevent greenlets: ``wait_for`` yields to them until a
deadline instead of sleeping a fixed time.
"""
from __future__ import annotations

import itertools
import time

import pytest
from sqlalchemy import func, select

from app.extensions import socketio
from app.models import Membership, Message, Room
from tests.conftest import call, in_db, received

_client_ids = itertools.count(1)


def send(sock, room: str, body: str = "hello", client_id: str | None = None) -> dict:
    """``message:send`` with a fresh ``client_id`` unless one is given; the ack."""
    return call(sock, "message:send", {"room": room, "body": body,
                                       "client_id": client_id or f"c{next(_client_ids)}"})


def sent(sock, room: str, body: str = "hello") -> dict:
    """Send a message that must be stored; the stored message."""
    ack = send(sock, room, body)
    assert ack["ok"], ack
    return ack["message"]


def drain(*socks) -> None:
    """Forget what these clients received so far."""
    for sock in socks:
        received(sock)


def wait_for(predicate, timeout: float = 3.0, message: str = ""):
    """Yield to the server's greenlets until ``predicate()`` is truthy or the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message or predicate}")
        socketio.sleep(0.01)


def settle(app, periods: float = 3) -> None:
    """Let a few presence grace periods pass, to show that something does NOT arrive."""
    socketio.sleep(app.config["PRESENCE_GRACE_SECONDS"] * periods)



def message_count(app) -> int:
    return in_db(app, select(func.count()).select_from(Message))[0][0]


def snapshot(app) -> tuple:
    """Everything an event could have written: to show that it wrote nothing."""
    return (
        in_db(app, select(Room.slug, Room.name, Room.topic, Room.private, Room.owner_id)
              .order_by(Room.id)),
        in_db(app, select(Membership.room_id, Membership.user_id, Membership.last_read_id)
              .order_by(Membership.room_id, Membership.user_id)),
        in_db(app, select(Message.id, Message.body, Message.edited_at, Message.deleted)
              .order_by(Message.id)),
    )


def public_room(sock, name: str = "General", **extra) -> str:
    """``sock``'s user creates a room and this connection joins it; the slug."""
    ack = call(sock, "room:create", {"name": name, **extra})
    assert ack["ok"], ack
    slug = ack["room"]["slug"]
    assert call(sock, "room:join", {"room": slug})["ok"]
    return slug


def joined(sock, slug: str) -> dict:
    ack = call(sock, "room:join", {"room": slug})
    assert ack["ok"], ack
    return ack


@pytest.fixture
def grace(app) -> float:
    return app.config["PRESENCE_GRACE_SECONDS"]
