"""Managing a room: ``room:remove`` (a member) and ``room:delete``, by its owner or an admin."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.models import AuditEntry, Membership, Message, Room, RoomChange, User
from tests.conftest import call, in_db, received

from .conftest import drain, joined, public_room, sent, snapshot


def user(app, username: str) -> dict:
    uid = in_db(app, select(User.id).where(User.username_key == username))[0][0]
    return {"id": uid, "username": username, "bot": False, "display_name": None}


def private_room(owner, *members) -> str:
    """``owner`` makes a private room, invites ``members`` (sockets, by username); all join it."""
    slug = public_room(owner, "Team", private=True)
    for member in members:
        assert call(owner, "room:invite", {"room": slug, "user": member.username})["ok"]
        joined(member, slug)
    return slug


@pytest.fixture
def team(auth):
    """alice owns a private room that bob and carol joined; nobody has received anything yet."""
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    bob.username, carol.username = "bob", "carol"
    slug = private_room(alice, bob, carol)
    drain(alice, bob, carol)
    return alice, bob, carol, slug


def not_cursor(payload: dict) -> dict:
    assert isinstance(payload.pop("cursor"), int)
    return payload


# -- room:remove --------------------------------------------------------------

def test_a_removed_member_is_told_and_the_room_hears_who_removed_them(app, team):
    alice, bob, carol, slug = team
    assert call(alice, "room:remove", {"room": slug, "user": "bob"}) == {"ok": True}
    assert received(bob) == [{"room": slug, "by": user(app, "alice")}]
    expected = {"room": slug, "user": user(app, "bob"), "by": user(app, "alice")}
    assert [not_cursor(p) for p in received(carol, "member:removed")] == [expected]
    assert [not_cursor(p) for p in received(alice, "member:removed")] == [expected]


def test_a_removed_member_receives_nothing_more_of_the_room(app, team):
    alice, bob, carol, slug = team
    call(alice, "room:remove", {"room": slug, "user": "bob"})
    drain(bob)
    sent(carol, slug, "after bob left")
    assert received(bob) == []


def test_a_removed_member_cannot_rejoin_post_or_read_a_private_room(app, team):
    alice, bob, carol, slug = team
    sent(carol, slug, "before")
    call(alice, "room:remove", {"room": slug, "user": "bob"})
    for event, payload in (("room:join", {"room": slug}),
                           ("message:history", {"room": slug}),
                           ("message:send", {"room": slug, "body": "x", "client_id": "x1"})):
        assert call(bob, event, payload)["error"]["code"] == "not_found", event
    assert slug not in {r["slug"] for r in call(bob, "rooms:list")["rooms"]}


def test_a_member_removed_from_a_public_room_may_join_it_again(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = public_room(alice, "Lobby")
    joined(bob, slug)
    assert call(alice, "room:remove", {"room": slug, "user": "bob"}) == {"ok": True}
    assert call(bob, "room:join", {"room": slug})["ok"] is True


def test_only_the_owner_or_an_admin_may_remove_a_member(app, team):
    alice, bob, carol, slug = team
    before = snapshot(app)
    ack = call(bob, "room:remove", {"room": slug, "user": "carol"})
    assert ack["error"]["code"] == "forbidden"
    assert snapshot(app) == before
    assert received(carol) == []


def test_a_private_room_of_others_answers_not_found_for_removal_as_a_missing_room(app, team, auth):
    alice, bob, carol, slug = team
    eve = auth.socket("eve")
    hidden = call(eve, "room:remove", {"room": slug, "user": "bob"})
    missing = call(eve, "room:remove", {"room": "no-such-room_00000000", "user": "bob"})
    assert hidden == missing
    assert hidden["error"]["code"] == "not_found"


def test_the_owner_cannot_remove_themself(app, team):
    alice, bob, carol, slug = team
    ack = call(alice, "room:remove", {"room": slug, "user": "alice"})
    assert (ack["error"]["code"], ack["error"]["field"]) == ("invalid", "user")
    assert "leave" in ack["error"]["message"]


def test_removing_someone_who_is_not_a_member_is_not_found(app, team, auth):
    alice, bob, carol, slug = team
    auth.create("dave")
    for name in ("dave", "nobody-here"):
        ack = call(alice, "room:remove", {"room": slug, "user": name})
        assert (ack["error"]["code"], ack["error"]["field"]) == ("not_found", "user")


def test_an_admin_who_is_not_a_member_may_remove_from_a_private_room(app, team, auth):
    alice, bob, carol, slug = team
    auth.create("root", admin=True)
    root = auth.socket("root")
    assert call(root, "room:remove", {"room": slug, "user": "bob"}) == {"ok": True}
    assert received(bob) == [{"room": slug, "by": user(app, "root")}]
    [entry] = in_db(app, select(AuditEntry.actor, AuditEntry.action, AuditEntry.target,
                                AuditEntry.detail).where(AuditEntry.action == "room:remove"))
    assert tuple(entry) == ("root", "room:remove", slug, "removed bob")


def test_nobody_is_removed_from_a_direct_message(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    dm = call(alice, "dm:open", {"user": "bob"})["room"]["slug"]
    auth.create("root", admin=True)
    for actor in (alice, auth.socket("root")):
        assert call(actor, "room:remove", {"room": dm, "user": "bob"})["error"]["code"] == "forbidden"


def test_a_catch_up_after_a_removal_shows_member_removed_with_by(app, team):
    alice, bob, carol, slug = team
    cursor = call(carol, "room:join", {"room": slug})["cursor"]
    call(alice, "room:remove", {"room": slug, "user": "bob"})
    ack = call(carol, "room:join", {"room": slug, "cursor": cursor})
    assert [(c["event"], c["data"]["user"]["username"], c["data"]["by"]["username"])
            for c in ack["changes"]] == [("member:removed", "bob", "alice")]


# -- room:delete --------------------------------------------------------------

def test_deleting_a_private_room_tells_its_members_and_removes_everything(app, team, auth):
    alice, bob, carol, slug = team
    eve = auth.socket("eve")
    sent(bob, slug, "soon gone")
    drain(alice, bob, carol)
    assert call(alice, "room:delete", {"room": slug}) == {"ok": True}
    for sock in (alice, bob, carol):
        assert received(sock) == [{"room": slug, "by": user(app, "alice")}]
    assert received(eve) == []
    assert in_db(app, select(Room.id).where(Room.slug == slug)) == []
    for model in (Message, Membership, RoomChange):
        assert in_db(app, select(func.count()).select_from(model))[0][0] == 0, model
    [entry] = in_db(app, select(AuditEntry.actor, AuditEntry.target, AuditEntry.detail)
                    .where(AuditEntry.action == "room:delete"))
    assert tuple(entry) == ("alice", slug, "'Team': 1 message, 3 members")


def test_a_deleted_room_reaches_no_joined_connection_again(app, team):
    alice, bob, carol, slug = team
    call(alice, "room:delete", {"room": slug})
    for sock in (alice, bob, carol):
        assert call(sock, "room:join", {"room": slug})["error"]["code"] == "not_found"
        assert call(sock, "rooms:list")["rooms"] == []


def test_deleting_a_public_room_tells_every_client(app, auth):
    alice, eve = auth.socket("alice"), auth.socket("eve")
    slug = public_room(alice, "Lobby")
    drain(alice, eve)
    assert call(alice, "room:delete", {"room": slug}) == {"ok": True}
    assert received(eve, "room:deleted") == [{"room": slug, "by": user(app, "alice")}]


def test_only_the_owner_or_an_admin_may_delete_a_room(app, team, auth):
    alice, bob, carol, slug = team
    before = snapshot(app)
    assert call(bob, "room:delete", {"room": slug})["error"]["code"] == "forbidden"
    eve = auth.socket("eve")
    assert call(eve, "room:delete", {"room": slug}) == call(
        eve, "room:delete", {"room": "no-such-room_00000000"})
    assert call(eve, "room:delete", {"room": slug})["error"]["code"] == "not_found"
    assert snapshot(app) == before
    auth.create("root", admin=True)
    assert call(auth.socket("root"), "room:delete", {"room": slug}) == {"ok": True}


def test_a_direct_message_cannot_be_deleted(app, auth):
    alice = auth.socket("alice")
    auth.create("bob")
    dm = call(alice, "dm:open", {"user": "bob"})["room"]["slug"]
    auth.create("root", admin=True)
    for actor in (alice, auth.socket("root")):
        assert call(actor, "room:delete", {"room": dm})["error"]["code"] == "forbidden"


def test_a_default_room_cannot_be_deleted(app, auth):
    app.config["DEFAULT_ROOMS"] = "General"
    auth.create("root", admin=True)
    root = auth.socket("root")
    ack = call(root, "room:delete", {"room": "general"})
    assert ack["error"]["code"] == "forbidden"
    assert "DEFAULT_ROOMS" in ack["error"]["message"]
    assert in_db(app, select(Room.slug)) == [("general",)]


def test_the_name_of_a_deleted_room_may_be_used_again(app, auth):
    alice = auth.socket("alice")
    slug = public_room(alice, "Lobby")
    call(alice, "room:delete", {"room": slug})
    again = call(alice, "room:create", {"name": "Lobby"})
    assert again["ok"] is True and again["room"]["slug"] == slug
    assert joined(alice, slug)["messages"] == []


def test_a_new_room_at_a_deleted_rooms_address_reaches_only_those_who_join_it(app, auth):
    # Neither its messages nor who is online in it: the old room's joined
    # connections left every channel of the slug when it was deleted.
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    slug = public_room(alice, "Lobby")
    joined(bob, slug)
    call(alice, "room:delete", {"room": slug})
    assert public_room(alice, "Lobby") == slug
    drain(alice, bob, carol)
    joined(carol, slug)  # carol comes online in the new room
    sent(alice, slug, "in the new lobby")
    assert [e["name"] for e in bob.get_received("/public")
            if e["args"] and isinstance(e["args"][0], dict)
            and e["args"][0].get("room") == slug] == []


def test_an_owner_who_left_their_private_room_manages_it_no_more(app, team):
    alice, bob, carol, slug = team
    call(alice, "room:leave", {"room": slug})
    for event, payload in (("room:remove", {"room": slug, "user": "bob"}),
                           ("room:delete", {"room": slug})):
        assert call(alice, event, payload)["error"]["code"] == "not_found", event
    assert in_db(app, select(Room.slug).where(Room.slug == slug)) == [(slug,)]
