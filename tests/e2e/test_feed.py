"""The SSE feed of a room, through a real gunicorn worker and a real SSE client.

``GET /api/v1/rooms/<slug>/events``: each change as one event (``id:`` its
position, ``event:`` the socket event's name, ``data:`` the same JSON),
from now, or resumed after ``Last-Event-ID`` with nothing missed or doubled.
"""
from __future__ import annotations

import json

import httpx
import pytest

from tests.support.server import cookie_header, sign_in
from tests.support.sse import Feed

from .conftest import BOTH_DATABASES
from .test_chat import logout

pytestmark = pytest.mark.e2e


def feed_url(server, room: str) -> str:
    return f"{server.url}/api/v1/rooms/{room}/events"


@pytest.fixture
def feeds():
    opened: list[Feed] = []

    def open_feed(*args, **kwargs) -> Feed:
        feed = Feed(*args, **kwargs)
        opened.append(feed)
        return feed.open()

    yield open_feed
    for feed in opened:
        feed.close()


def as_sent(event) -> tuple[int, str, dict]:
    return int(event.id), event.event, json.loads(event.data)


def test_the_feed_streams_each_change_from_now_as_the_socket_sends_it(server, peers, feeds):
    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    earlier = alice.send(room, "before the feed opened")
    alice.wait_for("message", lambda m: m["id"] == earlier["id"])
    feed = feeds(feed_url(server, room), sign_in(server.url, "bob"))
    already = len(alice.received)
    assert feed.status == 200
    assert feed.headers["content-type"].startswith("text/event-stream")
    assert feed.headers["x-accel-buffering"] == "no"
    assert feed.headers["cache-control"] == "no-cache"

    message = alice.send(room, "hello, dashboard")
    alice.ok("message:edit", {"id": earlier["id"], "body": "edited"})
    alice.ok("message:delete", {"id": message["id"]})
    events = feed.wait_for_count(3)

    alice.wait_for("message:deleted")
    live = [(p["cursor"], name, p) for name, p in alice.received[already:]
            if name.startswith("message")]
    assert [as_sent(e) for e in events] == live
    assert [e.event for e in events] == ["message", "message:updated", "message:deleted"]
    assert json.loads(events[0].data)["body"] == "hello, dashboard"


def test_a_dropped_feed_resumes_after_its_last_event_id_missing_nothing(server, peers, feeds):
    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    bob_http = sign_in(server.url, "bob")
    first = feeds(feed_url(server, room), bob_http)
    sent = [alice.send(room, f"m{i}") for i in range(3)]
    seen = first.wait_for_count(3)
    first.close()  # the connection drops

    alice.ok("message:edit", {"id": sent[0]["id"], "body": "m0, edited"})
    alice.ok("message:delete", {"id": sent[1]["id"]})
    later = alice.send(room, "while the feed was away")

    again = feeds(feed_url(server, room), bob_http, last_event_id=seen[-1].id)
    resumed = again.wait_for_count(3)
    assert [e.event for e in resumed] == ["message:updated", "message:deleted", "message"]
    assert json.loads(resumed[-1].data) == {**later, "cursor": int(resumed[-1].id)}
    assert [int(e.id) for e in resumed] == sorted({int(e.id) for e in resumed})
    assert int(resumed[0].id) > int(seen[-1].id)
    # The query parameter is the same, for clients that cannot set headers.
    by_query = feeds(feed_url(server, room), bob_http,
                     params={"last_event_id": seen[-1].id})
    assert [e.id for e in by_query.wait_for_count(3)] == [e.id for e in resumed]


def test_the_feed_sends_heartbeats_and_a_retry_interval(server, peers):
    alice = peers("alice")
    room = alice.create_room()
    http = sign_in(server.url, "alice")
    lines = []
    with httpx.Client(headers={"Cookie": cookie_header(http)}, timeout=10) as client:
        with client.stream("GET", feed_url(server, room)) as response:
            for line in response.iter_lines():
                lines.append(line)
                if line == ": heartbeat":
                    break
    assert lines[0].startswith("retry: ") and int(lines[0].split()[1]) > 0
    assert ": heartbeat" in lines


def test_a_private_room_feed_is_for_members_only(server, peers):
    alice = peers("alice")
    room = alice.create_room(private=True)
    bob = sign_in(server.url, "bob")
    with httpx.Client(headers={"Cookie": cookie_header(bob)}, timeout=10) as client:
        assert client.get(feed_url(server, room)).status_code == 404
        assert client.get(feed_url(server, "no-such-room")).status_code == 404
    with httpx.Client(timeout=10) as anonymous:
        refused = anonymous.get(feed_url(server, room), headers={"Accept": "text/event-stream"})
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="parley"'
        assert refused.json()["error"]["code"] == "unauthenticated"


def test_the_feed_ends_when_its_session_signs_out(server, peers, feeds):
    alice = peers("alice")
    room = alice.create_room()
    http = sign_in(server.url, "alice")
    feed = feeds(feed_url(server, room), http)
    assert logout(http, server.url).status_code in (302, 303)
    assert feed.ended.wait(10), "the signed-out session's feed stayed open"


def test_the_feed_ends_when_its_reader_leaves_the_private_room(server, peers, feeds):
    alice, bob = peers("alice"), peers("bob")
    room = alice.create_room(private=True)
    alice.ok("room:invite", {"room": room, "user": "bob"})
    feed = feeds(feed_url(server, room), bob.http)
    bob.ok("room:leave", {"room": room})
    assert feed.ended.wait(10), "the feed outlived its reader's membership"
    assert [e.event for e in feed.got()] == ["member:removed"]


@BOTH_DATABASES
def test_idle_feeds_hold_no_database_connection(target, peers, feeds):
    # More open feeds than the worker's connection pool holds (5 + 10
    # overflow): if a waiting stream kept a connection, the later streams and
    # the send below would wait for the pool and time out.
    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    bob_http = sign_in(target.url, "bob")
    opened = [feeds(feed_url(target, room), bob_http) for _ in range(25)]
    assert {feed.status for feed in opened} == {200}
    message = alice.send(room, "to every dashboard")
    for feed in opened:
        [event] = feed.wait_for_count(1)
        assert json.loads(event.data)["id"] == message["id"]


def test_a_bearer_access_token_opens_the_feed_too(server, peers):
    from tests.support.server import TEST_PASSWORD

    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    with httpx.Client(timeout=httpx.Timeout(10, read=30)) as client:
        token = client.post(f"{server.url}/api/v1/auth/token",
                            json={"username": "bob", "password": TEST_PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        refused = client.get(feed_url(server, room), headers={"Authorization": "Bearer not-a-token"})
        # Answered as the REST API answers it, so a client knows to refresh.
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert refused.json()["error"]["code"] == "unauthenticated"
        with client.stream("GET", feed_url(server, room), headers=headers) as response:
            assert response.status_code == 200
            sent = None
            for line in response.iter_lines():
                if line.startswith(": room") and sent is None:
                    sent = alice.send(room, "for a bot")
                if line.startswith("data: "):
                    assert json.loads(line[len("data: "):])["id"] == sent["id"]
                    break
