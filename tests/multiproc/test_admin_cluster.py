"""The moderators' promises across two processes: kick, ban and stats see
every process, not just the one the admin is connected to."""
from __future__ import annotations

import pytest
import socketio

from tests.admin.test_e2e import Console
from tests.support.client import ChatClient
from tests.support.server import TEST_PASSWORD, flask_cli, sign_in, sign_up, wait_until

from .conftest import unique

pytestmark = pytest.mark.multiproc


@pytest.fixture(scope="module")
def admin_name(cluster_env):
    name = unique("root")
    flask_cli(cluster_env, "create-user", name, "--password-stdin", "--admin",
              stdin=TEST_PASSWORD + "\n")
    return name


def chatter(server) -> ChatClient:
    username = unique("user")
    return ChatClient(server.url, username, http=sign_up(server.url, username)).connect()


def test_a_kick_from_one_process_closes_the_target_on_the_other(two_servers, admin_name):
    a, b = two_servers
    console = Console(a.url, admin_name)
    target = chatter(b)
    target.sio.reconnection = False
    ack = console.ok("user:kick", {"user": target.username, "reason": "cool off"})
    assert ack["disconnected"] == 1
    wait_until(lambda: target.disconnects == 1, 10, message="the kicked socket stayed open")
    assert ("kicked", {"reason": "cool off"}) in target.events
    console.sio.disconnect()


def test_a_ban_from_one_process_holds_on_every_process_until_unbanned(two_servers, admin_name):
    a, b = two_servers
    console = Console(a.url, admin_name)
    target = chatter(b)
    target.sio.reconnection = False
    console.ok("user:ban", {"user": target.username, "reason": "spam"})
    wait_until(lambda: target.disconnects == 1, 10, message="the banned socket stayed open")
    for server in (a, b):
        again = ChatClient(server.url, target.username, http=target.http)
        again.sio.reconnection = False
        with pytest.raises(socketio.exceptions.ConnectionError):
            again.connect()
        with pytest.raises(AssertionError):
            sign_in(server.url, target.username)
    console.ok("user:unban", {"user": target.username})
    ChatClient(b.url, target.username, http=sign_in(b.url, target.username)).connect().close()
    console.sio.disconnect()


def test_stats_list_every_process_and_count_real_connections(two_servers, admin_name):
    a, b = two_servers
    console = Console(a.url, admin_name)
    before = console.ok("stats")
    clients = [chatter(a), chatter(b), chatter(b)]

    def grown():
        stats = console.ok("stats")
        by_count = sum(w["connections"] for w in stats["workers"])
        return (len(stats["workers"]) == 2 and by_count == stats["connections"]
                and stats["connections"] == before["connections"] + 3) and stats

    stats = wait_until(grown, 10, message="stats never counted the three new connections")
    assert len({w["id"] for w in stats["workers"]}) == 2
    for client in clients:
        client.close()
    wait_until(lambda: console.ok("stats")["connections"] == before["connections"], 10,
               message="stats never dropped the closed connections")
    console.sio.disconnect()
