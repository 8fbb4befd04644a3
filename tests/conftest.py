"""Fixtures for the whole suite.

``app``/``client``/``auth``/``sockets`` serve the fast tests (Flask test
client and Flask-SocketIO test client, one temporary SQLite file per test).
Real-process tests (gunicorn, Redis, PostgreSQL, Chromium) build on
``tests/support``.
"""
from __future__ import annotations

import itertools

import pytest

from app import create_app
from app.extensions import db, socketio
from app.feed import hub
from app.services.connections import live
from app.services.ratelimit import limits
from tests.support.requirements import SETUP_HINT, WITHOUT, left_out, unavailable


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
    # This test's offline pushes must not reach the next test's clients.
    live.settle(timeout=app.config["PRESENCE_GRACE_SECONDS"] * 5)
    _reset_process_state()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _reset_process_state() -> None:
    # These live per process in production; tests start each from empty.
    live.reset()
    limits.reset()
    hub.reset()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, one for the whole session (Playwright's sync API
    allows one running instance per thread: every browser test shares it)."""
    from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS

    if left_out("chromium") or not CHROMIUM.exists():
        why = f"left out by {WITHOUT}" if left_out("chromium") else "missing"
        unavailable(f"/usr/bin/chromium is {why} (apt-get install -y chromium; {SETUP_HINT})")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def people(browser, server):
    """People in their own browser contexts, on the ``server`` of the test's
    module (each browser test module or directory defines which server)."""
    from tests.browser.helpers import People

    crowd = People(browser, server)
    yield crowd
    crowd.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    """Create users and sign them in through the real /login form."""

    _counter = itertools.count(1)

    def __init__(self, app):
        self.app = app

    def create(self, username: str, password: str = "correct-horse", *, admin: bool = False):
        from app.services import users

        with self.app.app_context():
            user = users.create_user(username, password, is_admin=admin)
            return user.id

    def login(self, username: str, password: str = "correct-horse"):
        """A new Flask test client signed in as ``username``."""
        client = self.app.test_client()
        response = client.post("/login", data={"username": username, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)
        return client

    def socket(self, username: str, password: str = "correct-horse", namespace="/public"):
        """A Flask-SocketIO test client connected as ``username`` (created if missing)."""
        from app.services import users

        with self.app.app_context():
            if users.find_user(username) is None:
                users.create_user(username, password)
        http = self.login(username, password)
        sock = socketio.test_client(self.app, namespace=namespace, flask_test_client=http)
        assert sock.is_connected(namespace), f"{username} could not connect"
        sock.http = http
        return sock


@pytest.fixture
def auth(app):
    return AuthActions(app)


def call(sock, event: str, payload=None, namespace="/public"):
    """Emit ``event`` with an ack and return the ack's one argument."""
    args = () if payload is None else (payload,)
    return sock.emit(event, *args, namespace=namespace, callback=True)


def received(sock, event: str | None = None, namespace="/public") -> list:
    """What ``sock`` received since the last look (payloads; filtered by event)."""
    packets = sock.get_received(namespace)
    return [p["args"][0] if len(p["args"]) == 1 else p["args"] for p in packets
            if event is None or p["name"] == event]


def without_cursor(payloads: list) -> list:
    """Room events as received, each checked to carry its log ``cursor``, then without it.

    Tests that are about something else compare the rest exactly.
    """
    for payload in payloads:
        assert isinstance(payload.get("cursor"), int) and payload["cursor"] > 0, payload
    return [{k: v for k, v in payload.items() if k != "cursor"} for payload in payloads]


def in_db(app, statement) -> list:
    """Run a query in its own session (what another process would see)."""
    with app.app_context():
        try:
            return db.session.execute(statement).all()
        finally:
            db.session.remove()
