"""Mentions and notification levels through a real gunicorn worker and python-socketio.

``@name`` mentions a member of the room, ``@room`` (owner or admin) every
member; each mentioned member's connections get ``mention`` whether or not
they joined the room, unless their level for it is ``none``. Rooms count
``mentions_unread`` beside ``unread``. The server of this module keeps the
``@room`` limit small enough to reach.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import uuid

import pytest

from tests.support import postgres
from tests.support.requirements import unavailable
from tests.support.server import TEST_PASSWORD, flask_cli, sign_in, sign_up
from tests.support.sse import Feed

from .conftest import e2e_env, start_server, stop_server

pytestmark = pytest.mark.e2e

ROOM_LIMIT = 2
MAX_NAMES = 4
_names = itertools.count(1)


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def mentions_server(request, tmp_path_factory):
    """This module's server, on SQLite and on PostgreSQL (the counts are one
    grouped query each, which both must answer alike)."""
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            reason = postgres.available()
            if reason is not None:
                unavailable(f"{reason}; start one or point PARLEY_TEST_POSTGRES_URL at one")
            url = stack.enter_context(postgres.throwaway_database())
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp('mentions-db') / 'parley.sqlite3'}"
        env = e2e_env(url, MENTION_ROOM_RATE_LIMIT=f"{ROOM_LIMIT} per hour",
                      MENTION_MAX_NAMES=str(MAX_NAMES))
        flask_cli(env, "init-db")
        flask_cli(env, "create-user", "boss", "--admin", "--password-stdin",
                  stdin=TEST_PASSWORD + "\n")
        running = start_server(env, f"server-mentions-{request.param}")
        yield running
        stop_server(running)


@pytest.fixture
def target(mentions_server):
    """The ``peers`` of this module connect to its own server."""
    return mentions_server


@pytest.fixture
def person(mentions_server, peers):
    """A new account (``<prefix><n>``), connected; fresh names keep tests and limits apart."""
    def make(prefix: str):
        name = f"{prefix}{next(_names)}{uuid.uuid4().hex[:4]}"
        sign_up(mentions_server.url, name)
        return peers(name)
    return make


def new_room(owner, *members, private: bool = False) -> str:
    """A room of ``owner`` that ``members`` belong to (invited: members whose
    connections have not joined it)."""
    room = owner.create_room(private=private)
    for member in members:
        owner.ok("room:invite", {"room": room, "user": member.username})
    return room


def user_id(peer) -> int:
    return peer.ok("users:search", {"query": peer.username})["users"][0]["id"]


def room_of(peer, slug: str) -> dict:
    return next(r for r in peer.ok("rooms:list")["rooms"] if r["slug"] == slug)


def mentions_got(peer, message_id: int) -> list[dict]:
    return [m for m in peer.got("mention") if m["message"]["id"] == message_id]


def test_a_mentioned_member_gets_mention_on_a_connection_that_never_joined_the_room(person):
    alice, bob = person("alice"), person("bob")
    room = new_room(bob, alice)
    elsewhere = alice.create_room()  # alice's connection shows another room
    alice.ok("room:join", {"room": elsewhere})
    message = bob.send(room, f"lunch, @{alice.username}?")
    assert message["mentions"] == [user_id(alice)]
    assert message["mentions_room"] is False
    pushed = alice.wait_for("mention", lambda m: m["message"]["id"] == message["id"])
    assert pushed == {"room": room, "message": message}
    assert alice.got("message") == []  # not joined: the room's stream did not reach it


def test_a_name_that_is_no_member_of_a_private_room_mentions_no_one_and_tells_nothing(person):
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    room = new_room(bob, alice, private=True)
    message = bob.send(room, f"@{carol.username} and @{alice.username}, and @nobody-here")
    assert message["mentions"] == [user_id(alice)]
    alice.wait_for("mention", lambda m: m["message"]["id"] == message["id"])
    # Carol hears nothing (alice, told later, has heard all before it), and
    # nothing she can ask reveals the room.
    later = bob.send(room, f"@{alice.username} after")
    alice.wait_for("mention", lambda m: m["message"]["id"] == later["id"])
    assert carol.got("mention") == [] and carol.got("message") == []
    assert room not in [r["slug"] for r in carol.ok("rooms:list")["rooms"]]
    refused = carol.call("room:join", {"room": room})
    assert refused["error"]["code"] == "not_found"
    assert carol.call("message:edit", {"id": later["id"], "body": "x"})["error"]["code"] == \
        "not_found"


def test_a_name_that_is_no_member_of_a_public_room_mentions_no_one(person):
    alice, bob = person("alice"), person("bob")
    room = bob.create_room()
    bob.ok("room:join", {"room": room})
    message = bob.send(room, f"hey @{alice.username}")
    assert message["mentions"] == []
    assert "mentions_unread" not in room_of(alice, room)  # she is no member
    probe = bob.send(room, "a marker")
    bob.wait_for("message", lambda m: m["id"] == probe["id"])
    assert alice.got("mention") == []


def test_at_room_by_a_member_who_is_not_the_owner_mentions_no_one(person):
    owner, alice, bob = person("owner"), person("alice"), person("bob")
    room = new_room(owner, alice, bob)
    message = bob.send(room, "@room is anyone there?")
    assert message["mentions"] == [] and message["mentions_room"] is False
    assert room_of(alice, room)["mentions_unread"] == 0
    assert room_of(alice, room)["unread"] == 1
    ping = owner.send(room, f"@{alice.username} ping")
    alice.wait_for("mention", lambda m: m["message"]["id"] == ping["id"])
    assert mentions_got(alice, message["id"]) == [] and owner.got("mention") == []


def test_at_room_by_the_owner_mentions_every_member_but_the_author(person):
    owner, alice, bob = person("owner"), person("alice"), person("bob")
    room = new_room(owner, alice, bob)
    message = owner.send(room, "@room standup in 5")
    assert message["mentions"] == [] and message["mentions_room"] is True
    for member in (alice, bob):
        member.wait_for("mention", lambda m: m["message"]["id"] == message["id"])
        assert room_of(member, room)["mentions_unread"] == 1
    assert room_of(owner, room)["mentions_unread"] == 0
    assert owner.got("mention") == []


def test_at_room_by_an_admin_who_does_not_own_the_room_mentions_everyone(person, peers):
    owner, alice = person("owner"), person("alice")
    room = new_room(owner, alice)
    boss = peers("boss")
    boss.ok("room:join", {"room": room})
    message = boss.send(room, "@room maintenance tonight")
    assert message["mentions_room"] is True
    alice.wait_for("mention", lambda m: m["message"]["id"] == message["id"])
    owner.wait_for("mention", lambda m: m["message"]["id"] == message["id"])


def test_at_room_is_rate_limited_and_a_refused_send_stores_nothing(person):
    owner, alice = person("owner"), person("alice")
    room = new_room(owner, alice)
    for i in range(ROOM_LIMIT):
        owner.send(room, f"@room call {i}")
    refused = owner.call("message:send", {"room": room, "body": "@room once more",
                                          "client_id": uuid.uuid4().hex})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "rate_limited" and refused["error"]["retry_after"] > 0
    owner.ok("room:join", {"room": room})
    bodies = [m["body"] for m in owner.ok("message:history", {"room": room})["messages"]]
    assert bodies == [f"@room call {i}" for i in range(ROOM_LIMIT)]
    # Messages without @room are not held back by it.
    assert owner.send(room, f"@{alice.username} still here")["mentions"] == [user_id(alice)]


def test_only_the_first_distinct_words_up_to_the_cap_are_read_as_mentions(person):
    crowd = [person(f"p{i}") for i in range(MAX_NAMES + 1)]
    owner = person("owner")
    room = new_room(owner, *crowd)
    names = [f"@{p.username}" for p in crowd]
    body = " ".join([names[0], names[0], *names[1:]])  # a repeated word counts once
    message = owner.send(room, body)
    assert message["mentions"] == sorted(user_id(p) for p in crowd[:MAX_NAMES])
    crowd[MAX_NAMES - 1].wait_for("mention", lambda m: m["message"]["id"] == message["id"])
    assert mentions_got(crowd[MAX_NAMES], message["id"]) == []


def test_mentions_unread_counts_mentions_after_the_read_marker(person):
    alice, bob = person("alice"), person("bob")
    room = new_room(bob, alice)
    bob.send(room, "plain")
    first = bob.send(room, f"@{alice.username} one")
    bob.send(room, "plain again")
    second = bob.send(room, f"two, @{alice.username}.")
    joined = alice.ok("room:join", {"room": room})["room"]
    assert (joined["unread"], joined["mentions_unread"]) == (4, 2)
    assert alice.ok("room:read", {"room": room, "last_read_id": first["id"]}) == {
        "ok": True, "unread": 2, "mentions_unread": 1}
    bob.ok("message:delete", {"id": second["id"]})
    assert (room_of(alice, room)["unread"], room_of(alice, room)["mentions_unread"]) == (1, 0)
    # One's own mentions of oneself never count.
    alice.send(room, f"note to self @{alice.username}")
    assert room_of(alice, room)["mentions_unread"] == 0


def test_level_none_stops_the_pushes_but_not_the_count(person):
    alice, bob = person("alice"), person("bob")
    room = new_room(bob, alice)
    assert alice.ok("room:notify", {"room": room, "level": "none"}) == {
        "ok": True, "room": room, "notify": "none"}
    alice.wait_for("room:notify", lambda n: n == {"room": room, "notify": "none"})
    muted = bob.send(room, f"@{alice.username} muted")
    assert muted["mentions"] == [user_id(alice)]  # stored all the same
    alice.ok("room:notify", {"room": room, "level": "all"})
    heard = bob.send(room, f"@{alice.username} heard")
    alice.wait_for("mention", lambda m: m["message"]["id"] == heard["id"])
    assert mentions_got(alice, muted["id"]) == []
    assert room_of(alice, room)["mentions_unread"] == 2
    assert room_of(alice, room)["notify"] == "all"


def test_notification_levels_are_checked_and_kept_per_member(person):
    alice, bob = person("alice"), person("bob")
    room = new_room(bob, alice)
    assert room_of(alice, room)["notify"] == "mentions"  # a room's default
    bad = alice.call("room:notify", {"room": room, "level": "loud"})
    assert bad["ok"] is False and bad["error"]["code"] == "invalid"
    assert bad["error"]["field"] == "level"
    alice.ok("room:notify", {"room": room, "level": "none"})
    assert room_of(bob, room)["notify"] == "mentions"
    outsider = person("carol")
    hidden = bob.create_room(private=True)
    assert outsider.call("room:notify", {"room": hidden, "level": "all"})["error"]["code"] \
        == "not_found"
    dm = alice.ok("dm:open", {"user": bob.username})["room"]
    assert dm["notify"] == "all"  # a direct message's default


def test_an_edit_that_adds_a_mention_tells_only_the_newly_mentioned(person):
    alice, bob, carol = person("alice"), person("bob"), person("carol")
    room = new_room(bob, alice, carol)
    message = bob.send(room, f"@{alice.username} draft")
    alice.wait_for("mention", lambda m: m["message"]["id"] == message["id"])
    edited = bob.ok("message:edit", {"id": message["id"],
                                     "body": f"@{alice.username} @{carol.username} final"})
    assert edited["message"]["mentions"] == sorted([user_id(alice), user_id(carol)])
    pushed = carol.wait_for("mention", lambda m: m["message"]["id"] == message["id"])
    assert pushed["message"] == edited["message"]
    # Removed again: no longer counted for carol.
    assert room_of(carol, room)["mentions_unread"] == 1
    bob.ok("message:edit", {"id": message["id"], "body": f"@{alice.username} only"})
    assert room_of(carol, room)["mentions_unread"] == 0
    assert len(mentions_got(alice, message["id"])) == 1


def test_catch_up_by_cursor_and_the_feed_carry_the_message_with_its_mentions(person,
                                                                             mentions_server):
    alice, bob = person("alice"), person("bob")
    room = new_room(bob, alice)
    alice.ok("room:join", {"room": room})
    cursor = alice.ok("message:history", {"room": room, "limit": 1})["cursor"]
    feed = Feed(f"{mentions_server.url}/api/v1/rooms/{room}/events",
                sign_in(mentions_server.url, alice.username)).open()
    try:
        message = bob.send(room, f"while you were out, @{alice.username}")
        edited = bob.ok("message:edit", {"id": message["id"], "body": "@room nothing"})
        caught = alice.ok("room:join", {"room": room, "cursor": cursor})["changes"]
        assert [(c["event"], c["data"]["mentions"], c["data"]["mentions_room"]) for c in caught] \
            == [("message", [user_id(alice)], False), ("message:updated", [], True)]
        assert {k: v for k, v in caught[1]["data"].items() if k != "cursor"} == edited["message"]
        events = feed.wait_for_count(2)
        assert [json.loads(e.data)["mentions"] for e in events] == [[user_id(alice)], []]
    finally:
        feed.close()


def test_the_rest_api_sets_the_level_by_the_same_rule(person, mentions_server):
    from .test_api import api, password_pair

    alice, bob = person("alice"), person("bob")
    room = new_room(bob, alice)
    pair = password_pair(mentions_server.url, alice.username)
    answer = api(mentions_server.url, "PUT", f"/api/v1/rooms/{room}/notify", pair,
                 json={"level": "none"})
    assert (answer.status_code, answer.json()) == (200, {"room": room, "notify": "none"})
    alice.wait_for("room:notify", lambda n: n == {"room": room, "notify": "none"})
    wrong = api(mentions_server.url, "PUT", f"/api/v1/rooms/{room}/notify", pair,
                json={"level": "sometimes"})
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "level"
    shown = api(mentions_server.url, "GET", f"/api/v1/rooms/{room}", pair).json()["room"]
    assert (shown["notify"], shown["mentions_unread"]) == ("none", 0)
    sent = api(mentions_server.url, "POST", f"/api/v1/rooms/{room}/messages",
               password_pair(mentions_server.url, bob.username),
               json={"body": f"@{alice.username} via REST"}).json()["message"]
    assert sent["mentions"] == [user_id(alice)] and sent["mentions_room"] is False
