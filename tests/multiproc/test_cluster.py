"""The contract across processes: two gunicorn instances on one Redis."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import without_cursor
from tests.support.client import ChatClient
from tests.support.server import sign_up, wait_until

from .conftest import start_server, unique

pytestmark = pytest.mark.multiproc


def chat(server, username=None, **kwargs) -> ChatClient:
    username = username or unique("user")
    return ChatClient(server.url, username, http=sign_up(server.url, username), **kwargs).connect()


def shared_room(owner: ChatClient, *others: ChatClient) -> str:
    name = unique("room")
    assert owner.call("room:create", {"name": name})["ok"]
    for client in (owner, *others):
        client.join(name)
    return name


def test_a_message_sent_through_one_process_reaches_members_on_the_other(two_servers):
    a, b = two_servers
    alice, bob = chat(a), chat(b)
    room = shared_room(alice, bob)
    ack = alice.send(room, "across the cluster")
    assert ack["ok"]
    wait_until(lambda: ack["message"]["id"] in bob.messages, 10, message="bob never got it")
    assert without_cursor([bob.messages[ack["message"]["id"]]]) == [ack["message"]]
    alice.close(), bob.close()


def test_presence_is_seen_across_processes(two_servers):
    a, b = two_servers
    alice, bob = chat(a), chat(b)
    room = shared_room(alice, bob)
    # bob's join ack lists alice (connected to the other process) as online
    ack = bob.call("room:join", {"room": room})
    assert alice.username in {u["username"] for u in ack["online"]}
    alice.close()
    wait_until(lambda: ("presence", {"room": room, "user": {"id": ack["members"][0]["id"]
                                                             if ack["members"][0]["username"] == alice.username
                                                             else ack["members"][1]["id"],
                                                             "username": alice.username, "bot": False},
                                     "online": False}) in bob.events,
               12, message="bob never saw alice go offline")
    bob.close()


def test_a_presence_batch_reaches_an_opted_in_member_on_the_other_process(two_servers):
    a, b = two_servers
    alice, bob = chat(a, auth={"presence": "batched"}), chat(b)
    room = shared_room(alice, bob)

    def bob_online():
        return [p for e, p in alice.events if e == "presence:batch" and p["room"] == room
                and bob.username in {u["username"] for u in p["online"]}]
    batches = wait_until(bob_online, 10, message="alice never got bob's presence:batch")
    assert batches[0]["offline"] == []
    assert not [p for e, p in alice.events if e == "presence"]
    alice.close(), bob.close()


def test_signing_out_on_one_process_closes_the_session_socket_on_the_other(two_servers):
    a, b = two_servers
    username = unique("user")
    http = sign_up(a.url, username)
    on_b = ChatClient(b.url, username, http=http).connect()
    csrf = _csrf(http, a.url + "/")
    response = http.post(a.url + "/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert response.status_code in (302, 303)
    wait_until(lambda: on_b.disconnects >= 1, 10, message="socket on b stayed open")
    on_b.sio.disconnect()


def test_the_send_rate_limit_is_per_user_across_processes(two_servers):
    a, b = two_servers
    username = unique("user")
    http = sign_up(a.url, username)
    on_a = ChatClient(a.url, username, http=http).connect()
    on_b = ChatClient(b.url, username, http=http).connect()
    room = unique("room")
    assert on_a.call("room:create", {"name": room})["ok"]
    on_a.join(room), on_b.join(room)
    acks = [on_a.send(room, f"burst {i}") for i in range(20)]
    assert all(ack["ok"] for ack in acks)
    refused = on_b.send(room, "one too many")
    assert refused["ok"] is False
    assert refused["error"]["code"] == "rate_limited"
    assert refused["error"]["retry_after"] > 0
    on_a.close(), on_b.close()


@pytest.fixture
def strict_servers(cluster_env):
    """Two processes whose send budget cannot refill during the test."""
    servers = [start_server(cluster_env, f"strict-{name}", MESSAGE_RATE_LIMIT="20 per minute")
               for name in ("a", "b")]
    yield servers
    for server in servers:
        server.close()


def test_a_concurrent_burst_on_two_processes_stores_no_more_than_the_limit(strict_servers):
    a, b = strict_servers
    username = unique("user")
    http = sign_up(a.url, username)
    tabs = [ChatClient(server.url, username, http=http).connect() for server in (a, b, a, b)]
    room = unique("room")
    assert tabs[0].call("room:create", {"name": room})["ok"]
    for tab in tabs:
        tab.join(room)
    start = threading.Barrier(len(tabs) * 10)

    def burst(tab, n):
        start.wait(10)
        return tab.send(room, f"burst {n}")

    with ThreadPoolExecutor(max_workers=len(tabs) * 10) as pool:
        acks = list(pool.map(lambda n: burst(tabs[n % len(tabs)], n), range(len(tabs) * 10)))
    stored = [ack for ack in acks if ack["ok"]]
    refused = [ack for ack in acks if not ack["ok"]]
    assert len(stored) == 20, f"{len(stored)} sends stored past a limit of 20"
    assert {ack["error"]["code"] for ack in refused} == {"rate_limited"}
    history = tabs[1].call("message:history", {"room": room, "limit": 100})
    assert sorted(m["id"] for m in history["messages"]) == sorted(
        ack["message"]["id"] for ack in stored)
    for tab in tabs:
        tab.close()


def test_healthz_reports_redis(two_servers):
    a, _ = two_servers
    assert requests.get(a.url + "/healthz", timeout=5).json() == {
        "status": "ok", "db": "ok", "redis": "ok", "schema": "ok"}


def _csrf(http: requests.Session, url: str) -> str:
    import re

    page = http.get(url, timeout=10).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
