"""Catch-up by cursor through a real server, with the python-socketio client."""
from __future__ import annotations

import pytest

from .conftest import BOTH_DATABASES

pytestmark = pytest.mark.e2e

LOGGED = ("message", "message:updated", "message:deleted", "room:updated", "room:archived",
          "member:added", "member:removed")


@BOTH_DATABASES
def test_a_client_away_for_a_thousand_changes_catches_up_exactly(target, peers):
    alice, bob = peers("alice"), peers("bob")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    bob.ok("room:join", {"room": room})
    old = [alice.send(room, f"old {i}") for i in range(10)]
    cursor = bob.ok("message:history", {"room": room, "limit": 1})["cursor"]
    bob.close()  # away

    # A thousand changes: new messages, edits of old ones, deletions, the topic.
    start = len(alice.received)
    made, deleted = 0, set()
    while made < 1000:
        step = made % 10
        if step == 3:
            alice.ok("message:edit", {"id": old[made % len(old)]["id"], "body": f"edit {made}"})
        elif step == 7:
            victim = alice.send(room, f"doomed {made}")
            alice.ok("message:delete", {"id": victim["id"]})
            deleted.add(victim["id"])
            made += 1
        elif step == 9:
            alice.ok("room:update", {"room": room, "topic": f"topic {made}"})
        else:
            alice.send(room, f"new {made}")
        made += 1
    last = alice.send(room, "the last one")
    alice.wait_for("message", lambda m: m["id"] == last["id"])
    live = [{"event": name, "data": payload} for name, payload in alice.received[start:]
            if name in LOGGED]
    # A deleted message's earlier entries are compacted away: the log
    # serves only that it is gone.
    expected = [c for c in live if not (c["event"] != "message:deleted"
                                        and c["data"].get("id") in deleted)]

    back = peers("bob", http=bob.http)
    ack = back.ok("room:join", {"room": room, "cursor": cursor, "limit": 500})
    caught = list(ack["changes"])
    while ack["has_more"]:
        ack = back.ok("message:history", {"room": room, "cursor": ack["cursor"], "limit": 500})
        caught += ack["changes"]
    assert caught == expected
    assert len(live) >= 1000
    assert ack["cursor"] == last_cursor(live)
    assert "reset" not in ack


def last_cursor(changes: list[dict]) -> int:
    return changes[-1]["data"]["cursor"]
