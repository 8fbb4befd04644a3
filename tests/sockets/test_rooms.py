"""``rooms:list``, ``room:create``, ``room:join``, ``room:leave``, ``room:invite``, ``dm:open``."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import insert, select

from app.models import Membership, Message, Room, User
from tests.conftest import call, received, without_cursor

from .conftest import drain, in_db, joined, public_room, send, sent, snapshot

TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def user_id(app, username: str) -> int:
    return in_db(app, select(User.id).where(User.username_key == username))[0][0]


def members_of(app, slug: str) -> list[str]:
    return [name for (name,) in in_db(
        app, select(User.username).join(Membership, Membership.user_id == User.id)
        .join(Room, Room.id == Membership.room_id).where(Room.slug == slug)
        .order_by(User.username))]


def store_messages(app, slug: str, author: str, count: int) -> list[int]:
    """Many messages at once, straight into the database (faster than sending)."""
    from app.extensions import db

    with app.app_context():
        room_id = db.session.execute(select(Room.id).where(Room.slug == slug)).scalar_one()
        uid = db.session.execute(select(User.id).where(User.username_key == author)).scalar_one()
        db.session.execute(insert(Message), [
            {"room_id": room_id, "user_id": uid, "client_id": f"bulk-{i}", "body": f"m{i}"}
            for i in range(count)])
        db.session.commit()
        ids = db.session.execute(select(Message.id).where(Message.room_id == room_id)
                                 .order_by(Message.id)).scalars().all()
        db.session.remove()
    return ids


# -- rooms:list -------------------------------------------------------------

def test_rooms_list_shows_public_rooms_and_only_the_callers_private_ones(auth):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    call(alice, "room:create", {"name": "General"})
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    den = call(bob, "room:create", {"name": "Bobs Den", "private": True})["room"]["slug"]
    by_alice = {r["slug"] for r in call(alice, "rooms:list", {})["rooms"]}
    by_bob = {r["slug"] for r in call(bob, "rooms:list", {})["rooms"]}
    by_carol = {r["slug"] for r in call(carol, "rooms:list", {})["rooms"]}
    assert by_alice == {"general", secret}
    assert by_bob == {"general", den}
    assert by_carol == {"general"}


def test_rooms_list_gives_unread_only_where_the_caller_is_a_member(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = public_room(alice)
    sent(alice, slug, "one")
    sent(alice, slug, "two")
    [for_bob] = call(bob, "rooms:list", {})["rooms"]
    assert "unread" not in for_bob
    joined(bob, slug)
    [for_bob] = call(bob, "rooms:list", {})["rooms"]
    assert (for_bob["unread"], for_bob["member_count"]) == (2, 2)
    [for_alice] = call(alice, "rooms:list", {})["rooms"]
    assert for_alice["unread"] == 0  # her own messages are not unread


def test_rooms_list_accepts_no_payload_at_all(auth):
    alice = auth.socket("alice")
    assert call(alice, "rooms:list") == {"ok": True, "rooms": []}


# -- room:create ------------------------------------------------------------

def test_room_create_answers_the_room_with_its_creator_as_only_member(app, auth):
    alice = auth.socket("alice")
    ack = call(alice, "room:create", {"name": "  Off Topic ", "topic": "anything goes"})
    assert ack["ok"]
    room = ack["room"]
    assert TIME_FORMAT.match(room.pop("created_at"))
    assert room == {"slug": "off-topic", "name": "Off Topic", "topic": "anything goes",
                    "private": False, "member_count": 1, "unread": 0, "dm": False,
                    "archived": False, "owner_id": user_id(app, "alice"),
                    "mentions_unread": 0, "notify": "mentions"}
    assert members_of(app, "off-topic") == ["alice"]
    assert in_db(app, select(Room.owner_id))[0][0] == user_id(app, "alice")


def test_room_create_does_not_join_the_creators_connection(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    call(alice, "room:create", {"name": "General"})
    joined(bob, "general")
    drain(alice, bob)
    message = sent(bob, "general")
    assert received(alice) == []
    assert without_cursor(received(bob, "message")) == [message]


def test_a_private_room_is_created_private(auth):
    alice = auth.socket("alice")
    room = call(alice, "room:create", {"name": "Secret", "private": True})["room"]
    assert room["private"] is True and room["member_count"] == 1


@pytest.mark.parametrize("second", ["General", "general", " GENERAL ", "General!"])
def test_a_second_room_with_the_same_address_answers_conflict(app, auth, second):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    call(alice, "room:create", {"name": "General"})
    before = snapshot(app)
    ack = call(bob, "room:create", {"name": second})
    assert ack["error"]["code"] == "conflict" and ack["error"]["field"] == "name"
    assert snapshot(app) == before
    assert call(bob, "room:create", {"name": "Random"})["ok"]


@pytest.mark.parametrize("payload, field", [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "n" * 65}, "name"),
    ({"name": 5}, "name"),
    ({"name": "ok", "topic": "t" * 257}, "topic"),
    ({"name": "ok", "private": "no"}, "private"),
    ({}, "name"),
])
def test_room_create_refuses_a_bad_name_or_topic_and_stores_nothing(app, auth, payload, field):
    alice = auth.socket("alice")
    ack = call(alice, "room:create", payload)
    assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == field
    assert in_db(app, select(Room)) == []


# -- room:join --------------------------------------------------------------

def test_room_join_answers_room_members_online_and_the_latest_messages(app, auth):
    alice, bob, carol, dave = (auth.socket(n) for n in ("alice", "bob", "carol", "dave"))
    slug = public_room(alice)
    joined(bob, slug)
    joined(carol, slug)
    carol.disconnect("/public")  # still a member, no longer online
    first, second = sent(alice, slug, "first"), sent(bob, slug, "second")
    ack = joined(dave, slug)
    users = {n: {"id": user_id(app, n), "username": n, "bot": False, "display_name": None} for n in ("alice", "bob", "carol",
                                                                   "dave")}
    assert ack["members"] == [users["alice"], users["bob"], users["carol"], users["dave"]]
    assert sorted(ack["online"], key=lambda u: u["id"]) == [users["alice"], users["bob"],
                                                            users["dave"]]
    assert ack["messages"] == [first, second]
    assert ack["has_more"] is False
    assert ack["room"]["slug"] == slug and ack["room"]["member_count"] == 4
    assert ack["room"]["unread"] == 2
    assert members_of(app, slug) == ["alice", "bob", "carol", "dave"]


def test_room_join_without_since_answers_the_latest_100_ascending(app, auth):
    alice = auth.socket("alice")
    call(alice, "room:create", {"name": "General"})
    ids = store_messages(app, "general", "alice", 105)
    ack = joined(alice, "general")
    assert [m["id"] for m in ack["messages"]] == ids[-100:]
    assert ack["has_more"] is True


def test_room_join_with_since_answers_what_followed_and_has_more_when_more_follow(app, auth):
    alice = auth.socket("alice")
    call(alice, "room:create", {"name": "General"})
    ids = store_messages(app, "general", "alice", 120)
    ack = call(alice, "room:join", {"room": "general", "since": ids[9]})
    assert [m["id"] for m in ack["messages"]] == ids[10:110]
    assert ack["has_more"] is True
    # message:history "after" continues where the catch-up page ended.
    rest = call(alice, "message:history", {"room": "general", "after": ids[109]})
    assert [m["id"] for m in rest["messages"]] == ids[110:]
    assert rest["has_more"] is False


def test_room_join_since_the_newest_id_answers_no_messages(auth):
    alice = auth.socket("alice")
    slug = public_room(alice)
    newest = sent(alice, slug)
    ack = call(alice, "room:join", {"room": slug, "since": newest["id"]})
    assert (ack["messages"], ack["has_more"]) == ([], False)


def test_a_reconnecting_client_that_joins_with_since_misses_nothing(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = public_room(alice)
    seen = joined(bob, slug)["messages"]
    seen.append(sent(alice, slug, "before the drop"))
    bob.disconnect("/public")
    missed = [sent(alice, slug, f"while away {i}") for i in range(3)]
    bob = auth.socket("bob")
    ack = call(bob, "room:join", {"room": slug, "since": seen[-1]["id"]})
    assert ack["messages"] == missed and ack["has_more"] is False


def test_room_join_leaves_deleted_messages_out(auth):
    alice = auth.socket("alice")
    slug = public_room(alice)
    keep, gone = sent(alice, slug, "keep"), sent(alice, slug, "gone")
    assert call(alice, "message:delete", {"id": gone["id"]})["ok"]
    assert joined(alice, slug)["messages"] == [keep]


def test_a_member_of_a_private_room_may_join_it_and_an_outsider_may_not(app, auth):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    assert call(alice, "room:invite", {"room": secret, "user": "bob"})["ok"]
    assert joined(bob, secret)["room"]["private"] is True
    before = snapshot(app)
    ack = call(carol, "room:join", {"room": secret})
    assert ack["error"]["code"] == "not_found"
    assert snapshot(app) == before


def test_joining_an_unknown_room_answers_not_found(auth):
    alice = auth.socket("alice")
    ack = call(alice, "room:join", {"room": "nowhere"})
    assert ack["error"] == {"code": "not_found", "message": "no such room", "field": "room"}
    # A private room's answer is word for word the same: nothing to tell them apart.
    slug = call(auth.socket("bob"), "room:create", {"name": "Secret", "private": True})
    assert call(alice, "room:join", {"room": slug["room"]["slug"]})["error"] == ack["error"]


def test_joining_twice_keeps_one_membership_and_one_subscription(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = public_room(alice)
    joined(bob, slug)
    joined(bob, slug)
    drain(alice, bob)
    message = sent(alice, slug)
    assert without_cursor(received(bob, "message")) == [message]
    assert call(bob, "rooms:list")["rooms"][0]["member_count"] == 2


def test_a_members_new_connection_receives_nothing_until_it_joins(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = public_room(alice)
    joined(bob, slug)
    bob_again = auth.socket("bob")
    drain(bob)
    sent(alice, slug)
    assert received(bob_again) == []
    joined(bob_again, slug)
    drain(bob_again)
    message = sent(alice, slug)
    assert without_cursor(received(bob_again, "message")) == [message]


# -- room:leave -------------------------------------------------------------

def test_room_leave_ends_membership_and_every_connection_of_the_caller_stops_receiving(
        app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    bob_tab = auth.socket("bob")
    slug = public_room(alice)
    joined(bob, slug)
    joined(bob_tab, slug)
    drain(alice, bob, bob_tab)
    assert call(bob, "room:leave", {"room": slug}) == {"ok": True}
    assert members_of(app, slug) == ["alice"]
    bob_public = {"id": user_id(app, "bob"), "username": "bob", "bot": False, "display_name": None}
    assert received(alice, "presence") == [{"room": slug, "user": bob_public, "online": False}]
    sent(alice, slug)
    assert received(bob) == [] and received(bob_tab) == []
    # No longer a member: sending there is refused until they join again.
    assert send(bob_tab, slug)["error"]["code"] == "forbidden"


def test_leaving_a_private_room_shuts_its_door(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    call(alice, "room:invite", {"room": secret, "user": "bob"})
    joined(bob, secret)
    assert call(bob, "room:leave", {"room": secret})["ok"]
    assert call(bob, "room:join", {"room": secret})["error"]["code"] == "not_found"
    assert [r["slug"] for r in call(bob, "rooms:list")["rooms"]] == []


def test_leaving_a_room_one_is_not_a_member_of_changes_nothing(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    call(alice, "room:create", {"name": "General"})
    before = snapshot(app)
    assert call(bob, "room:leave", {"room": "general"}) == {"ok": True}
    assert snapshot(app) == before


def test_leaving_an_unknown_or_hidden_room_answers_not_found(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    assert call(bob, "room:leave", {"room": secret})["error"]["code"] == "not_found"
    assert call(bob, "room:leave", {"room": "nowhere"})["error"]["code"] == "not_found"


# -- room:invite ------------------------------------------------------------

def test_the_owner_invites_to_a_private_room_and_the_invitee_is_told(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    bob_tab = auth.socket("bob")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    assert call(alice, "room:invite", {"room": secret, "user": "bob"}) == {"ok": True}
    assert members_of(app, secret) == ["alice", "bob"]
    for sock in (bob, bob_tab):
        [added] = received(sock, "room:added")
        assert added["room"]["slug"] == secret and added["room"]["member_count"] == 2
    assert received(alice, "room:added") == []
    assert secret in [r["slug"] for r in call(bob, "rooms:list")["rooms"]]


def test_an_admin_member_who_is_not_the_owner_may_invite_to_a_private_room(app, auth):
    auth.create("root", admin=True)
    alice, root = auth.socket("alice"), auth.socket("root")
    auth.create("bob")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    call(alice, "room:invite", {"room": secret, "user": "root"})
    assert call(root, "room:invite", {"room": secret, "user": "bob"}) == {"ok": True}
    assert members_of(app, secret) == ["alice", "bob", "root"]


def test_a_plain_member_may_not_invite_to_a_private_room(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    auth.create("carol")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    call(alice, "room:invite", {"room": secret, "user": "bob"})
    before = snapshot(app)
    ack = call(bob, "room:invite", {"room": secret, "user": "carol"})
    assert ack["error"]["code"] == "forbidden"
    assert snapshot(app) == before


def test_an_outsider_inviting_to_a_private_room_gets_not_found(app, auth):
    alice, carol = auth.socket("alice"), auth.socket("carol")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    before = snapshot(app)
    ack = call(carol, "room:invite", {"room": secret, "user": "carol"})
    assert ack["error"]["code"] == "not_found" and ack["error"]["field"] == "room"
    assert snapshot(app) == before


def test_any_member_may_invite_to_a_public_room_but_not_an_outsider(app, auth):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    slug = public_room(alice)
    joined(bob, slug)
    assert call(carol, "room:invite", {"room": slug, "user": "carol"})["error"]["code"] == \
        "forbidden"
    assert call(bob, "room:invite", {"room": slug, "user": "carol"}) == {"ok": True}
    assert members_of(app, slug) == ["alice", "bob", "carol"]
    assert [a["room"]["slug"] for a in received(carol, "room:added")] == [slug]


def test_inviting_an_unknown_user_answers_not_found(app, auth):
    alice = auth.socket("alice")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    ack = call(alice, "room:invite", {"room": secret, "user": "nobody"})
    assert ack["error"]["code"] == "not_found" and ack["error"]["field"] == "user"
    assert members_of(app, secret) == ["alice"]


def test_inviting_a_member_again_changes_nothing_and_tells_no_one(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    secret = call(alice, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    call(alice, "room:invite", {"room": secret, "user": "bob"})
    drain(bob)
    assert call(alice, "room:invite", {"room": secret, "user": "bob"}) == {"ok": True}
    assert received(bob) == []
    assert members_of(app, secret) == ["alice", "bob"]


# -- dm:open ----------------------------------------------------------------

def test_dm_open_answers_one_private_room_the_same_from_either_side(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    first = call(alice, "dm:open", {"user": "bob"})["room"]
    assert first["private"] is True and first["dm"] is True
    assert first["member_count"] == 2 and first["name"] == "alice & bob"
    assert first["owner_id"] is None  # a DM has no owner: neither side moderates the other
    again = call(alice, "dm:open", {"user": "BOB"})["room"]
    from_bob = call(bob, "dm:open", {"user": "alice"})["room"]
    assert first["slug"] == again["slug"] == from_bob["slug"]
    assert in_db(app, select(Room.slug)) == [(first["slug"],)]
    assert members_of(app, first["slug"]) == ["alice", "bob"]


def test_dm_open_tells_the_other_user_once(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = call(alice, "dm:open", {"user": "bob"})["room"]["slug"]
    call(alice, "dm:open", {"user": "bob"})
    assert [a["room"]["slug"] for a in received(bob, "room:added")] == [slug]
    assert received(alice, "room:added") == []


def test_a_direct_message_is_closed_to_a_third_user(app, auth):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    slug = call(alice, "dm:open", {"user": "bob"})["room"]["slug"]
    joined(alice, slug)
    message = sent(alice, slug, "just us")
    before = snapshot(app)
    assert call(carol, "room:join", {"room": slug})["error"]["code"] == "not_found"
    assert call(carol, "message:history", {"room": slug})["error"]["code"] == "not_found"
    assert send(carol, slug)["error"]["code"] == "not_found"
    assert call(carol, "room:read", {"room": slug, "last_read_id": 1})["error"]["code"] == \
        "not_found"
    assert call(carol, "room:invite", {"room": slug, "user": "carol"})["error"]["code"] == \
        "not_found"
    assert call(carol, "message:edit", {"id": message["id"], "body": "x"})["error"]["code"] == \
        "not_found"
    assert call(carol, "message:delete", {"id": message["id"]})["error"]["code"] == "not_found"
    assert slug not in [r["slug"] for r in call(carol, "rooms:list")["rooms"]]
    assert snapshot(app) == before
    assert joined(bob, slug)["messages"] == [message]


def test_no_one_may_be_invited_into_a_direct_message(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    auth.create("carol")
    slug = call(alice, "dm:open", {"user": "bob"})["room"]["slug"]
    ack = call(alice, "room:invite", {"room": slug, "user": "carol"})
    assert ack["error"]["code"] == "forbidden"


@pytest.mark.parametrize("user, code", [("alice", "invalid"), ("ALICE", "invalid"),
                                        ("nobody", "not_found"), ("", "invalid")])
def test_dm_open_with_oneself_or_no_one_is_refused(app, auth, user, code):
    alice = auth.socket("alice")
    ack = call(alice, "dm:open", {"user": user})
    assert ack["error"]["code"] == code and ack["error"]["field"] == "user"
    assert in_db(app, select(Room)) == []


# -- members_limit and room:members (issue 14) ------------------------------------

def _four_members(app, auth):
    alice, bob, carol, dave = (auth.socket(n) for n in ("alice", "bob", "carol", "dave"))
    slug = public_room(alice)
    joined(bob, slug)
    joined(carol, slug)
    carol.disconnect("/public")  # still a member, no longer online
    users = {n: {"id": user_id(app, n), "username": n, "bot": False, "display_name": None}
             for n in ("alice", "bob", "carol", "dave")}
    return slug, dave, users


def test_members_limit_caps_the_join_acks_lists_and_adds_their_totals(app, auth):
    slug, dave, users = _four_members(app, auth)
    ack = call(dave, "room:join", {"room": slug, "members_limit": 2})
    assert ack["ok"], ack
    assert ack["members"] == [users["alice"], users["bob"]]
    assert ack["online"] == [users["alice"], users["bob"]]
    assert ack["members_total"] == 4 and ack["online_total"] == 3
    assert ack["room"]["member_count"] == 4


def test_a_join_without_members_limit_lists_everyone_and_no_totals(app, auth):
    slug, dave, users = _four_members(app, auth)
    ack = joined(dave, slug)
    assert len(ack["members"]) == 4 and "members_total" not in ack


def test_room_members_pages_by_username_and_can_list_only_who_is_online(app, auth):
    slug, dave, users = _four_members(app, auth)
    joined(dave, slug)
    first = call(dave, "room:members", {"room": slug, "limit": 3})
    assert first == {"ok": True, "members": [users["alice"], users["bob"], users["carol"]],
                     "has_more": True}
    rest = call(dave, "room:members", {"room": slug, "after": "carol", "limit": 3})
    assert rest == {"ok": True, "members": [users["dave"]], "has_more": False}
    online = call(dave, "room:members", {"room": slug, "online": True, "after": "alice"})
    assert online == {"ok": True, "members": [users["bob"], users["dave"]], "has_more": False}


def test_room_members_of_a_private_room_is_not_found_for_a_non_member(app, auth):
    alice, eve = auth.socket("alice"), auth.socket("eve")
    slug = public_room(alice, name="Secret", private=True)
    ack = call(eve, "room:members", {"room": slug})
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"


def test_a_member_who_joined_after_the_list_was_read_is_in_the_next_list(app, auth):
    slug, dave, users = _four_members(app, auth)
    assert len(joined(dave, slug)["members"]) == 4
    erin = auth.socket("erin")
    joined(erin, slug)
    names = [m["username"] for m in joined(dave, slug)["members"]]
    assert names == ["alice", "bob", "carol", "dave", "erin"]
