"""Display names: set on /account, carried by every User object, pushed as ``user:updated``."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import socketio
from app.models import User
from tests.conftest import call, in_db, received

from .conftest import drain, joined, public_room, sent


def set_name(sock, name: str):
    return sock.http.post("/account/display-name", data={"display_name": name})


def stored_name(app, username: str):
    return in_db(app, select(User.display_name).where(User.username_key == username))[0][0]


@pytest.fixture
def pair(auth):
    """alice and bob both joined alice's public room."""
    alice, bob = auth.socket("alice"), auth.socket("bob")
    slug = public_room(alice, "Lobby")
    joined(bob, slug)
    drain(alice, bob)
    return alice, bob, slug


def test_a_new_display_name_reaches_everyone_sharing_a_room_once(app, pair, auth):
    alice, bob, slug = pair
    public_room(alice, "Second")  # a second shared room must not double the push
    joined(bob, "second")
    stranger = auth.socket("eve")
    drain(alice, bob)
    assert set_name(alice, "  Alice Smith ").status_code == 200
    alice_user = {"id": 1, "username": "alice", "bot": False, "display_name": "Alice Smith"}
    assert received(bob) == [{"user": alice_user}]
    assert received(alice) == [{"user": alice_user}]
    assert received(stranger) == []
    assert stored_name(app, "alice") == "Alice Smith"


def test_what_a_renamed_user_sends_next_carries_the_new_name(app, pair):
    alice, bob, slug = pair
    set_name(alice, "Alice Smith")
    message = sent(alice, slug, "hi")
    assert message["user"]["display_name"] == "Alice Smith"
    assert joined(bob, slug)["members"][0]["display_name"] == "Alice Smith"


def test_a_connection_from_another_device_after_a_rename_carries_the_new_name(app, pair, auth):
    # Alice's phone: a sign-in session of its own, whose cookie the session
    # cache remembers; the rename happens on her laptop (the pair's alice).
    alice, bob, slug = pair
    phone = auth.login("alice")
    first = socketio.test_client(app, namespace="/public", flask_test_client=phone)
    first.disconnect(namespace="/public")
    set_name(alice, "Alice Smith")
    again = socketio.test_client(app, namespace="/public", flask_test_client=phone)
    joined(again, slug)
    assert sent(again, slug, "from the phone")["user"]["display_name"] == "Alice Smith"


def test_history_shows_the_authors_current_name(app, pair):
    alice, bob, slug = pair
    sent(alice, slug, "before")
    set_name(alice, "Alice Smith")
    [message] = call(bob, "message:history", {"room": slug})["messages"]
    assert message["user"]["display_name"] == "Alice Smith"


def test_an_empty_display_name_clears_it(app, pair):
    alice, bob, slug = pair
    set_name(alice, "Alice Smith")
    drain(bob)
    assert set_name(alice, "   ").status_code == 200
    assert stored_name(app, "alice") is None
    assert received(bob)[0]["user"]["display_name"] is None


def test_setting_the_same_name_again_tells_no_one(app, pair):
    alice, bob, slug = pair
    set_name(alice, "Alice Smith")
    drain(bob)
    set_name(alice, "Alice Smith")
    assert received(bob) == []


@pytest.mark.parametrize("name, words", [
    ("x" * 65, "at most 64 characters"),
    ("\u200b\u2060\u3164", "at least one visible character"),
    ("Alice\nSmith", "one line"),
    ("Alice\u202eevil", "one line"),
])
def test_a_bad_display_name_is_refused_and_changes_nothing(app, pair, name, words):
    alice, bob, slug = pair
    set_name(alice, "Alice Smith")
    drain(bob)
    response = set_name(alice, name)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert stored_name(app, "alice") == "Alice Smith"
    assert received(bob) == []


def test_display_names_need_not_be_unique(app, pair):
    alice, bob, slug = pair
    assert set_name(alice, "Sam").status_code == 200
    assert set_name(bob, "Sam").status_code == 200
    assert {stored_name(app, "alice"), stored_name(app, "bob")} == {"Sam"}


def test_display_name_changes_are_rate_limited(app, pair):
    from app.services.ratelimit import limits

    app.config["DISPLAY_NAME_RATE_LIMIT"] = "2 per hour"
    limits.init_app(app)
    alice, bob, slug = pair
    assert set_name(alice, "One").status_code == 200
    assert set_name(alice, "Two").status_code == 200
    response = set_name(alice, "Three")
    assert response.status_code == 429
    assert stored_name(app, "alice") == "Two"
