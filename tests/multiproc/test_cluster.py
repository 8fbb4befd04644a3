"""The contract across processes: two gunicorn instances on one Redis."""
from __future__ import annotations

import pytest
import requests

from tests.support.client import ChatClient
from tests.support.server import sign_up, wait_until

from .conftest import unique

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
    assert bob.messages[ack["message"]["id"]] == ack["message"]
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
                                                             "username": alice.username},
                                     "online": False}) in bob.events,
               12, message="bob never saw alice go offline")
    bob.close()


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


def test_healthz_reports_redis(two_servers):
    a, _ = two_servers
    assert requests.get(a.url + "/healthz", timeout=5).json() == {
        "status": "ok", "db": "ok", "redis": "ok"}


def _csrf(http: requests.Session, url: str) -> str:
    import re

    page = http.get(url, timeout=10).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
