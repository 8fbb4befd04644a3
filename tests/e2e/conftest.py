"""End-to-end fixtures: a real ``gunicorn -c gunicorn.conf.py`` process and real clients.

The database is prepared and the users are created with the CLI exactly as
the contract documents it (``flask --app wsgi init-db``, ``create-user NAME
--password-stdin``); clients sign in through the real ``/login`` form and
connect with python-socketio over WebSocket or long-polling. One server is
shared by every e2e test of a session: tests stay apart by using rooms of
their own. Each server's log is kept under ``test-output/e2e/`` and its tail
is attached to the report of any test that fails.
"""
from __future__ import annotations

import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import socketio

from tests.support import postgres
from tests.support.requirements import unavailable
from tests.support.server import (ROOT, TEST_PASSWORD, Server, base_env, cookie_header,
                                  flask_cli, sign_in, wait_until)

OUTPUT = ROOT / "test-output" / "e2e"
NS = "/public"
# Two accounts are enough: each test signs them in afresh (a session per client)
# and uses rooms of its own. Each CLI call costs ~2 s of imports.
USERS = ("alice", "bob")
LOG_TAIL_LINES = 80

# Servers running now: their log tails go into the report of a failing test.
RUNNING: list[Server] = []
_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test of this session uses (rooms, sign-ups, client ids)."""
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


def e2e_env(database_url: str, **extra: str) -> dict:
    # The e2e tests send bursts (a catch-up past the 100-message page, 40
    # back-to-back events) from a few shared accounts; the send rate limit has
    # its own tests, so here it is set out of the way.
    # A short graceful timeout: the test process keeps HTTP keep-alive
    # connections open, which gunicorn would otherwise wait 30 s for.
    # Each test makes rooms of its own, more than the room-create limit lets
    # two accounts make in an hour. SSE heartbeats every second: the feed's
    # tests see them, and a stream notices a reader's ended rights at once.
    # Reactions, like sends, come in bursts from the two accounts; their limit
    # is tested in tests/sockets/test_reactions.py. Presence batches over 1 s:
    # back-to-back joins of a test land in one.
    return base_env(database_url, MESSAGE_RATE_LIMIT="100000 per 1 second", ACCESS_LOG="-",
                    GRACEFUL_TIMEOUT="2", ROOM_CREATE_RATE_LIMIT="100000 per 1 hour",
                    SSE_HEARTBEAT_SECONDS="1", REACTION_RATE_LIMIT="100000 per 1 second",
                    PRESENCE_BATCH_SECONDS="1", **extra)


def create_users(env: dict, names=USERS) -> None:
    """``flask --app wsgi create-user NAME --password-stdin`` for each name.

    Each call is a fresh Python process (~2 s of imports), so they run two at
    a time, one per core.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda name: flask_cli(env, "create-user", name, "--password-stdin",
                                             stdin=TEST_PASSWORD + "\n"), names))


def start_server(env: dict, name: str) -> Server:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path: Path = OUTPUT / f"{name}.log"
    log_path.write_bytes(b"")
    server = Server(env, log_path=log_path)
    RUNNING.append(server)
    try:
        return server.start()
    except Exception:
        server.close()
        RUNNING.remove(server)
        raise


def stop_server(server: Server) -> None:
    server.close()
    if server in RUNNING:
        RUNNING.remove(server)


@pytest.fixture(scope="session")
def sqlite_env(tmp_path_factory) -> dict:
    env = e2e_env(f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'parley.sqlite3'}")
    flask_cli(env, "init-db")
    create_users(env)
    return env


@pytest.fixture(scope="session")
def server(sqlite_env):
    """The shared single-worker gunicorn on SQLite, open registration."""
    running = start_server(sqlite_env, "server")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway ``parley_test_<random>`` database, dropped after the session."""
    reason = postgres.available()
    if reason is not None:
        unavailable(f"{reason}; start one or point PARLEY_TEST_POSTGRES_URL at one")
    with postgres.throwaway_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_server(postgres_url):
    """The same single-worker gunicorn, on PostgreSQL."""
    env = e2e_env(postgres_url)
    flask_cli(env, "init-db")
    create_users(env)
    running = start_server(env, "server-postgres")
    yield running
    stop_server(running)


@pytest.fixture
def target(request) -> Server:
    """The server a test's clients connect to: SQLite unless parametrized (``BOTH_DATABASES``)."""
    name = getattr(request, "param", "sqlite")
    return request.getfixturevalue({"sqlite": "server", "postgres": "pg_server"}[name])


