"""Finding people and rooms: the default room of new users, username autocompletion."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Membership, Room, User
from tests.conftest import call, in_db


@pytest.fixture
def default_rooms(app):
    app.config["DEFAULT_ROOMS"] = "General, Help desk"
    return app


def test_a_new_user_is_a_member_of_every_default_room(default_rooms, auth):
    alice = auth.socket("alice")
    rooms = {room["slug"]: room for room in call(alice, "rooms:list")["rooms"]}
    assert set(rooms) == {"general", "help-desk"}
    assert all("unread" in room and not room["private"] for room in rooms.values())
    assert call(alice, "room:join", {"room": "general"})["ok"] is True


def test_default_rooms_are_created_once_and_shared_by_later_users(default_rooms, auth):
    auth.create("alice")
    auth.create("bob")
    rooms = in_db(default_rooms, select(Room.slug, Room.owner_id).order_by(Room.slug))
    assert rooms == [("general", None), ("help-desk", None)]
    members = in_db(default_rooms, select(Room.slug, User.username)
                    .join(Membership, Membership.room_id == Room.id)
                    .join(User, User.id == Membership.user_id).order_by(Room.slug, User.username))
    assert members == [("general", "alice"), ("general", "bob"),
                       ("help-desk", "alice"), ("help-desk", "bob")]


def test_a_private_room_of_the_default_name_is_never_handed_to_new_users(default_rooms, auth):
    owner = auth.socket("owner")
    secret = call(owner, "room:create", {"name": "Secret", "private": True})["room"]["slug"]
    default_rooms.config["DEFAULT_ROOMS"] = "Secret"
    auth.create("eve")
    eve = auth.socket("eve")
    slugs = [r["slug"] for r in call(eve, "rooms:list")["rooms"]]
    # The default room is a public room of its own, beside the private one.
    assert secret not in slugs and "secret" in slugs
    assert call(eve, "room:join", {"room": secret})["error"]["code"] == "not_found"


def test_no_default_room_when_the_setting_is_empty(app, auth):
    assert call(auth.socket("alice"), "rooms:list")["rooms"] == []


def test_users_search_completes_a_username_from_its_start_in_any_case(auth):
    for name in ("alice", "Alfred", "bob", "malice"):
        auth.create(name)
    alice = auth.socket("alice")
    ack = call(alice, "users:search", {"query": "AL"})
    assert ack["ok"] is True
    assert [u["username"] for u in ack["users"]] == ["Alfred", "alice"]
    assert set(ack["users"][0]) == {"id", "username", "bot", "display_name"}
    assert call(alice, "users:search", {"query": "al", "limit": 1})["users"] == [ack["users"][0]]
    # Wildcards are text, not patterns.
    assert call(alice, "users:search", {"query": "%"})["users"] == []


@pytest.mark.parametrize("payload, field", [
    ({}, "query"), ({"query": ""}, "query"), ({"query": "x" * 33}, "query"),
    ({"query": 5}, "query"), ({"query": "a", "limit": 0}, "limit"),
])
def test_users_search_refuses_a_bad_query(auth, payload, field):
    ack = call(auth.socket("alice"), "users:search", payload)
    assert ack["error"]["code"] == "invalid" and ack["error"]["field"] == field


def test_users_search_is_rate_limited(app, auth):
    app.config["USER_SEARCH_RATE_LIMIT"] = "3 per minute"
    from app.services.ratelimit import limits

    limits.init_app(app)
    alice = auth.socket("alice")
    acks = [call(alice, "users:search", {"query": "a"}) for _ in range(4)]
    assert [a["ok"] for a in acks] == [True, True, True, False]
    assert acks[-1]["error"]["code"] == "rate_limited" and acks[-1]["error"]["retry_after"] > 0
