"""Opt-in batched presence through a real server: ``auth={"presence": "batched"}``
gets ``presence:batch`` per room and window; a plain client still gets ``presence``."""
from __future__ import annotations

import time

import pytest
import socketio

from .conftest import NS, Peer

pytestmark = pytest.mark.e2e

BATCHED = {"presence": "batched"}


def usernames(users) -> list[str]:
    return sorted(u["username"] for u in users)


def online_in(batches, room) -> list[str]:
    return usernames(u for b in batches if b["room"] == room for u in b["online"])


def test_an_opted_in_connection_gets_one_batch_of_the_joins_of_a_window(server, peers):
    watcher = peers("bob", auth=BATCHED)
    room = watcher.create_room()
    watcher.ok("room:join", {"room": room})
    # Bob's own coming online is the first batch.
    first = watcher.wait_for("presence:batch", lambda b: b["room"] == room)
    assert usernames(first["online"]) == ["bob"] and first["offline"] == []
    alice = peers("alice")
    ack = alice.ok("room:join", {"room": room})
    alice_user = next(u for u in ack["online"] if u["username"] == "alice")
    batch = watcher.wait_for("presence:batch", lambda b: b["room"] == room and b is not first)
    assert batch == {"room": room, "online": [alice_user], "offline": []}
    assert alice_user == {"id": alice_user["id"], "username": "alice", "bot": False,
                          "display_name": None}
    # Never the per-change event as well.
    assert watcher.got("presence") == []


def test_changes_in_one_window_arrive_in_one_batch_last_state_winning(server, peers):
    watcher = peers("bob", auth=BATCHED)
    room = watcher.create_room()
    watcher.ok("room:join", {"room": room})
    watcher.wait_for("presence:batch", lambda b: b["room"] == room)
    # Two of alice's sessions: one joins and stays, the other joins and leaves
    # at once. Within the window the room sees alice online once.
    stays = peers("alice")
    stays.ok("room:join", {"room": room})
    tab = peers("alice")
    tab.ok("room:join", {"room": room})
    time.sleep(1.5)  # past one batch window (PRESENCE_BATCH_SECONDS=1 in e2e)
    batches = [b for b in watcher.got("presence:batch") if b["room"] == room][1:]
    assert [(usernames(b["online"]), b["offline"]) for b in batches] == [(["alice"], [])]


def test_going_offline_arrives_in_the_offline_list(server, peers):
    watcher = peers("bob", auth=BATCHED)
    room = watcher.create_room()
    watcher.ok("room:join", {"room": room})
    alice = peers("alice")
    alice.ok("room:join", {"room": room})
    watcher.wait_for("presence:batch", lambda b: "alice" in usernames(b["online"]))
    alice.close()
    gone = watcher.wait_for("presence:batch", lambda b: b["room"] == room and b["offline"],
                            timeout=15)
    assert gone["online"] == [] and usernames(gone["offline"]) == ["alice"]


def test_a_plain_connection_still_gets_presence_and_no_batch(server, peers):
    plain = peers("bob")
    room = plain.create_room()
    plain.ok("room:join", {"room": room})
    batched = peers("alice", auth=BATCHED)
    batched.ok("room:join", {"room": room})
    got = plain.wait_for("presence", lambda p: p["user"]["username"] == "alice")
    assert got["room"] == room and got["online"] is True
    batched.wait_for("presence:batch", lambda b: "alice" in usernames(b["online"]))
    time.sleep(1.2)
    assert plain.got("presence:batch") == []


def test_an_unknown_presence_mode_refuses_the_connection(server):
    peer = Peer(server.url, "alice", auth={"presence": "sometimes"})
    with pytest.raises(socketio.exceptions.ConnectionError):
        peer.connect()
    assert peer.connect_errors, "no connect_error"
    assert peer.connect_errors[0]["data"] == {"code": "invalid"}