BOTH_DATABASES = pytest.mark.parametrize(
    "target", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


@pytest.fixture(params=["websocket", "polling"])
def transport(request) -> str:
    return request.param


class Peer:
    """A signed-in python-socketio client on ``/public`` that records what it receives.

    Reconnection is off: a test that wants a client back connects a new one,
    so every disconnect a test sees is the server's doing.
    """

    def __init__(self, url: str, username: str, *, http=None, transports=("websocket",),
                 headers: dict | None = None, websocket_options: dict | None = None,
                 auth: dict | None = None):
        self.url = url
        self.auth = auth
        self.username = username
        self.http = http if http is not None else sign_in(url, username)
        self.transports = list(transports) if transports else None
        self.headers = {"Cookie": cookie_header(self.http), **(headers or {})}
        self.received: list[tuple[str, object]] = []
        self.connect_errors: list[object] = []
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self.sio = socketio.Client(reconnection=False,
                                   websocket_extra_options=websocket_options or {})
        self.sio.on("*", self._record, namespace=NS)
        self.sio.on("disconnect", self._on_disconnect, namespace=NS)
        self.sio.on("connect_error", self._on_connect_error, namespace=NS)

    def connect(self) -> "Peer":
        self.sio.connect(self.url, namespaces=[NS], headers=dict(self.headers),
                         transports=self.transports, wait_timeout=10, auth=self.auth)
        return self

    def close(self) -> None:
        if not self.sio.connected:
            return
        # python-engineio's long-polling client loses its goodbye (namespace
        # disconnect and CLOSE) when disconnect() lands while its write loop
        # is still waiting on a POST, and then blocks until the server's next
        # ping, 25 s later. Letting the loop send what it has first avoids it.
        queue = self.sio.eio.queue
        wait_until(lambda: queue.unfinished_tasks == 0, 5,
                   message=f"{self.username}'s client never sent its queued packets")
        self.sio.disconnect()

    @property
    def connected(self) -> bool:
        return self.sio.connected and NS in self.sio.namespaces

    def transport(self) -> str:
        return self.sio.transport()

    # -- what arrived --

    def _record(self, event, *args):
        with self._lock:
            self.received.append((event, args[0] if len(args) == 1 else args))

    def _on_disconnect(self, *reason):
        self.disconnected.set()

    def _on_connect_error(self, data=None):
        self.connect_errors.append(data)

    def got(self, event: str) -> list:
        with self._lock:
            return [payload for name, payload in self.received if name == event]

    def wait_for(self, event: str, match=lambda payload: True, timeout: float = 10):
        """The first ``event`` payload for which ``match`` holds, within ``timeout``."""
        def found():
            return next((p for p in self.got(event) if match(p)), None)
        return wait_until(found, timeout, message=f"{self.username} never got a matching {event}")

    # -- contract calls --

    def call(self, event: str, payload: dict | None = None, timeout: float = 10) -> dict:
        return self.sio.call(event, payload if payload is not None else {}, namespace=NS,
                             timeout=timeout)

    def ok(self, event: str, payload: dict | None = None, timeout: float = 10) -> dict:
        ack = self.call(event, payload, timeout)
        assert ack["ok"] is True, f"{event} {payload!r} answered {ack!r}"
        return ack

    def create_room(self, **fields) -> str:
        return self.ok("room:create", {"name": unique("room"), **fields})["room"]["slug"]

    def send(self, room: str, body: str, client_id: str | None = None) -> dict:
        return self.ok("message:send", {"room": room, "body": body,
                                        "client_id": client_id or uuid.uuid4().hex})["message"]


@pytest.fixture
def peers(target):
    """Connect signed-in clients to ``target``; all are closed after the test."""
    made: list[Peer] = []

    def connect(username: str, *, transport: str | None = "websocket", **kwargs):
        peer = Peer(target.url, username,
                    transports=[transport] if transport else None, **kwargs)
        made.append(peer)
        return peer.connect()

    yield connect
    for peer in made:
        peer.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for running in RUNNING:
            lines = running.log().splitlines()[-LOG_TAIL_LINES:]
            report.sections.append((f"gunicorn log tail ({running.log_path})", "\n".join(lines)))
