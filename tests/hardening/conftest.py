"""Helpers for the hardening tests; the app fixture (with `app_config` a module can tighten) is tests/conftest.py's."""
from __future__ import annotations

import uuid

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from tests.conftest import in_db  # noqa: F401  (the modules import it from here)
from tests.e2e.conftest import create_users, e2e_env, start_server, stop_server
from tests.support.client import ChatClient
from tests.support.server import flask_cli


def audit_rows(app) -> list[tuple]:
    with app.app_context():
        try:
            return [tuple(row) for row in db.session.execute(
                select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)
                .order_by(AuditEntry.id)).all()]
        finally:
            db.session.remove()



def attacked_server(tmp_path_factory, name: str, users: tuple[str, ...], **settings: str):
    """A real gunicorn on its own SQLite file, for a module of attacks (a fixture body)."""
    db_path = tmp_path_factory.mktemp(name) / f"{name}.sqlite3"
    env = e2e_env(f"sqlite:///{db_path}", **settings)
    flask_cli(env, "init-db")
    create_users(env, users)
    server = start_server(env, f"hardening-{name}")
    server.db_path = db_path
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def witness(server):
    """alice, connected throughout in room 'watch': she must never notice the attacks."""
    client = ChatClient(server.url, "alice").connect()
    client.call("room:create", {"name": "watch"})
    client.join("watch")
    yield client
    client.close()


def still_serving(server, witness, health_timeout: float = 5) -> None:
    """The worker answers /healthz in time and the witness still sends and receives."""
    assert requests.get(server.url + "/healthz", timeout=health_timeout).status_code == 200
    body = f"still here {uuid.uuid4().hex[:8]}"
    assert witness.send("watch", body)["ok"] is True
    witness.wait_for_bodies("watch", [body], timeout=10)
