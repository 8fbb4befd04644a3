"""Replies and reactions through a real gunicorn, with python-socketio clients (issue 16).

A message may answer another of its room (``reply_to``) and shows its quote;
emoji reactions are added and removed, one per user, emoji and message.
Every change travels through the change log: live, in catch-up by cursor
and in history alike.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.support.server import TEST_PASSWORD, sign_in, wait_until
from tests.support.sse import Feed

from .conftest import BOTH_DATABASES, NS

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(peers):
    """alice and bob, both joined to a new room of alice's; ``users`` their User objects."""
    alice, bob = peers("alice"), peers("bob")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    members = bob.ok("room:join", {"room": room})["members"]
    users = {m["username"]: m for m in members}
    return alice, bob, room, users


def reply(peer, room: str, body: str, reply_to, client_id: str | None = None) -> dict:
    return peer.call("message:send", {"room": room, "body": body, "reply_to": reply_to,
                                      "client_id": client_id or uuid.uuid4().hex})


def history(peer, room: str) -> dict[int, dict]:
    return {m["id"]: m for m in peer.ok("message:history", {"room": room})["messages"]}


def cursor_of(peer, room: str) -> int:
    return peer.ok("message:history", {"room": room, "limit": 1})["cursor"]


def catch_up(peer, room: str, cursor: int) -> list[dict]:
    ack = peer.ok("room:join", {"room": room, "cursor": cursor, "limit": 500})
    assert ack["has_more"] is False and "reset" not in ack
    return ack["changes"]


def not_found(field: str, message: str) -> dict:
    return {"ok": False, "error": {"code": "not_found", "message": message, "field": field}}


# -- replies ---------------------------------------------------------------------------

@BOTH_DATABASES
def test_a_reply_carries_its_quote_in_the_ack_live_and_in_history(pair):
    alice, bob, room, users = pair
    original = alice.send(room, "Lunch at noon?\n\nThe usual   place.")
    ack = reply(bob, room, "Count me in", original["id"])
    assert ack["ok"] is True
    message = ack["message"]
    quote = {"id": original["id"], "author": users["alice"],
             "excerpt": "Lunch at noon? The usual place.", "deleted": False}
    assert message["reply_to"] == quote
    assert message["reactions"] == []
    live = alice.wait_for("message", lambda m: m["id"] == message["id"])
    assert {k: v for k, v in live.items() if k != "cursor"} == message
    assert history(alice, room)[message["id"]] == message
    assert history(alice, room)[original["id"]]["reply_to"] is None


def test_the_quote_is_the_first_hundred_characters_of_the_original(pair):
    alice, bob, room, _ = pair
    original = alice.send(room, "x" * 99 + "yz" + "w" * 300)
    quoted = reply(bob, room, "long", original["id"])["message"]["reply_to"]
    assert quoted["excerpt"] == "x" * 99 + "y"


@pytest.mark.parametrize("case", ["missing", "other room", "deleted"])
def test_a_reply_to_a_message_not_live_in_this_room_answers_not_found_and_stores_nothing(
        pair, case):
    alice, bob, room, _ = pair
    if case == "missing":
        target = 2**62
    elif case == "other room":
        elsewhere = alice.create_room()
        alice.ok("room:join", {"room": elsewhere})
        target = alice.send(elsewhere, "over there")["id"]
    else:
        target = alice.send(room, "soon gone")["id"]
        alice.ok("message:delete", {"id": target})
    before = cursor_of(bob, room)
    assert reply(bob, room, "answer", target) == not_found(
        "reply_to", "no such message in this room to reply to")
    assert cursor_of(bob, room) == before
    assert "answer" not in [m["body"] for m in history(bob, room).values()]


@pytest.mark.parametrize("value", ["5", 0, -1, 1.5, True, [1]])
def test_a_reply_to_that_is_not_a_message_id_answers_invalid(pair, value):
    alice, bob, room, _ = pair
    ack = reply(bob, room, "answer", value)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == "reply_to"


def test_a_resent_reply_acks_the_stored_reply_with_its_quote(pair):
    alice, bob, room, users = pair
    original = alice.send(room, "question")
    first = reply(bob, room, "answer", original["id"], client_id="same-reply")
    again = reply(bob, room, "answer", original["id"], client_id="same-reply")
    assert again == first
    assert again["message"]["reply_to"]["author"] == users["alice"]


def test_an_edited_reply_keeps_its_quote(pair):
    alice, bob, room, _ = pair
    original = alice.send(room, "question")
    message = reply(bob, room, "answr", original["id"])["message"]
    edited = bob.ok("message:edit", {"id": message["id"], "body": "answer"})["message"]
    assert edited["reply_to"] == message["reply_to"]
    live = alice.wait_for("message:updated", lambda m: m["id"] == message["id"])
    assert live["reply_to"] == message["reply_to"] and live["body"] == "answer"


