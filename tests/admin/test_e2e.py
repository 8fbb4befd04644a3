"""The admin console's contract against a real gunicorn process and real clients.

Its own server and database: these tests kick and ban accounts, which must
not disturb the shared e2e server's users.
"""
from __future__ import annotations

import threading
import time

import pytest
import requests
import socketio

from tests.e2e.conftest import Peer, e2e_env, start_server, stop_server, unique
from tests.support.server import (TEST_PASSWORD, cookie_header, flask_cli, sign_in, sign_up,
                                  wait_until)

pytestmark = pytest.mark.e2e

ADMIN = "/admin"
PUBLIC = "/public"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = e2e_env(f"sqlite:///{tmp_path_factory.mktemp('admin-e2e') / 'parley.sqlite3'}")
    flask_cli(env, "create-user", "root", "--password-stdin", "--admin",
              stdin=TEST_PASSWORD + "\n")
    running = start_server(env, "admin-server")
    yield running
    stop_server(running)


class Console:
    """A python-socketio client on ``/admin``, recording the pushes it receives."""

    def __init__(self, url: str, username: str = "root", http=None):
        self.http = http or sign_in(url, username)
        self.pushes: list[tuple[float, str, object]] = []
        self.disconnected = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._record, namespace=ADMIN)
        self.sio.on("disconnect", lambda *_: self.disconnected.set(), namespace=ADMIN)
        self.sio.connect(url, namespaces=[ADMIN], headers={"Cookie": cookie_header(self.http)},
                         transports=["websocket"], wait_timeout=10)

    def _record(self, event, payload):
        self.pushes.append((time.monotonic(), event, payload))

    def pushed(self, event: str) -> list:
        return [payload for _, name, payload in self.pushes if name == event]

    def call(self, event: str, payload: dict | None = None) -> dict:
        return self.sio.call(event, payload or {}, namespace=ADMIN, timeout=15)

    def ok(self, event: str, payload: dict | None = None) -> dict:
        ack = self.call(event, payload)
        assert ack["ok"] is True, f"{event} {payload!r} answered {ack!r}"
        return ack

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


@pytest.fixture
def consoles(server):
    made: list[Console] = []

    def connect(username: str = "root", http=None) -> Console:
        made.append(Console(server.url, username, http))
        return made[-1]

    yield connect
    for console in made:
        console.close()


@pytest.fixture
def members(server):
    """Sign up fresh members and connect their chat clients; all closed after the test."""
    made: list[Peer] = []

    def connect(username: str, *, http=None, transport: str = "websocket") -> Peer:
        peer = Peer(server.url, username, http=http or sign_in(server.url, username),
                    transports=[transport])
        made.append(peer)
        return peer.connect()

    yield connect
    for peer in made:
        peer.close()


def new_member(server) -> tuple[str, requests.Session]:
    name = unique("m").replace("-", "_")[:32]
    return name, sign_up(server.url, name)


