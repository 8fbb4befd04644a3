"""Outgoing webhooks from a real gunicorn to real HTTP receivers on loopback.

The server allows private networks (the receivers are on 127.0.0.1) and
retries quickly; one test runs a server with the default guard.
"""
from __future__ import annotations

import re
import time

import pytest
import requests

from tests.admin.test_e2e import Console
from tests.support.receiver import Receiver
from tests.support.server import ROOT, TEST_PASSWORD, flask_cli, wait_until

from .conftest import Peer, create_users, e2e_env, start_server, stop_server

pytestmark = pytest.mark.e2e

# Retries within a fraction of a second; the dispatcher looks every 0.2 s.
FAST = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOK_BACKOFF_SECONDS": "0.2",
        "WEBHOOK_MAX_BACKOFF_SECONDS": "0.5", "WEBHOOK_POLL_SECONDS": "0.2",
        "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1", "WEBHOOK_READ_TIMEOUT_SECONDS": "2",
        "WEBHOOK_LEASE_SECONDS": "5", "METRICS_ENABLED": "true"}


def documented_verify():
    """docs/api.md's receiver check, run as printed there."""
    text = (ROOT / "docs" / "api.md").read_text()
    [block] = [b for b in re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
               if "def verify(" in b]
    scope: dict = {}
    exec(compile(block, "docs/api.md", "exec"), scope)  # noqa: S102 - our own docs
    return scope["verify"]


verify = documented_verify()


@pytest.fixture(scope="module")
def hook_env(tmp_path_factory):
    env = e2e_env(f"sqlite:///{tmp_path_factory.mktemp('webhooks') / 'parley.sqlite3'}", **FAST)
    flask_cli(env, "init-db")
    flask_cli(env, "create-user", "root", "--password-stdin", "--admin",
              stdin=TEST_PASSWORD + "\n")
    create_users(env, ("alice",))
    return env


@pytest.fixture(scope="module")
def hook_server(hook_env):
    running = start_server(hook_env, "webhooks")
    yield running
    stop_server(running)


@pytest.fixture
def console(hook_server):
    made = Console(hook_server.url, "root")
    yield made
    made.close()


@pytest.fixture
def alice(hook_server):
    peer = Peer(hook_server.url, "alice").connect()
    yield peer
    peer.close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def start(answer=None) -> Receiver:
        made.append(Receiver(answer).start())
        return made[-1]

    yield start
    for receiver in made:
        receiver.stop()


def room_of(peer: Peer) -> str:
    slug = peer.create_room()
    peer.ok("room:join", {"room": slug})
    return slug


def deliveries(console: Console, webhook_id: int) -> list[dict]:
    return console.ok("webhook:deliveries", {"id": webhook_id})["deliveries"]


def test_a_change_arrives_signed_with_a_timestamp_and_a_stable_id(console, alice, receivers):
    receiver = receivers()
    room = room_of(alice)
    made = console.ok("webhook:create", {"url": receiver.url, "rooms": [room]})

    message = alice.send(room, "hello, receiver")

    got = wait_until(lambda: [r for r in receiver.got() if r.json["event"] == "message"],
                     message="no message delivery")[0]
    assert verify(made["secret"], got.headers, got.body)
    assert not verify("whsec_not-the-secret", got.headers, got.body)
    assert not verify(made["secret"], got.headers, got.body.replace(b"hello", b"HELLO"))
    live = alice.wait_for("message", lambda p: p["id"] == message["id"])
    assert got.json == {"id": got.headers["X-Parley-Delivery"], "event": "message",
                        "room": room, "cursor": live["cursor"], "data": live,
                        "created_at": got.json["created_at"]}
    assert got.headers["X-Parley-Event"] == "message"
    assert got.headers["Content-Type"] == "application/json"
    assert abs(int(got.headers["X-Parley-Timestamp"]) - time.time()) < 30


