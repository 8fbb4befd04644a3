"""Fixtures for the hardening tests: the suite's app, with settings a test can tighten."""
from __future__ import annotations

import uuid

import pytest
import requests
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import AuditEntry
from tests.conftest import _reset_process_state, in_db
from tests.e2e.conftest import create_users, e2e_env, start_server, stop_server
from tests.support.client import ChatClient
from tests.support.server import flask_cli


@pytest.fixture
def app_config() -> dict:
    """Overrides of the testing settings; a module redefines this to tighten limits."""
    return {}


@pytest.fixture
def app(tmp_path, monkeypatch, app_config):
    monkeypatch.setenv("PARLEY_ENV", "testing")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.sqlite3'}",
                      **app_config})
    with app.app_context():
        db.create_all()
    _reset_process_state()
    yield app
    _reset_process_state()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


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