@BOTH_DATABASES
def test_a_reply_to_a_message_later_deleted_reads_deleted_in_history_and_catch_up(pair):
    alice, bob, room, _ = pair
    cursor = cursor_of(bob, room)
    original = alice.send(room, "a secret said too soon")
    answer = reply(bob, room, "noted", original["id"])["message"]
    bob.ok("message:edit", {"id": answer["id"], "body": "noted!"})
    alice.ok("message:delete", {"id": original["id"]})
    gone = {"id": original["id"], "author": None, "excerpt": None, "deleted": True}

    assert history(alice, room)[answer["id"]]["reply_to"] == gone
    changes = catch_up(bob, room, cursor)
    assert [(c["event"], c["data"]["id"]) for c in changes] == [
        ("message", answer["id"]), ("message:updated", answer["id"]),
        ("message:deleted", original["id"])]
    assert changes[0]["data"]["reply_to"] == gone
    assert changes[1]["data"]["reply_to"] == gone
    assert "secret" not in repr(changes)


# -- reactions -----------------------------------------------------------------------

@BOTH_DATABASES
def test_a_reaction_reaches_every_joined_connection_and_counts_in_history_with_me(pair):
    alice, bob, room, users = pair
    message = alice.send(room, "ship it?")
    assert bob.call("reaction:add", {"id": message["id"], "emoji": "👍"}) == {"ok": True}
    for peer in (alice, bob):
        event = peer.wait_for("reaction:updated", lambda e: e["id"] == message["id"])
        assert {k: v for k, v in event.items() if k != "cursor"} == {
            "room": room, "id": message["id"], "emoji": "👍", "user": users["bob"],
            "added": True, "count": 1}
    assert alice.call("reaction:add", {"id": message["id"], "emoji": "👍"}) == {"ok": True}
    assert bob.call("reaction:add", {"id": message["id"], "emoji": "🎉"}) == {"ok": True}
    alice.wait_for("reaction:updated", lambda e: e["emoji"] == "🎉")
    assert history(alice, room)[message["id"]]["reactions"] == [
        {"emoji": "👍", "count": 2, "me": True}, {"emoji": "🎉", "count": 1, "me": False}]
    assert history(bob, room)[message["id"]]["reactions"] == [
        {"emoji": "👍", "count": 2, "me": True}, {"emoji": "🎉", "count": 1, "me": True}]
    joined = bob.ok("room:join", {"room": room})["messages"]
    assert next(m for m in joined if m["id"] == message["id"])["reactions"][1] == {
        "emoji": "🎉", "count": 1, "me": True}


def test_removing_lowers_the_count_and_the_last_removal_drops_the_emoji(pair):
    alice, bob, room, users = pair
    message = alice.send(room, "vote")
    for peer in (alice, bob):
        peer.ok("reaction:add", {"id": message["id"], "emoji": "👀"})
    assert bob.call("reaction:remove", {"id": message["id"], "emoji": "👀"}) == {"ok": True}
    removed = alice.wait_for("reaction:updated", lambda e: e["added"] is False)
    assert (removed["user"], removed["count"]) == (users["bob"], 1)
    alice.ok("reaction:remove", {"id": message["id"], "emoji": "👀"})
    alice.wait_for("reaction:updated", lambda e: e["added"] is False and e["count"] == 0)
    assert history(bob, room)[message["id"]]["reactions"] == []


@BOTH_DATABASES
def test_adding_twice_or_removing_what_was_not_given_changes_and_records_nothing(pair):
    alice, bob, room, _ = pair
    message = alice.send(room, "once")
    bob.ok("reaction:add", {"id": message["id"], "emoji": "🙏"})
    alice.wait_for("reaction:updated", lambda e: e["emoji"] == "🙏")
    before = cursor_of(bob, room)
    assert bob.call("reaction:add", {"id": message["id"], "emoji": "🙏"}) == {"ok": True}
    assert bob.call("reaction:remove", {"id": message["id"], "emoji": "😢"}) == {"ok": True}
    assert alice.call("reaction:remove", {"id": message["id"], "emoji": "🙏"}) == {"ok": True}
    assert cursor_of(bob, room) == before
    # The next change is the next position: nothing was recorded in between.
    marker = alice.send(room, "after")
    bob.wait_for("message", lambda m: m["id"] == marker["id"])
    assert len(alice.got("reaction:updated")) == 1
    assert [c["event"] for c in catch_up(bob, room, before)] == ["message"]
    assert history(bob, room)[message["id"]]["reactions"] == [
        {"emoji": "🙏", "count": 1, "me": True}]


