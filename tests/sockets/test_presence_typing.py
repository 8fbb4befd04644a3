"""``presence`` (pushed on join and after the last connection closes) and ``typing``."""
from __future__ import annotations

import time

import pytest

from app.extensions import socketio

from tests.conftest import call, received

from .conftest import drain, joined, public_room, settle, wait_for
from .test_rooms import user_id

PUBLIC = "/public"


def person(app, username: str) -> dict:
    return {"id": user_id(app, username), "username": username, "bot": False, "display_name": None}


def presence(app, username: str, online: bool, room: str = "general") -> dict:
    return {"room": room, "user": person(app, username), "online": online}


# -- presence ---------------------------------------------------------------

def test_joining_tells_every_joined_connection_the_joiners_included(app, auth):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    public_room(alice)
    assert received(alice, "presence") == [presence(app, "alice", True)]
    joined(bob, "general")
    assert received(alice, "presence") == [presence(app, "bob", True)]
    assert received(bob, "presence") == [presence(app, "bob", True)]
    assert received(carol) == []


def test_a_member_goes_offline_within_the_grace_period_after_their_connection_closes(
        app, auth, grace):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob)
    closed_at = time.monotonic()
    bob.disconnect(PUBLIC)
    offline = wait_for(lambda: received(alice, "presence"), timeout=grace + 2)
    # Not at once (a page reload must not flash "offline"), but within 10 s.
    assert time.monotonic() - closed_at >= grace * 0.9
    assert offline == [presence(app, "bob", False)]
    assert received(carol) == []
    assert call(alice, "room:join", {"room": "general"})["online"] == [person(app, "alice")]


def test_a_member_with_another_connection_in_the_room_stays_online(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    bob_tab = auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    joined(bob_tab, "general")
    drain(alice, bob, bob_tab)
    bob.disconnect(PUBLIC)
    settle(app)
    assert received(alice) == [] and received(bob_tab) == []
    online = call(alice, "room:join", {"room": "general"})["online"]
    assert person(app, "bob") in online


def test_a_member_who_comes_back_within_the_grace_period_never_shows_offline(
        app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(alice)
    bob.disconnect(PUBLIC)
    joined(auth.socket("bob"), "general")  # a page reload
    settle(app)
    assert received(alice, "presence") == [presence(app, "bob", True)]


def test_a_connection_of_the_member_that_never_joined_does_not_keep_them_online(
        app, auth, grace):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    auth.socket("bob")  # connected, never joined #general
    public_room(alice)
    joined(bob, "general")
    drain(alice)
    bob.disconnect(PUBLIC)
    offline = wait_for(lambda: received(alice, "presence"), timeout=grace + 2)
    assert offline == [presence(app, "bob", False)]


def test_presence_is_per_room(app, auth, grace):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice, "General")
    public_room(alice, "Random")
    joined(bob, "general")
    drain(alice)
    bob.disconnect(PUBLIC)
    offline = wait_for(lambda: received(alice, "presence"), timeout=grace + 2)
    assert offline == [presence(app, "bob", False, "general")]


def test_a_repeated_join_or_a_second_tab_repeats_no_presence(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    bob_tab = auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob)
    for _ in range(5):
        joined(bob, "general")
    ack = joined(bob_tab, "general")
    assert person(app, "bob") in ack["online"]  # the new tab learns who is online from its ack
    assert received(alice, "presence") == []
    assert received(bob, "presence") == [] and received(bob_tab, "presence") == []


def test_presence_online_is_sent_again_after_the_member_went_offline(app, auth, grace):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    bob.disconnect(PUBLIC)
    wait_for(lambda: received(alice, "presence") == [presence(app, "bob", False)],
             timeout=grace + 2)
    joined(auth.socket("bob"), "general")
    assert received(alice, "presence") == [presence(app, "bob", True)]


# -- typing -----------------------------------------------------------------

def typing(sock, payload) -> None:
    """``typing`` takes no ack: sent like a client that passes no callback."""
    sock.emit("typing", payload, namespace=PUBLIC)


def test_typing_reaches_other_joined_connections_but_never_the_typists(app, auth):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    alice_tab = auth.socket("alice")
    bob_elsewhere = auth.socket("bob")  # bob's connection that has not joined
    public_room(alice)
    joined(alice_tab, "general")
    joined(bob, "general")
    drain(alice, alice_tab, bob, carol)
    typing(alice, {"room": "general", "typing": True})
    assert received(bob) == [{"room": "general", "user": person(app, "alice"), "typing": True}]
    assert received(alice) == [] and received(alice_tab) == []
    assert received(carol) == [] and received(bob_elsewhere) == []
    typing(alice_tab, {"room": "general", "typing": False})
    assert received(bob) == [{"room": "general", "user": person(app, "alice"), "typing": False}]


def test_typing_from_a_connection_that_has_not_joined_sends_nothing(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    bob_elsewhere = auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob)
    typing(bob_elsewhere, {"room": "general", "typing": True})
    typing(bob_elsewhere, {"room": "nowhere", "typing": True})
    assert received(alice) == [] and received(bob) == []


@pytest.mark.parametrize("payload", [
    None, [], "general", {"room": "general"}, {"room": "general", "typing": "yes"},
    {"room": 5, "typing": True}, {"typing": True},
])
def test_malformed_typing_sends_nothing_and_keeps_the_connection(auth, payload):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob)
    alice.emit("typing", *(() if payload is None else (payload,)), namespace=PUBLIC)
    assert received(bob) == []
    assert alice.is_connected(PUBLIC)
    assert call(alice, "rooms:list")["ok"]