def test_a_receiver_answering_500_gets_a_retry_with_the_same_delivery_id(console, alice,
                                                                         receivers):
    receiver = receivers(lambda number, got: 500 if number == 1 else 200)
    room = room_of(alice)
    hook = console.ok("webhook:create", {"url": receiver.url, "rooms": [room],
                                         "events": ["message"]})["webhook"]

    alice.send(room, "try again")

    first, second = wait_until(lambda: receiver.got()[:2] if len(receiver.got()) >= 2 else None,
                               message="no retry")
    assert first.delivery == second.delivery and first.body == second.body
    [delivery] = wait_until(lambda: [d for d in deliveries(console, hook["id"])
                                     if d["status"] == "delivered"])
    assert (delivery["id"], delivery["attempts"], delivery["response_code"]) == (
        first.delivery, 2, 200)
    assert isinstance(delivery["latency_ms"], int)
    time.sleep(0.5)  # nothing more comes: it was delivered
    assert len(receiver.got()) == 2


def test_a_receiver_that_does_not_answer_in_time_gets_a_retry(console, alice, receivers):
    receiver = receivers(lambda number, got: "hang" if number == 1 else 200)
    room = room_of(alice)
    hook = console.ok("webhook:create", {"url": receiver.url, "rooms": [room],
                                         "events": ["message"]})["webhook"]

    alice.send(room, "are you there?")

    first, second = wait_until(lambda: receiver.got()[:2] if len(receiver.got()) >= 2 else None,
                               10, message="no retry after the read timeout")
    assert first.delivery == second.delivery
    [delivery] = wait_until(lambda: [d for d in deliveries(console, hook["id"])
                                     if d["status"] == "delivered"])
    assert delivery["attempts"] == 2


def test_a_rooms_changes_arrive_in_order_even_when_some_need_retries(console, alice, receivers):
    receiver = receivers(lambda number, got: 500 if number in (1, 3, 4) else 200)
    room = room_of(alice)
    console.ok("webhook:create", {"url": receiver.url, "rooms": [room], "events": ["message"]})

    sent = [alice.send(room, f"in order {n}") for n in range(6)]

    wait_until(lambda: len({r.delivery for r in receiver.got()}) == 6 and
               len(receiver.got()) == 9, message="not all six arrived")
    bodies = [r.json["data"]["body"] for r in receiver.got()]
    # Each is repeated until it succeeds; a later one never comes before it.
    assert bodies == ["in order 0", "in order 0", "in order 1", "in order 1", "in order 1",
                      "in order 2", "in order 3", "in order 4", "in order 5"]
    assert [m["body"] for m in sent] == [f"in order {n}" for n in range(6)]


def test_a_webhook_filtered_by_room_and_event_gets_only_those(console, alice, receivers):
    receiver = receivers()
    watched, other = room_of(alice), room_of(alice)
    console.ok("webhook:create", {"url": receiver.url, "rooms": [watched],
                                  "events": ["message:updated"]})

    alice.send(other, "elsewhere")
    message = alice.send(watched, "first draft")
    alice.ok("message:edit", {"id": message["id"], "body": "second draft"})

    got = wait_until(receiver.got, message="no delivery")
    time.sleep(0.6)  # three poll periods: anything else queued would have come
    assert [(r.json["event"], r.json["room"], r.json["data"]["body"]) for r in receiver.got()] == [
        ("message:updated", watched, "second draft")]
    assert got[0].json["data"]["id"] == message["id"]


def test_a_disabled_webhook_gets_nothing_and_a_deleted_one_never_again(console, alice, receivers):
    receiver = receivers()
    room = room_of(alice)
    hook = console.ok("webhook:create", {"url": receiver.url, "rooms": [room],
                                         "events": ["message"]})["webhook"]
    alice.send(room, "before")
    wait_until(lambda: len(receiver.got()) == 1)

    console.ok("webhook:update", {"id": hook["id"], "active": False})
    alice.send(room, "while disabled")
    console.ok("webhook:update", {"id": hook["id"], "active": True})
    console.ok("webhook:delete", {"id": hook["id"]})
    alice.send(room, "after delete")
    time.sleep(0.6)

    assert [r.json["data"]["body"] for r in receiver.got()] == ["before"]


