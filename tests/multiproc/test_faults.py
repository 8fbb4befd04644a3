"""Faults with real processes: Redis restarting, a worker killed, a graceful
restart. The promise in each: every acked message is present exactly once
for every member after catch-up."""
from __future__ import annotations

import os
import signal

import pytest
import requests

from tests.support.client import ChatClient
from tests.support.server import child_pids, sign_up, wait_until

from .conftest import start_server, unique

pytestmark = pytest.mark.multiproc


def chat(server) -> ChatClient:
    username = unique("user")
    return ChatClient(server.url, username, http=sign_up(server.url, username)).connect()


def assert_complete(client: ChatClient, room: str, acked_ids: list[int]) -> None:
    wait_until(lambda: set(acked_ids) <= set(client.messages), 30,
               message=f"{client.username} is missing messages after catch-up "
               f"(connects={client.connects}, disconnects={client.disconnects}, "
               f"has={sorted(client.messages)}, acked={acked_ids})")
    ids = [m["id"] for m in client.messages.values() if m["room"] == room]
    assert len(ids) == len(set(ids))
    page = client.call("message:history", {"room": room, "limit": 500})
    stored = [m["id"] for m in page["messages"]]
    assert sorted(stored) == sorted(set(stored))          # nothing stored twice
    assert set(acked_ids) <= set(stored)                   # nothing acked was lost


@pytest.fixture
def pair(cluster_env):
    a = start_server(cluster_env, unique("faults-a"))
    b = start_server(cluster_env, unique("faults-b"))
    yield a, b
    a.close(), b.close()


def test_redis_restart_loses_no_message(pair, redis_server):
    a, b = pair
    alice, bob = chat(a), chat(b)
    room = unique("room")
    assert alice.call("room:create", {"name": room})["ok"]
    alice.join(room), bob.join(room)
    acked = [alice.send(room, "before")["message"]["id"]]

    redis_server.stop()
    health = requests.get(a.url + "/healthz", timeout=10)
    assert health.status_code == 503
    assert health.json() == {"status": "error", "db": "ok", "redis": "error", "schema": "ok"}
    # Sends still commit (and ack) while Redis is away; only the broadcast to
    # the other process is lost, and catch-up recovers it.
    for i in range(5):
        ack = alice.send(room, f"during outage {i}")
        assert ack["ok"], ack
        acked.append(ack["message"]["id"])
    redis_server.start()

    wait_until(lambda: requests.get(a.url + "/healthz", timeout=5).status_code == 200, 20)
    assert_complete(bob, room, acked)
    after = alice.send(room, "after recovery")
    assert after["ok"]
    assert_complete(bob, room, acked + [after["message"]["id"]])
    alice.close(), bob.close()


def test_a_killed_worker_is_replaced_and_its_clients_catch_up(pair):
    a, b = pair
    alice, bob = chat(a), chat(b)
    room = unique("room")
    assert alice.call("room:create", {"name": room})["ok"]
    alice.join(room), bob.join(room)
    (worker,) = child_pids(b.process.pid)
    os.kill(worker, signal.SIGKILL)
    acked = [alice.send(room, f"while b is down {i}")["message"]["id"] for i in range(5)]
    wait_until(lambda: child_pids(b.process.pid) not in ([], [worker]), 20,
               message="gunicorn did not replace the killed worker")
    wait_until(lambda: bob.connects >= 2, 30, message="bob never reconnected")
    assert_complete(bob, room, acked)
    alice.close(), bob.close()


def test_a_graceful_restart_loses_no_message(pair):
    a, b = pair
    alice, bob = chat(a), chat(b)
    room = unique("room")
    assert alice.call("room:create", {"name": room})["ok"]
    alice.join(room), bob.join(room)
    os.kill(b.process.pid, signal.SIGHUP)   # gunicorn: new workers, old ones drain
    acked = [alice.send(room, f"during reload {i}")["message"]["id"] for i in range(10)]
    wait_until(lambda: bob.connects >= 2, 40, message="bob never reconnected")
    assert_complete(bob, room, acked)
    alice.close(), bob.close()