def test_a_typing_event_sent_with_an_ack_gets_an_empty_one(auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(bob)
    # typing needs no ack; a client that asks for one is not left waiting.
    assert call(alice, "typing", {"room": "general", "typing": True}) == []
    assert len(received(bob, "typing")) == 1


def typing_notice(app, username: str, is_typing: bool) -> dict:
    return {"room": "general", "user": person(app, username), "typing": is_typing}


@pytest.fixture
def typing_interval(app) -> float:
    app.config["TYPING_INTERVAL_SECONDS"] = 0.5
    return 0.5


def test_a_typing_flood_reaches_the_room_once_per_interval(app, auth):
    # One interval longer than any machine takes to send the flood: the rule
    # is "once per interval", not "this fast".
    app.config["TYPING_INTERVAL_SECONDS"] = 60
    alice, bob = auth.socket("alice"), auth.socket("bob")
    alice_tab = auth.socket("alice")
    public_room(alice)
    joined(alice_tab, "general")
    joined(bob, "general")
    drain(alice, alice_tab, bob)
    for n in range(200):  # a script, from two connections, flipping state each time
        typing(alice if n % 2 else alice_tab, {"room": "general", "typing": n % 4 < 2})
    assert received(bob, "typing") == [typing_notice(app, "alice", True),
                                       typing_notice(app, "alice", False)]


def test_typing_passes_on_changes_of_state_only(app, auth, typing_interval):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob)
    typing(alice, {"room": "general", "typing": False})  # nothing was shown: nothing to stop
    typing(alice, {"room": "general", "typing": True})
    typing(alice, {"room": "general", "typing": False})
    typing(alice, {"room": "general", "typing": False})
    assert received(bob, "typing") == [typing_notice(app, "alice", True),
                                       typing_notice(app, "alice", False)]


def test_a_person_typing_is_refreshed_after_each_interval(app, auth, typing_interval):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    public_room(alice)
    joined(bob, "general")
    drain(alice, bob)
    typing(alice, {"room": "general", "typing": True})
    typing(alice, {"room": "general", "typing": True})  # within the interval: held back
    assert len(received(bob, "typing")) == 1
    # The web client's refresh, once the interval has passed, gets through.
    socketio.sleep(typing_interval + 0.05)
    typing(alice, {"room": "general", "typing": True})
    assert received(bob, "typing") == [typing_notice(app, "alice", True)]


def test_one_users_typing_does_not_hold_up_anothers(app, auth, typing_interval):
    alice, bob, carol = auth.socket("alice"), auth.socket("bob"), auth.socket("carol")
    public_room(alice)
    joined(bob, "general")
    joined(carol, "general")
    drain(alice, bob, carol)
    typing(alice, {"room": "general", "typing": True})
    typing(carol, {"room": "general", "typing": True})
    assert received(bob, "typing") == [typing_notice(app, "alice", True),
                                       typing_notice(app, "carol", True)]
