"""Catch-up by cursor through a real server, with the python-socketio client."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from .conftest import BOTH_DATABASES, NS

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


@BOTH_DATABASES
def test_a_reader_following_the_cursor_under_concurrent_writers_misses_nothing(target, peers):
    # A later position can never commit before an earlier one: a reader that
    # keeps asking "after my cursor" while five connections send at once
    # sees every change, each once, in position order.
    senders = [peers(name) for name in ("alice", "bob", "alice", "bob", "alice")]
    room = senders[0].create_room()
    for sender in senders:
        sender.ok("room:join", {"room": room})
    reader = peers("bob")
    cursor = reader.ok("room:join", {"room": room})["cursor"]

    acks: list[dict] = []
    guard = threading.Lock()

    def keep(ack):
        with guard:
            acks.append(ack)

    for i in range(40):
        for sender in senders:
            sender.sio.emit("message:send", {"room": room, "body": f"{sender.username} {i}",
                                             "client_id": uuid.uuid4().hex},
                            namespace=NS, callback=keep)
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"{len(acks)} of 200 sends acked in time"
        done = len(acks) == 200
        page = reader.ok("message:history", {"room": room, "cursor": cursor, "limit": 500})
        seen += [change["data"]["cursor"] for change in page["changes"]]
        cursor = page["cursor"]
        if done and not page["has_more"]:
            break
    assert all(ack["ok"] for ack in acks)
    sent_ids = sorted(ack["message"]["id"] for ack in acks)
    assert seen == sorted(set(seen)) and len(seen) == 200
    # ids and positions agree: the log lists the messages in id order.
    page = reader.ok("room:join", {"room": room, "cursor": seen[0] - 1, "limit": 500})
    assert [c["data"]["id"] for c in page["changes"]] == sent_ids