def test_catch_up_by_cursor_carries_reaction_changes_exactly_as_live(pair):
    alice, bob, room, _ = pair
    message = alice.send(room, "away")
    cursor = cursor_of(bob, room)
    start = len(alice.received)
    bob.close()
    alice.ok("reaction:add", {"id": message["id"], "emoji": "❤️"})
    alice.ok("reaction:add", {"id": message["id"], "emoji": "😂"})
    alice.ok("reaction:remove", {"id": message["id"], "emoji": "❤️"})
    alice.wait_for("reaction:updated", lambda e: e["added"] is False)
    live = [{"event": name, "data": payload} for name, payload in alice.received[start:]
            if name == "reaction:updated"]
    assert [(c["data"]["emoji"], c["data"]["added"], c["data"]["count"]) for c in live] == [
        ("❤️", True, 1), ("😂", True, 1), ("❤️", False, 0)]
    back = type(bob)(bob.url, "bob", http=bob.http).connect()
    try:
        assert catch_up(back, room, cursor) == live
    finally:
        back.close()


@pytest.mark.parametrize("given, stored", [
    ("👍", "👍"), ("❤", "❤️"), ("👍🏽", "👍🏽"), ("🇫🇷", "🇫🇷"),
    ("👨\u200d👩\u200d👧\u200d👦", "👨\u200d👩\u200d👧\u200d👦"), ("1️⃣", "1️⃣")])
def test_any_single_emoji_is_a_reaction_stored_fully_qualified(pair, given, stored):
    alice, bob, room, _ = pair
    message = alice.send(room, "react")
    bob.ok("reaction:add", {"id": message["id"], "emoji": given})
    assert history(bob, room)[message["id"]]["reactions"] == [
        {"emoji": stored, "count": 1, "me": True}]


@pytest.mark.parametrize("emoji", ["a", "1", "+1", ":thumbsup:", "👍👍", "👍 ", "\u0007",
                                   "\u200d", "<b>", "👍" * 40])
def test_a_reaction_that_is_not_one_emoji_answers_invalid_and_stores_nothing(pair, emoji):
    alice, bob, room, _ = pair
    message = alice.send(room, "react")
    before = cursor_of(bob, room)
    ack = bob.call("reaction:add", {"id": message["id"], "emoji": emoji})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == "emoji"
    assert cursor_of(bob, room) == before


DISTINCT = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍",
            "😘", "🥰", "😗", "😙", "🥲", "😚", "🙂", "🤗"]


@BOTH_DATABASES
def test_a_message_carries_at_most_twenty_different_emoji(pair):
    alice, bob, room, _ = pair
    message = alice.send(room, "go wild")
    for emoji in DISTINCT[:20]:
        alice.ok("reaction:add", {"id": message["id"], "emoji": emoji})
    ack = bob.call("reaction:add", {"id": message["id"], "emoji": DISTINCT[20]})
    assert ack == {"ok": False, "error": {
        "code": "conflict", "field": "emoji",
        "message": "a message carries at most 20 different reactions: add to one it has"}}
    # One it already has is still welcome.
    bob.ok("reaction:add", {"id": message["id"], "emoji": DISTINCT[0]})
    reactions = history(bob, room)[message["id"]]["reactions"]
    assert [r["emoji"] for r in reactions] == DISTINCT[:20]
    assert reactions[0] == {"emoji": DISTINCT[0], "count": 2, "me": True}


@BOTH_DATABASES
def test_concurrent_reactions_keep_exact_counts_and_the_cap(pair, peers):
    # Four connections (two per person) at once: every accepted add is one
    # reaction:updated whose count is exact at its position, and the cap of
    # 20 different emoji holds although the adds race for its last places.
    alice, bob, room, _ = pair
    message = alice.send(room, "race")
    for emoji in DISTINCT[:18]:
        alice.ok("reaction:add", {"id": message["id"], "emoji": emoji})
    racers = [alice, bob, peers("alice"), peers("bob")]
    for racer in racers[2:]:
        racer.ok("room:join", {"room": room})
    cursor = cursor_of(bob, room)
    acks: list[dict] = []
    wanted = [("👍", racers[0]), ("👍", racers[1]), ("🎉", racers[2]), ("🎉", racers[3]),
              ("🚀", racers[0]), ("🚀", racers[1]), ("🌮", racers[2]), ("🌮", racers[3]),
              ("👍", racers[2]), ("👍", racers[3]), ("🎉", racers[0]), ("🎉", racers[1])]
    for emoji, racer in wanted:
        racer.sio.emit("reaction:add", {"id": message["id"], "emoji": emoji}, namespace=NS,
                       callback=acks.append)
    wait_until(lambda: len(acks) == len(wanted), 20, message="every add acked")
    refused = [a for a in acks if not a["ok"]]
    assert all(a["error"]["code"] == "conflict" for a in refused)
    changes = catch_up(bob, room, cursor)
    counts: dict[str, int] = {}
    for change in changes:
        data = change["data"]
        assert change["event"] == "reaction:updated" and data["added"] is True
        counts[data["emoji"]] = counts.get(data["emoji"], 0) + 1
        assert data["count"] == counts[data["emoji"]]
    reactions = history(bob, room)[message["id"]]["reactions"]
    assert len(reactions) == 20
    assert {r["emoji"]: r["count"] for r in reactions[18:]} == counts
    # alice and bob each at most once per emoji: their second connection's
    # add of the same emoji was a no-op, not a second reaction.
    assert all(count <= 2 for count in counts.values())