def test_the_console_redelivers_a_delivery_with_its_id(console, alice, receivers):
    receiver = receivers()
    room = room_of(alice)
    hook = console.ok("webhook:create", {"url": receiver.url, "rooms": [room],
                                         "events": ["message"]})["webhook"]
    alice.send(room, "once more")
    [delivery] = wait_until(lambda: [d for d in deliveries(console, hook["id"])
                                     if d["status"] == "delivered"])

    console.ok("webhook:redeliver", {"delivery": delivery["id"]})

    first, again = wait_until(lambda: receiver.got() if len(receiver.got()) == 2 else None)
    assert again.delivery == first.delivery == delivery["id"] and again.body == first.body


def test_a_redirect_is_not_followed(console, alice, receivers):
    target = receivers()
    redirecting = receivers(lambda number, got: ("redirect", target.url))
    room = room_of(alice)
    hook = console.ok("webhook:create", {"url": redirecting.url, "rooms": [room],
                                         "events": ["message"]})["webhook"]

    alice.send(room, "go elsewhere")

    [delivery] = wait_until(lambda: [d for d in deliveries(console, hook["id"])
                                     if d["status"] == "failed"])
    assert delivery["response_code"] == 302 and "not followed" in delivery["error"]
    assert len(redirecting.got()) == 1 and target.got() == []


def test_a_webhook_made_with_the_cli_is_listed_and_receives_changes(hook_env, alice, receivers):
    receiver = receivers()
    room = room_of(alice)

    made = flask_cli(hook_env, "create-webhook", receiver.url, "--room", room,
                     "--event", "message")
    secret = made.split("secret: ", 1)[1].split()[0]
    webhook_id = made.split()[2]
    alice.send(room, "from the cli's webhook")

    got = wait_until(receiver.got, message="no delivery")[0]
    assert verify(secret, got.headers, got.body)
    assert f"{webhook_id}\tactive\t{receiver.url}\t{room}\tmessage\t" in flask_cli(
        hook_env, "list-webhooks")
    assert flask_cli(hook_env, "delete-webhook", webhook_id).strip() == f"deleted webhook {webhook_id}"


def test_metrics_count_deliveries_by_outcome_and_the_queue(hook_server, console, alice,
                                                           receivers):
    receiver = receivers()
    room = room_of(alice)
    console.ok("webhook:create", {"url": receiver.url, "rooms": [room], "events": ["message"]})
    alice.send(room, "counted")
    wait_until(receiver.got)

    def scraped():
        text = requests.get(hook_server.url + "/metrics", timeout=10).text
        return text if 'parley_webhook_deliveries_total{outcome="delivered"}' in text else None

    text = wait_until(scraped, message="no delivery counted")
    assert "parley_webhook_queue_depth " in text


def test_without_the_operators_leave_no_request_reaches_loopback(tmp_path, receivers):
    env = e2e_env(f"sqlite:///{tmp_path / 'parley.sqlite3'}",
                  **{**FAST, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false"})
    flask_cli(env, "create-user", "root", "--password-stdin", "--admin",
              stdin=TEST_PASSWORD + "\n")
    receiver = receivers()
    server = start_server(env, "webhooks-guarded")
    try:
        console = Console(server.url, "root")
        refused = console.call("webhook:create", {"url": receiver.url})
        assert refused["ok"] is False and refused["error"]["field"] == "url", refused
        by_name = f"http://localhost:{receiver.port}/hook"
        hook = console.ok("webhook:create", {"url": by_name})["webhook"]
        root = Peer(server.url, "root").connect()
        room = room_of(root)
        root.send(room, "must not leave")

        failed = wait_until(lambda: [d for d in deliveries(console, hook["id"])
                                     if d["status"] == "failed"])
        assert "non-public address" in failed[0]["error"] and failed[0]["response_code"] is None
        assert receiver.got() == []
        root.close()
        console.close()
    finally:
        stop_server(server)