def refusal(url: str, namespace: str, http=None) -> dict:
    """What ``connect_error`` told a client refused at connect."""
    sio = socketio.Client(reconnection=False)
    errors: list = []
    sio.on("connect_error", errors.append, namespace=namespace)
    headers = {"Cookie": cookie_header(http)} if http is not None else {}
    try:
        sio.connect(url, namespaces=[namespace], headers=headers, transports=["websocket"],
                    wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        assert errors, "refused without connect_error"
        return errors[0]
    finally:
        sio.disconnect()
    raise AssertionError(f"{namespace} accepted the connection")


def sign_in_status(url: str, username: str, password: str = TEST_PASSWORD) -> int:
    """The status of a sign-in through the real form (303 signed in, 401 refused)."""
    http = requests.Session()
    page = http.get(url + "/login", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return http.post(url + "/login", timeout=10, allow_redirects=False,
                     data={"username": username, "password": password,
                           "csrf_token": token}).status_code


# -- who may connect -------------------------------------------------------------

def test_anonymous_and_non_admin_connections_are_refused_at_connect(server):
    assert refusal(server.url, ADMIN)["data"]["code"] == "unauthenticated"
    _, http = new_member(server)
    assert refusal(server.url, ADMIN, http)["data"]["code"] == "forbidden"


def test_a_demoted_admin_loses_the_open_console(server, consoles):
    root = consoles()
    name, http = new_member(server)
    root.ok("user:promote", {"user": name})
    theirs = consoles(name, http)
    root.ok("user:demote", {"user": name})
    assert theirs.disconnected.wait(10), "the demoted admin's console stayed open"
    assert refusal(server.url, ADMIN, http)["data"]["code"] == "forbidden"


def test_a_console_whose_admin_signed_out_is_closed_within_a_stats_period(server, consoles):
    root = consoles()
    name, http = new_member(server)
    root.ok("user:promote", {"user": name})
    theirs = consoles(name, http)
    page = http.get(server.url + "/admin", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert http.post(server.url + "/logout", data={"csrf_token": token}, timeout=10,
                     allow_redirects=False).status_code == 303
    assert theirs.disconnected.wait(10), "the signed-out console stayed open"
    assert root.sio.connected


# -- kick and ban --------------------------------------------------------------------

def test_kick_closes_every_connection_of_the_user_and_reports_how_many(server, consoles,
                                                                       members):
    root = consoles()
    name, http = new_member(server)
    tabs = [members(name, http=http), members(name, http=http, transport="polling")]
    bystander_name, bystander_http = new_member(server)
    bystander = members(bystander_name, http=bystander_http)
    assert root.ok("user:kick", {"user": name, "reason": "cool off"})["disconnected"] == 2
    for tab in tabs:
        assert tab.disconnected.wait(10)
        assert tab.got("kicked") == [{"reason": "cool off"}]
    assert bystander.connected and bystander.got("kicked") == []
    # A kick is not a ban: the same sign-in connects again.
    assert members(name, http=http).connected


def test_a_banned_user_is_disconnected_and_kept_out_until_unbanned(server, consoles, members):
    root = consoles()
    name, http = new_member(server)
    tab = members(name, http=http)
    ack = root.ok("user:ban", {"user": name, "reason": "spam"})
    assert ack["disconnected"] == 1 and ack["user"]["banned"] is True
    assert tab.disconnected.wait(10)
    assert tab.got("kicked") == [{"reason": "spam", "banned": True, "until": None}]
    # The old cookie is void and signing in again is refused.
    assert refusal(server.url, PUBLIC, http)["data"]["code"] in ("unauthenticated", "forbidden")
    assert sign_in_status(server.url, name) == 401
    root.ok("user:unban", {"user": name})
    assert members(name).connected


def test_a_ban_with_a_duration_ends_by_itself(server, consoles, members):
    root = consoles()
    name, _ = new_member(server)
    root.ok("user:ban", {"user": name, "minutes": 0.05})  # 3 seconds
    assert sign_in_status(server.url, name) == 401
    wait_until(lambda: sign_in_status(server.url, name) == 303, 15,
               message="the ban never ended")
    assert members(name).connected


# -- announcements ------------------------------------------------------------------------

def test_announcements_reach_every_public_client_or_one_rooms(server, consoles, members):
    root = consoles()
    (in_name, in_http), (out_name, out_http) = new_member(server), new_member(server)
    inside, outside = members(in_name, http=in_http), members(out_name, http=out_http)
    room = inside.create_room()
    inside.ok("room:join", {"room": room})
    to_room = root.ok("announce", {"body": "room only", "room": room})["announcement"]
    to_all = root.ok("announce", {"body": "everyone"})["announcement"]
    assert inside.wait_for("announcement", lambda a: a["body"] == "everyone")
    assert outside.wait_for("announcement", lambda a: a["body"] == "everyone")
    # Events reach a connection in order: had the room announcement gone to
    # the outsider, it would have arrived before "everyone".
    assert inside.got("announcement") == [to_room, to_all]
    assert outside.got("announcement") == [to_all]
    assert to_all["room"] is None and to_room["room"] == room


# -- stats and pushes ----------------------------------------------------------------------

def test_stats_count_the_real_connections(server, consoles, members):
    root = consoles()
    # Earlier tests closed their chat clients; consoles are not chat connections.
    wait_until(lambda: root.ok("stats")["connections"] == 0, 10,
               message="chat connections of earlier tests were still counted")
    name, http = new_member(server)
    other, other_http = new_member(server)
    tabs = [members(name, http=http) for _ in range(3)] + [members(other, http=other_http)]
    stats = root.ok("stats")
    assert (stats["connections"], stats["users_online"]) == (4, 2)
    assert stats["workers"] == [{"id": stats["workers"][0]["id"], "connections": 4}]
    for tab in tabs[:3]:
        tab.close()
    wait_until(lambda: root.ok("stats")["connections"] == 1, 10,
               message="closed connections were still counted")
    assert root.ok("stats")["users_online"] == 1


def test_stats_are_pushed_every_few_seconds_and_count_messages(server, consoles, members):
    root = consoles()
    name, http = new_member(server)
    member = members(name, http=http)
    room = member.create_room()
    member.ok("room:join", {"room": room})
    sent_before = root.ok("stats")["messages_last_minute"]
    for n in range(4):
        member.send(room, f"m{n}")
    wait_until(lambda: len(root.pushed("stats")) >= 3, 15, message="fewer than 3 stats pushes")
    times = [at for at, event, _ in root.pushes if event == "stats"]
    assert all(1.0 <= later - earlier <= 6.0 for earlier, later in zip(times, times[1:]))
    latest = root.pushed("stats")[-1]
    assert latest["messages_last_minute"] >= sent_before + 4
    assert set(latest) == {"connections", "users_online", "rooms", "messages_total",
                           "messages_last_minute", "workers"}


def test_admin_actions_and_failed_sign_ins_reach_every_console_live(server, consoles):
    first, second = consoles(), consoles()
    name, _ = new_member(server)
    first.ok("user:kick", {"user": name})
    for _ in range(5):
        assert sign_in_status(server.url, name, "not-the-password") == 401
    for console in (first, second):
        wait_until(lambda c=console: [(e["action"], e["target"]) for e in c.pushed("audit")] ==
                   [("user:kick", name), ("sign-in:failed", name)], 10,
                   message="audit entries did not arrive")
    history = first.ok("audit:list")["entries"]
    assert [e["action"] for e in history[-2:]] == ["user:kick", "sign-in:failed"]
