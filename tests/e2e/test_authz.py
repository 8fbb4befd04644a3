"""Confidentiality against a real server (issue 12 §1): a third user can neither
capture a direct message nor tell a private room, a DM or a message from nothing."""
from __future__ import annotations

import pytest

from tests.conftest import without_cursor
from tests.support.server import sign_up

from .conftest import unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mallory_http(server):
    """A stranger who signed up through the real form (open registration)."""
    name = unique("mallory")
    return name, sign_up(server.url, name)


@pytest.fixture
def mallory(peers, mallory_http):
    name, http = mallory_http
    return peers(name, http=http)


def user_ids(host, *peers) -> list[int]:
    """The peers' user ids, as any member of a room they share learns them.

    ``host`` makes the room: the shared accounts stay clear of the
    room-creation cap, which the session's other tests spend.
    """
    room = host.create_room()
    for peer in peers:
        peer.ok("room:join", {"room": room})
    members = {m["username"]: m["id"] for m in host.ok("room:join", {"room": room})["members"]}
    return [members[peer.username] for peer in peers]


def test_a_room_named_after_the_dm_address_never_becomes_the_dm(server, peers, mallory):
    alice, bob = peers("alice"), peers("bob")
    low, high = sorted(user_ids(mallory, alice, bob))
    # Before issue 12 this room sat at the pair's DM address, and dm:open adopted it.
    trap = mallory.ok("room:create", {"name": f"dm-{low}-{high}"})["room"]["slug"]
    mallory.ok("room:join", {"room": trap})

    dm = alice.ok("dm:open", {"user": "bob"})["room"]
    assert dm["dm"] is True and dm["member_count"] == 2 and dm["slug"] != trap
    assert bob.ok("dm:open", {"user": "alice"})["room"]["slug"] == dm["slug"]
    alice.ok("room:join", {"room": dm["slug"]})
    bob.ok("room:join", {"room": dm["slug"]})
    sent = alice.send(dm["slug"], "just between us")
    assert without_cursor([bob.wait_for("message", lambda m: m["id"] == sent["id"])]) == [sent]

    nothing = mallory.call("message:history", {"room": unique("dm-nothing")})
    assert nothing["error"]["code"] == "not_found"
    assert mallory.call("message:history", {"room": dm["slug"]}) == nothing
    assert mallory.call("room:join", {"room": dm["slug"]})["error"] == nothing["error"]
    assert [m for m in mallory.got("message") if m["id"] == sent["id"]] == []
    assert mallory.ok("room:join", {"room": trap})["room"]["member_count"] == 1
    # No spelling of the address reaches the DM space (full-width letters, a private room).
    other = mallory.ok("room:create", {"name": f"ＤＭ {low} {high}", "private": True})
    assert not trap.startswith("dm-") and not other["room"]["slug"].startswith("dm-")


def test_a_private_room_and_its_messages_look_like_nothing_to_a_stranger(server, peers,
                                                                       mallory):
    bob = peers("bob")
    name = unique("Secret")
    secret = bob.create_room(name=name, private=True)
    bob.ok("room:join", {"room": secret})
    message = bob.send(secret, "the plan")

    # The same name creates mallory's own room: no conflict naming bob's.
    mine = mallory.ok("room:create", {"name": name})["room"]
    assert mine["slug"] != secret and mine["member_count"] == 1
    assert mallory.ok("room:create", {"name": name, "private": True})["room"]["slug"] != secret

    missing_id = message["id"] + 10**9
    for event, extra in (("message:edit", {"body": "mine now"}), ("message:delete", {})):
        missing = mallory.call(event, {"id": missing_id, **extra})
        assert missing["error"] == {"code": "not_found", "message": "no such message",
                                    "field": "id"}
        assert mallory.call(event, {"id": message["id"], **extra}) == missing
    nowhere = unique("nowhere")
    for event, extra in (("room:join", {}), ("message:history", {}), ("room:leave", {}),
                         ("room:invite", {"user": "alice"}),
                         ("room:read", {"last_read_id": 1})):
        assert mallory.call(event, {"room": secret, **extra}) == \
            mallory.call(event, {"room": nowhere, **extra}), event
    assert bob.ok("message:history", {"room": secret})["messages"] == [message]
