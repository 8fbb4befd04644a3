"""Fixtures for the admin namespace's tests: an admin console and chat members."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import socketio
from app.models import AuditEntry, Message, Room, User
from tests.conftest import call, in_db, received

ADMIN = "/admin"


@pytest.fixture
def console(auth):
    """An admin's console, connected to ``/admin``."""
    auth.create("root", admin=True)
    return auth.socket("root", namespace=ADMIN)


def acall(sock, event: str, payload=None):
    """An ``/admin`` event with its ack."""
    return call(sock, event, payload, namespace=ADMIN)


def pushed(sock, event: str | None = None) -> list:
    """What an admin console received since the last look."""
    return received(sock, event, namespace=ADMIN)


def refused(app, http) -> bool:
    """Whether a ``/admin`` connection with this HTTP client's cookie is refused."""
    sock = socketio.test_client(app, namespace=ADMIN, flask_test_client=http)
    return not sock.is_connected(ADMIN)



def user_row(app, username: str):
    return in_db(app, select(User.is_admin, User.banned, User.banned_until, User.ban_reason)
                 .where(User.username_key == username.lower()))[0]


def audit_rows(app) -> list[tuple]:
    return [tuple(row) for row in in_db(app, select(AuditEntry.actor, AuditEntry.action,
                                                    AuditEntry.target, AuditEntry.detail)
                                        .order_by(AuditEntry.id))]


def state_of(app) -> dict:
    """Everything an admin event could change, to show that a refused one changed nothing."""
    return {
        "users": in_db(app, select(User.username, User.is_admin, User.banned, User.banned_until,
                                   User.ban_reason, User.password_hash).order_by(User.id)),
        "messages": in_db(app, select(Message.id, Message.deleted).order_by(Message.id)),
        "rooms": in_db(app, select(Room.slug, Room.archived).order_by(Room.id)),
        "audit": audit_rows(app),
    }


def received_before_close(sock, event: str, namespace: str = "/public") -> list:
    """What a connection the server closed had received (the test client's
    ``get_received`` refuses to look once the connection is closed)."""
    return [p["args"][0] for p in sock.queue
            if p["namespace"] == namespace and p["name"] == event]
