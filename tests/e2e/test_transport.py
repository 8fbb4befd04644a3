"""Connections: the real transports, who is let in, and the Engine.IO limits."""
from __future__ import annotations

import threading
import uuid

import pytest
import socketio

from tests.support.server import cookie_header, sign_in, wait_until

from .conftest import NS, unique

pytestmark = pytest.mark.e2e

EVIL_ORIGIN = "https://evil.example"


def test_a_websocket_only_client_really_talks_websocket(server, peers):
    alice = peers("alice", transport="websocket")
    assert alice.transport() == "websocket"
    assert alice.ok("rooms:list")["rooms"] is not None


def test_a_default_client_upgrades_from_polling_to_websocket(server, peers):
    # gevent-websocket is pinned: if it stopped working, clients would stay
    # on long-polling without any error. This catches that.
    alice = peers("alice", transport=None)
    wait_until(lambda: alice.transport() == "websocket", 10,
               message="the connection never upgraded to websocket")
    assert alice.ok("rooms:list")["rooms"] is not None


def refused_connect(url: str, transport: str, headers: dict, websocket_options=None):
    """Try to connect; return what the client was told (``connect_error`` data or the error)."""
    sio = socketio.Client(reconnection=False, websocket_extra_options=websocket_options or {})
    errors = []
    sio.on("connect_error", errors.append, namespace=NS)
    try:
        sio.connect(url, namespaces=[NS], headers=headers, transports=[transport],
                    wait_timeout=10)
    except (socketio.exceptions.ConnectionError, ValueError) as exc:
        # ValueError: gevent-websocket completes the WebSocket handshake
        # before the app runs, so a refusal at the Engine.IO level (a bad
        # Origin) reaches a websocket-only client as a socket closed before
        # any Engine.IO packet, which python-engineio reports this way.
        return errors, exc
    finally:
        connected = sio.connected and NS in sio.namespaces
        sio.disconnect()
    raise AssertionError(f"the connection was accepted (connected={connected})")


def test_a_connection_without_a_session_cookie_is_refused(server, transport):
    errors, _ = refused_connect(server.url, transport, headers={})
    assert errors, "the client never got connect_error"
    assert errors[0]["data"]["code"] == "unauthenticated"


def test_a_connection_from_a_foreign_origin_is_refused_even_with_a_valid_cookie(server,
                                                                                transport):
    http = sign_in(server.url, "alice")
    # suppress_origin: websocket-client would otherwise add its own Origin
    # header next to ours.
    refused_connect(server.url, transport,
                    headers={"Cookie": cookie_header(http), "Origin": EVIL_ORIGIN},
                    websocket_options={"suppress_origin": True})


def test_a_connection_from_the_server_origin_is_accepted(server, peers, transport):
    alice = peers("alice", transport=transport, headers={"Origin": server.url},
                  websocket_options={"suppress_origin": True})
    assert alice.connected


def test_a_packet_over_the_size_limit_closes_only_that_connection(server, peers):
    alice = peers("alice")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    bob = peers("bob")
    bob.ok("room:join", {"room": room})

    acks = []
    client_id = unique("too-big")
    body = "x" * 70_000  # the packet is over 65536 bytes, not just the body over 4000 chars
    alice.sio.emit("message:send", {"room": room, "body": body, "client_id": client_id},
                   namespace=NS, callback=acks.append)

    assert alice.disconnected.wait(10), "the oversized packet did not close the connection"
    assert acks == [], "an oversized packet must not be answered"
    assert bob.connected
    history = bob.ok("message:history", {"room": room})
    assert [m for m in history["messages"] if m["client_id"] == client_id] == []
    assert bob.got("message") == []

    again = peers("alice", http=alice.http)
    assert again.send(room, "still welcome")["body"] == "still welcome"


def test_a_polling_batch_of_40_events_gets_40_acks(server, peers):
    # The client sends its queued events in one long-polling POST; python-
    # engineio refuses batches over 16 packets unless the server raises
    # max_decode_packets.
    alice = peers("alice", transport="polling")
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    acks: list[dict] = []
    lock = threading.Lock()

    def keep(ack):
        with lock:
            acks.append(ack)

    for i in range(40):
        alice.sio.emit("message:send", {"room": room, "body": f"batch {i}",
                                        "client_id": uuid.uuid4().hex},
                       namespace=NS, callback=keep)
    wait_until(lambda: len(acks) == 40, 15, message=f"only {len(acks)} of 40 acks arrived")
    assert all(ack["ok"] for ack in acks), [a for a in acks if not a["ok"]]
    assert len({ack["message"]["id"] for ack in acks}) == 40
    assert alice.connected
