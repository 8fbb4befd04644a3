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
                                                             "username": alice.username, "bot": False, "display_name": None},
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


# -- room management across processes --

def test_a_room_deleted_through_one_process_is_forgotten_by_connections_on_the_other(two_servers):
    a, b = two_servers
    alice, bob = chat(a), chat(b)
    room = shared_room(alice, bob)
    assert alice.call("room:delete", {"room": room}) == {"ok": True}
    deleted = wait_until(lambda: next((p for e, p in bob.events if e == "room:deleted"), None),
                         10, message="bob never heard of the deletion")
    assert (deleted["room"], deleted["by"]["username"]) == (room, alice.username)
    # The same name makes a new room at the same address: bob's connection on
    # the other process must not still be subscribed to it, nor send to it.
    assert alice.call("room:create", {"name": room})["room"]["slug"] == room
    alice.join(room)
    ack = alice.send(room, "in the new room")
    assert ack["ok"]
    refused = bob.call("message:send", {"room": room, "body": "stale", "client_id": "s1"})
    assert refused["error"]["code"] == "forbidden"  # not a member of the new room
    probe = alice.send(room, "second")
    wait_until(lambda: probe["message"]["id"] in alice.messages, 5)
    assert ack["message"]["id"] not in bob.messages
    alice.close(), bob.close()


def test_a_member_removed_through_one_process_stops_receiving_the_room_on_the_other(two_servers):
    a, b = two_servers
    alice, bob = chat(a), chat(b)
    name = unique("team")
    room = alice.call("room:create", {"name": name, "private": True})["room"]["slug"]
    alice.join(room)
    assert alice.call("room:invite", {"room": room, "user": bob.username})["ok"]
    bob.join(room)
    assert alice.call("room:remove", {"room": room, "user": bob.username}) == {"ok": True}
    wait_until(lambda: any(e == "room:removed" for e, _ in bob.events), 10,
               message="bob never heard of his removal")
    ack = alice.send(room, "without bob")
    # A marker through a room bob is still in: once it arrives, the other would have.
    marker_room = shared_room(alice, bob)
    marker = alice.send(marker_room, "marker")
    wait_until(lambda: marker["message"]["id"] in bob.messages, 10)
    assert ack["message"]["id"] not in bob.messages
    alice.close(), bob.close()


def test_a_new_display_name_rides_on_what_the_user_sends_through_the_other_process(two_servers):
    a, b = two_servers
    username = unique("user")
    http = sign_up(a.url, username)
    on_b = ChatClient(b.url, username, http=http).connect()
    room = unique("room")
    assert on_b.call("room:create", {"name": room})["ok"]
    on_b.join(room)
    csrf = _csrf(http, a.url + "/account")
    response = http.post(a.url + "/account/display-name",
                         data={"display_name": "Renamed Elsewhere", "csrf_token": csrf})
    assert response.status_code == 200
    wait_until(lambda: any(e == "user:updated" for e, _ in on_b.events), 10,
               message="the other process never pushed user:updated")
    assert on_b.send(room, "hello")["message"]["user"]["display_name"] == "Renamed Elsewhere"
    on_b.close()

def test_a_mention_sent_through_one_process_reaches_every_connection_on_the_other(two_servers):
    a, b = two_servers
    alice, bob = chat(a), chat(b)
    bob_elsewhere = ChatClient(a.url, bob.username, http=bob.http).connect()
    room = unique("room")
    assert alice.call("room:create", {"name": room})["ok"]
    alice.join(room)
    assert alice.call("room:invite", {"room": room, "user": bob.username})["ok"]
    # Neither of bob's connections joined the room: the push is to him.
    ack = alice.send(room, f"@{bob.username} across the cluster")
    assert ack["ok"] and ack["message"]["mentions"] != []
    for connection in (bob, bob_elsewhere):
        wait_until(lambda: ("mention", {"room": room, "message": ack["message"]})
                   in connection.events, 10, message="a connection of bob never got it")
    alice.close(), bob.close(), bob_elsewhere.close()
