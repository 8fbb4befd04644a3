"""The chat path through a real server: send, receive, catch up, retry, sign out, presence."""
from __future__ import annotations

import re
import uuid

import pytest
import requests
import socketio

from tests.conftest import without_cursor
from tests.support.server import cookie_header

from .conftest import BOTH_DATABASES, NS

pytestmark = pytest.mark.e2e


def shared_room(owner, *others) -> str:
    """A new public room that ``owner`` and ``others`` have all joined."""
    room = owner.create_room()
    for peer in (owner, *others):
        peer.ok("room:join", {"room": room})
    return room


@BOTH_DATABASES
def test_a_sent_message_reaches_the_other_member_exactly_once(target, peers, transport):
    alice, bob = peers("alice", transport=transport), peers("bob", transport=transport)
    room = shared_room(alice, bob)

    message = alice.send(room, "hello <b>bob</b>")

    assert without_cursor([bob.wait_for("message")]) == [message]
    assert message["body"] == "hello <b>bob</b>"
    assert message["room"] == room
    assert message["user"]["username"] == "alice"
    assert without_cursor([alice.wait_for("message")]) == [message], \
        "the sender's connection gets it too"
    assert without_cursor(bob.got("message")) == [message]


@BOTH_DATABASES
def test_a_reconnecting_member_catches_up_on_exactly_what_was_missed(target, peers, transport):
    alice, bob = peers("alice", transport=transport), peers("bob", transport=transport)
    room = shared_room(alice, bob)
    before = alice.send(room, "before")
    seen = bob.wait_for("message", lambda m: m["id"] == before["id"])
    bob.close()

    missed = [alice.send(room, f"while away {i}") for i in range(5)]

    back = peers("bob", transport=transport, http=bob.http)
    ack = back.ok("room:join", {"room": room, "since": seen["id"]})
    assert ack["messages"] == missed
    assert ack["has_more"] is False


def test_catching_up_past_the_page_limit_continues_with_history_after(server, peers, transport):
    alice, bob = peers("alice", transport=transport), peers("bob", transport=transport)
    room = shared_room(alice, bob)
    before = alice.send(room, "before")
    seen = bob.wait_for("message", lambda m: m["id"] == before["id"])
    bob.close()

    missed = [alice.send(room, f"burst {i}")["id"] for i in range(105)]

    back = peers("bob", transport=transport, http=bob.http)
    ack = back.ok("room:join", {"room": room, "since": seen["id"]})
    assert ack["has_more"] is True
    caught_up = [m["id"] for m in ack["messages"]]
    assert len(caught_up) == 100
    while True:
        page = back.ok("message:history", {"room": room, "after": caught_up[-1]})
        caught_up += [m["id"] for m in page["messages"]]
        if not page["has_more"]:
            break
    assert caught_up == missed


@BOTH_DATABASES
def test_a_retried_send_with_the_same_client_id_stores_one_message(target, peers, transport):
    alice = peers("alice", transport=transport)
    room = shared_room(alice)
    client_id = str(uuid.uuid4())
    first = alice.send(room, "only once", client_id=client_id)
    alice.close()  # the connection drops before the client saw the ack, say

    retry = peers("alice", transport=transport, http=alice.http)
    retry.ok("room:join", {"room": room})
    again = retry.send(room, "only once", client_id=client_id)

    assert again == first
    history = retry.ok("message:history", {"room": room})["messages"]
    assert [m["id"] for m in history if m["client_id"] == client_id] == [first["id"]]
    assert len(history) == 1


def logout(http: requests.Session, url: str) -> requests.Response:
    page = http.get(url + "/", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return http.post(url + "/logout", data={"csrf_token": token}, allow_redirects=False,
                     timeout=10)


def test_signing_out_closes_that_sessions_socket_and_retires_its_cookie(server, peers):
    alice = peers("alice")
    other_session = peers("alice")  # signed in separately: not signed out
    old_cookie = cookie_header(alice.http)

    assert logout(alice.http, server.url).status_code in (302, 303)

    assert alice.disconnected.wait(10), "the signed-out session's socket stayed open"
    assert other_session.connected
    assert other_session.ok("rooms:list")["rooms"] is not None

    stale = socketio.Client(reconnection=False)
    errors = []
    stale.on("connect_error", errors.append, namespace=NS)
    with pytest.raises(socketio.exceptions.ConnectionError):
        stale.connect(server.url, namespaces=[NS], headers={"Cookie": old_cookie},
                      transports=["websocket"], wait_timeout=10)
    assert errors and errors[0]["data"]["code"] == "unauthenticated"

    page = requests.get(server.url + "/", headers={"Cookie": old_cookie},
                        allow_redirects=False, timeout=10)
    assert page.status_code in (302, 303)
    assert page.headers["Location"].split("?")[0].endswith("/login")


def presence_of(username: str, online: bool, room: str):
    return lambda p: (p["room"] == room and p["user"]["username"] == username
                      and p["online"] is online)


def test_presence_shows_a_member_online_on_join_and_offline_after_they_leave(server, peers):
    bob = peers("bob")
    room = bob.create_room()
    bob.ok("room:join", {"room": room})
    alice = peers("alice")

    alice.ok("room:join", {"room": room})
    bob.wait_for("presence", presence_of("alice", True, room), timeout=10)

    alice.close()
    bob.wait_for("presence", presence_of("alice", False, room), timeout=10)


def test_the_join_ack_lists_who_is_online(server, peers):
    bob, alice = peers("bob"), peers("alice")
    room = shared_room(bob, alice)
    ack = bob.ok("room:join", {"room": room})
    assert {u["username"] for u in ack["online"]} == {"bob", "alice"}
    assert {u["username"] for u in ack["members"]} == {"bob", "alice"}