@BOTH_DATABASES
def test_a_deleted_message_loses_its_reactions_and_takes_none(pair):
    alice, bob, room, _ = pair
    message = alice.send(room, "doomed")
    cursor = cursor_of(bob, room)
    bob.ok("reaction:add", {"id": message["id"], "emoji": "👍"})
    alice.ok("message:delete", {"id": message["id"]})
    assert bob.call("reaction:add", {"id": message["id"], "emoji": "🎉"}) == not_found(
        "id", "no such message")
    assert bob.call("reaction:remove", {"id": message["id"], "emoji": "👍"}) == not_found(
        "id", "no such message")
    # The log keeps only that it is gone.
    assert [c["event"] for c in catch_up(bob, room, cursor)] == ["message:deleted"]


def test_reacting_in_a_public_room_needs_membership_and_a_private_room_is_not_revealed(peers):
    alice, bob = peers("alice"), peers("bob")
    public = alice.create_room()
    private = alice.create_room(private=True)
    for slug in (public, private):
        alice.ok("room:join", {"room": slug})
    in_public = alice.send(public, "open")
    in_private = alice.send(private, "closed")
    assert bob.call("reaction:add", {"id": in_public["id"], "emoji": "👍"}) == {
        "ok": False, "error": {"code": "forbidden", "message": "join the room first",
                               "field": "id"}}
    assert bob.call("reaction:add", {"id": in_private["id"], "emoji": "👍"}) == not_found(
        "id", "no such message")
    assert bob.call("reaction:add", {"id": 2**62, "emoji": "👍"}) == not_found(
        "id", "no such message")


def test_the_sse_feed_resumed_after_an_id_carries_reactions_and_unquoted_replies(server, pair):
    alice, bob, room, _ = pair
    original = alice.send(room, "feed me")
    cursor = cursor_of(bob, room)
    answer = reply(bob, room, "fed", original["id"])["message"]
    bob.ok("reaction:add", {"id": answer["id"], "emoji": "👍"})
    alice.ok("message:delete", {"id": original["id"]})
    alice.wait_for("message:deleted", lambda e: e["id"] == original["id"])
    feed = Feed(f"{server.url}/api/v1/rooms/{room}/events", sign_in(server.url, "alice"),
                last_event_id=str(cursor)).open()
    try:
        events = feed.wait_for_count(3)
    finally:
        feed.close()
    assert [e.event for e in events] == ["message", "reaction:updated", "message:deleted"]
    assert json.loads(events[0].data)["reply_to"] == {
        "id": original["id"], "author": None, "excerpt": None, "deleted": True}
    assert json.loads(events[1].data)["count"] == 1


# -- REST ------------------------------------------------------------------------------

def test_rest_sends_replies_reacts_and_reads_both_back(server, pair):
    alice, bob, room, users = pair
    token = requests.post(f"{server.url}/api/v1/auth/token", timeout=10, json={
        "username": "bob", "password": TEST_PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    original = alice.send(room, "over HTTP?")
    sent = requests.post(f"{server.url}/api/v1/rooms/{room}/messages", headers=headers,
                         json={"body": "yes", "reply_to": original["id"]}, timeout=10)
    assert sent.status_code == 201
    assert sent.json()["message"]["reply_to"] == {
        "id": original["id"], "author": users["alice"], "excerpt": "over HTTP?",
        "deleted": False}
    url = f"{server.url}/api/v1/messages/{original['id']}/reactions"
    assert requests.post(url, headers=headers, json={"emoji": "🎉"}, timeout=10).status_code == 204
    assert requests.post(url, headers=headers, json={"emoji": "👍"}, timeout=10).status_code == 204
    assert requests.delete(f"{url}/%F0%9F%91%8D", headers=headers, timeout=10).status_code == 204
    bad = requests.post(url, headers=headers, json={"emoji": "yes"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "emoji"
    alice.wait_for("reaction:updated", lambda e: e["added"] is False)
    page = requests.get(f"{server.url}/api/v1/rooms/{room}/messages", headers=headers,
                        timeout=10).json()["messages"]
    assert [(m["body"], m["reactions"]) for m in page] == [
        ("over HTTP?", [{"emoji": "🎉", "count": 1, "me": True}]), ("yes", [])]
