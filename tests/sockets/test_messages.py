"""``message:send``, ``message:history``, ``message:edit``, ``message:delete``, ``room:read``."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from app import events
from app.extensions import db
from app.models import Message
from tests.conftest import call, received, without_cursor

from .conftest import drain, in_db, joined, message_count, public_room, send, sent, snapshot
from .test_rooms import store_messages, user_id

TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def chat(auth):
    """alice owns #general and has joined it; bob has joined; carol is connected
    but never joined (not a member)."""
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob, carol)
    return alice, bob, carol


def ids(messages: list[dict]) -> list[int]:
    return [m["id"] for m in messages]


# -- message:send -----------------------------------------------------------

def test_a_sent_message_reaches_every_joined_connection_the_senders_included(app, chat):
    alice, bob, carol = chat
    ack = send(bob, "general", "hello", "c-1")
    message = ack["message"]
    assert ack["ok"] is True
    assert TIME_FORMAT.match(message["created_at"])
    assert {k: v for k, v in message.items() if k != "created_at"} == {
        "id": message["id"], "room": "general",
        "user": {"id": user_id(app, "bob"), "username": "bob", "bot": False, "display_name": None},
        "body": "hello", "edited_at": None, "client_id": "c-1",
        "reply_to": None, "reactions": [], "mentions": [], "mentions_room": False}
    assert without_cursor(received(alice)) == [message]
    assert without_cursor(received(bob)) == [message]
    assert received(carol) == []


def test_message_ids_only_grow(chat):
    alice, bob, _ = chat
    first = sent(alice, "general")
    second = sent(bob, "general")
    call(alice, "message:delete", {"id": second["id"]})
    third = sent(alice, "general")
    assert first["id"] < second["id"] < third["id"]


def test_a_send_is_acked_only_after_the_message_is_committed(app, chat, monkeypatch):
    alice, _, _ = chat
    seen_at_broadcast = []
    broadcast = events.change

    def committed_first(change):
        # A connection of its own sees only what is committed.
        with db.engine.connect() as other:
            seen_at_broadcast.append(other.execute(
                text("SELECT body FROM messages WHERE id = :id"), {"id": change.data["id"]}
            ).scalar())
        broadcast(change)

    monkeypatch.setattr(events, "change", committed_first)
    ack = send(alice, "general", "durable")
    assert seen_at_broadcast == ["durable"]
    assert in_db(app, select(Message.body).where(Message.id == ack["message"]["id"])) == [
        ("durable",)]


def test_sending_again_with_the_same_client_id_stores_nothing_and_acks_the_same_message(
        app, chat):
    alice, bob, _ = chat
    first = send(alice, "general", "once", "retry-me")
    again = send(alice, "general", "once", "retry-me")
    changed = send(alice, "general", "a different body", "retry-me")
    assert first == again == changed
    assert message_count(app) == 1
    assert without_cursor(received(bob, "message")) == [first["message"]]


def test_a_client_id_is_unique_per_user_not_per_server(app, chat):
    alice, bob, _ = chat
    mine, theirs = send(alice, "general", "a", "same"), send(bob, "general", "b", "same")
    assert mine["message"]["id"] != theirs["message"]["id"]
    assert message_count(app) == 2


def test_the_21st_message_within_the_burst_answers_rate_limited(app, chat):
    alice, bob, _ = chat
    for i in range(20):
        assert send(alice, "general", f"burst {i}")["ok"], i
    drain(bob)
    ack = send(alice, "general", "one too many", "too-many")
    assert ack["ok"] is False
    assert ack["error"]["code"] == "rate_limited"
    assert 0 < ack["error"]["retry_after"] <= 2
    assert message_count(app) == 20
    assert received(bob) == []
    # Another user has a budget of their own.
    assert send(bob, "general")["ok"]


def test_the_rate_limit_is_per_user_across_their_connections(auth, chat):
    alice, _, _ = chat
    alice_tab = auth.socket("alice")
    for i in range(10):
        assert send(alice, "general")["ok"] and send(alice_tab, "general")["ok"], i
    assert send(alice_tab, "general")["error"]["code"] == "rate_limited"
    assert send(alice, "general")["error"]["code"] == "rate_limited"


def test_only_sends_that_store_a_message_count_against_the_rate_limit(app, chat):
    alice, _, carol = chat
    first = sent(alice, "general")
    for _ in range(25):
        assert send(alice, "general", "retried", first["client_id"])["ok"]  # a replay
        assert send(alice, "general", "   ")["error"]["code"] == "invalid"
        assert send(alice, "nowhere")["error"]["code"] == "not_found"
        assert call(alice, "message:send", {"room": "general"})["error"]["code"] == "invalid"
    for i in range(19):
        assert send(alice, "general")["ok"], i
    assert send(alice, "general")["error"]["code"] == "rate_limited"
    assert message_count(app) == 20


def test_a_rate_limited_client_id_may_be_sent_again_later(app, chat, monkeypatch):
    from app.services.ratelimit import limits

    alice, _, _ = chat
    for _ in range(20):
        sent(alice, "general")
    assert send(alice, "general", "later", "patient")["error"]["code"] == "rate_limited"
    limits.reset()  # the window has passed
    assert send(alice, "general", "later", "patient")["message"]["client_id"] == "patient"


@pytest.mark.parametrize("payload, field", [
    ({"body": ""}, "body"),
    ({"body": "  \n "}, "body"),
    ({"body": "x" * 4001}, "body"),
    ({"body": 5}, "body"),
    ({"body": "nul\x00"}, "body"),
    ({"body": "lone \ud83d surrogate"}, "body"),
    ({"client_id": ""}, "client_id"),
    ({"client_id": "c" * 65}, "client_id"),
    ({"client_id": 7}, "client_id"),
    ({"room": 1}, "room"),
])
def test_an_invalid_send_answers_invalid_and_changes_nothing(app, chat, payload, field):
    alice, bob, _ = chat
    before = snapshot(app)
    ack = call(alice, "message:send", {"room": "general", "body": "hi", "client_id": "c",
                                       **payload})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == field
    assert snapshot(app) == before
    assert received(alice) == [] and received(bob) == []
    assert send(alice, "general")["ok"]  # the connection still works


def test_a_body_of_exactly_4000_characters_is_stored(chat):
    alice, _, _ = chat
    assert sent(alice, "general", "x" * 4000)["body"] == "x" * 4000


def test_a_non_member_sending_to_a_public_room_is_forbidden(app, chat):
    _, _, carol = chat
    ack = send(carol, "general")
    assert ack["error"]["code"] == "forbidden"
    assert message_count(app) == 0


def test_a_member_who_has_not_joined_on_this_connection_may_still_send(auth, chat):
    alice, bob, _ = chat
    bob_tab = auth.socket("bob")
    message = sent(bob_tab, "general", "from another tab")
    assert without_cursor(received(bob, "message")) == [message]
    assert received(bob_tab) == []  # this connection has not joined


def test_text_is_stored_and_sent_back_exactly_as_written(chat):
    alice, bob, _ = chat
    body = "<script>alert('x')</script> & \"quotes\" \U0001F600 \u202e"
    message = sent(alice, "general", body)
    assert message["body"] == body
    assert received(bob, "message")[0]["body"] == body
    assert call(alice, "message:history", {"room": "general"})["messages"][0]["body"] == body


# -- message:history --------------------------------------------------------

@pytest.fixture
def five(chat):
    alice, bob, carol = chat
    return [sent(alice if i % 2 else bob, "general", f"m{i}") for i in range(5)]


def history(sock, **payload) -> tuple[list[int], bool]:
    ack = call(sock, "message:history", {"room": "general", **payload})
    assert ack["ok"], ack
    return ids(ack["messages"]), ack["has_more"]


def test_history_without_a_cursor_answers_the_latest_ascending(chat, five):
    alice, _, _ = chat
    ack = call(alice, "message:history", {"room": "general"})
    assert ack == {"ok": True, "messages": five, "has_more": False, "cursor": ack["cursor"]}


def test_history_before_answers_the_older_messages_and_whether_more_remain(chat, five):
    alice, _, _ = chat
    assert history(alice, before=five[3]["id"], limit=2) == (ids(five[1:3]), True)
    assert history(alice, before=five[2]["id"], limit=2) == (ids(five[:2]), False)
    assert history(alice, before=five[0]["id"]) == ([], False)


def test_history_after_answers_the_newer_messages_and_whether_more_follow(chat, five):
    alice, _, _ = chat
    assert history(alice, after=five[0]["id"], limit=2) == (ids(five[1:3]), True)
    assert history(alice, after=five[2]["id"], limit=2) == (ids(five[3:]), False)
    assert history(alice, after=five[4]["id"]) == ([], False)
    assert history(alice, after=0) == (ids(five), False)


def test_history_with_a_limit_answers_the_latest_page(chat, five):
    alice, _, _ = chat
    assert history(alice, limit=2) == (ids(five[3:]), True)
    assert history(alice, limit=1) == (ids(five[4:]), True)
    assert history(alice, limit=5) == (ids(five), False)


def test_history_leaves_deleted_messages_out(chat, five):
    alice, bob, _ = chat
    assert call(bob, "message:delete", {"id": five[2]["id"]})["ok"]
    assert history(alice) == (ids(five[:2] + five[3:]), False)
    assert history(alice, after=five[1]["id"], limit=1) == ([five[3]["id"]], True)
    assert history(alice, before=five[3]["id"], limit=2) == (ids(five[:2]), False)


def test_a_history_limit_over_500_is_clamped_to_500(app, chat):
    alice, _, _ = chat
    stored = store_messages(app, "general", "alice", 510)
    assert history(alice, limit=10_000) == (stored[-500:], True)
    assert history(alice, after=0, limit=501) == (stored[:500], True)


@pytest.mark.parametrize("payload, field", [
    ({"before": 3, "after": 1}, "payload"),
    ({"limit": 0}, "limit"),
    ({"limit": -5}, "limit"),
    ({"limit": "10"}, "limit"),
    ({"before": "3"}, "before"),
    ({"after": -1}, "after"),
])
def test_a_malformed_history_request_answers_invalid(chat, five, payload, field):
    alice, _, _ = chat
    ack = call(alice, "message:history", {"room": "general", **payload})
    assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == field
    assert history(alice) == (ids(five), False)


def test_history_of_a_public_room_is_for_its_members(chat, five):
    _, _, carol = chat
    assert call(carol, "message:history", {"room": "general"})["error"]["code"] == "forbidden"
    assert call(carol, "message:history", {"room": "nowhere"})["error"]["code"] == "not_found"


# -- message:edit -----------------------------------------------------------

def test_the_author_edits_a_message_and_the_room_gets_message_updated(app, auth, chat):
    alice, bob, carol = chat
    bob_tab = auth.socket("bob")  # a member's connection that has not joined
    original = sent(alice, "general", "helo")
    drain(alice, bob)
    ack = call(alice, "message:edit", {"id": original["id"], "body": "hello"})
    edited = ack["message"]
    assert ack["ok"] is True
    assert TIME_FORMAT.match(edited["edited_at"])
    assert edited == {**original, "body": "hello", "edited_at": edited["edited_at"]}
    assert without_cursor(received(alice)) == [edited]
    assert without_cursor(received(bob)) == [edited]
    assert received(carol) == [] and received(bob_tab) == []
    assert history(alice)[0] == [original["id"]]
    assert call(alice, "message:history", {"room": "general"})["messages"] == [edited]


def test_only_the_author_may_edit(app, auth, chat):
    alice, bob, _ = chat
    auth.create("root", admin=True)
    root = auth.socket("root")
    joined(root, "general")
    message = sent(bob, "general", "mine")
    before = snapshot(app)
    for other in (alice, root):  # not the room's owner, not an admin either
        ack = call(other, "message:edit", {"id": message["id"], "body": "theirs"})
        assert ack["error"]["code"] == "forbidden" and ack["error"]["field"] == "id"
    assert snapshot(app) == before
    assert received(bob, "message:updated") == []


@pytest.mark.parametrize("payload, code, field", [
    ({"body": ""}, "invalid", "body"),
    ({"body": "   "}, "invalid", "body"),
    ({"body": "x" * 4001}, "invalid", "body"),
    ({"body": None}, "invalid", "body"),
    ({"id": "1"}, "invalid", "id"),
    ({"id": 999}, "not_found", "id"),
])
def test_a_bad_edit_answers_its_error_and_changes_nothing(app, chat, payload, code, field):
    alice, bob, _ = chat
    message = sent(alice, "general", "as written")
    drain(alice, bob)
    before = snapshot(app)
    ack = call(alice, "message:edit", {"id": message["id"], "body": "fine", **payload})
    assert ack["error"]["code"] == code and ack["error"]["field"] == field
    assert snapshot(app) == before
    assert received(bob) == []


def test_a_deleted_message_cannot_be_edited(chat):
    alice, _, _ = chat
    message = sent(alice, "general")
    call(alice, "message:delete", {"id": message["id"]})
    ack = call(alice, "message:edit", {"id": message["id"], "body": "back"})
    assert ack["error"]["code"] == "not_found"


# -- message:delete ---------------------------------------------------------

def test_the_author_deletes_a_message_and_the_room_gets_message_deleted(app, auth, chat):
    alice, bob, carol = chat
    bob_tab = auth.socket("bob")
    message = sent(bob, "general")
    drain(alice, bob)
    assert call(bob, "message:delete", {"id": message["id"]}) == {"ok": True}
    gone = {"id": message["id"], "room": "general"}
    assert without_cursor(received(alice)) == [gone]
    assert without_cursor(received(bob)) == [gone]
    assert received(carol) == [] and received(bob_tab) == []
    assert in_db(app, select(Message.deleted)) == [(True,)]


def test_the_room_owner_may_delete_anyones_message(chat):
    alice, bob, _ = chat
    message = sent(bob, "general")
    assert call(alice, "message:delete", {"id": message["id"]}) == {"ok": True}
    assert without_cursor(received(bob, "message:deleted")) == [{"id": message["id"], "room": "general"}]


def test_an_admin_may_delete_anyones_message_without_being_a_member(auth, chat):
    _, bob, _ = chat
    auth.create("root", admin=True)
    root = auth.socket("root")
    message = sent(bob, "general")
    assert call(root, "message:delete", {"id": message["id"]}) == {"ok": True}
    assert without_cursor(received(bob, "message:deleted")) == [{"id": message["id"], "room": "general"}]


def test_another_member_may_not_delete(app, auth, chat):
    alice, bob, _ = chat
    dave = auth.socket("dave")
    joined(dave, "general")
    message = sent(alice, "general")
    drain(alice, bob)
    before = snapshot(app)
    for other in (bob, dave):
        ack = call(other, "message:delete", {"id": message["id"]})
        assert ack["error"]["code"] == "forbidden" and ack["error"]["field"] == "id"
    assert snapshot(app) == before
    assert received(alice) == [] and received(bob) == []


def test_deleting_twice_or_an_unknown_message_answers_not_found(chat):
    alice, _, _ = chat
    message = sent(alice, "general")
    assert call(alice, "message:delete", {"id": message["id"]})["ok"]
    assert call(alice, "message:delete", {"id": message["id"]})["error"]["code"] == "not_found"
    assert call(alice, "message:delete", {"id": 10**12})["error"]["code"] == "not_found"
    assert call(alice, "message:delete", {"id": 0})["error"]["code"] == "invalid"


# -- room:read --------------------------------------------------------------

def test_room_read_moves_the_marker_and_answers_the_unread_left(chat):
    alice, bob, _ = chat
    m = [sent(bob, "general", f"m{i}") for i in range(3)]
    assert call(alice, "rooms:list")["rooms"][0]["unread"] == 3
    assert call(alice, "room:read", {"room": "general", "last_read_id": m[1]["id"]}) == {
        "ok": True, "unread": 1, "mentions_unread": 0}
    assert call(alice, "rooms:list")["rooms"][0]["unread"] == 1
    assert joined(alice, "general")["room"]["unread"] == 1


def test_the_read_marker_never_moves_back(chat):
    alice, bob, _ = chat
    m = [sent(bob, "general", f"m{i}") for i in range(3)]
    call(alice, "room:read", {"room": "general", "last_read_id": m[2]["id"]})
    assert call(alice, "room:read", {"room": "general", "last_read_id": m[0]["id"]})[
        "unread"] == 0
    assert call(alice, "room:read", {"room": "general", "last_read_id": 0})["unread"] == 0


def test_a_marker_past_the_newest_message_does_not_hide_later_ones(chat):
    alice, bob, _ = chat
    sent(bob, "general")
    assert call(alice, "room:read", {"room": "general", "last_read_id": 10**9})["unread"] == 0
    sent(bob, "general")
    assert call(alice, "rooms:list")["rooms"][0]["unread"] == 1


def test_unread_leaves_out_ones_own_and_deleted_messages(chat):
    alice, bob, _ = chat
    sent(alice, "general", "mine")
    gone = sent(bob, "general", "gone")
    sent(bob, "general", "theirs")
    call(bob, "message:delete", {"id": gone["id"]})
    assert call(alice, "room:read", {"room": "general", "last_read_id": 0})["unread"] == 1
    assert call(bob, "room:read", {"room": "general", "last_read_id": 0})["unread"] == 1


def test_room_read_is_for_members(app, chat):
    alice, _, carol = chat
    before = snapshot(app)
    assert call(carol, "room:read", {"room": "general", "last_read_id": 1})["error"][
        "code"] == "forbidden"
    assert call(carol, "room:read", {"room": "nowhere", "last_read_id": 1})["error"][
        "code"] == "not_found"
    ack = call(alice, "room:read", {"room": "general", "last_read_id": "1"})
    assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == "last_read_id"
    assert snapshot(app) == before
