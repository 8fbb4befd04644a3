"""Webhook dispatchers in two server processes on one PostgreSQL database.

Each process runs its own dispatcher; they claim deliveries with
``FOR UPDATE SKIP LOCKED`` and a lease. A receiver on loopback counts what
arrives by delivery id.
"""
from __future__ import annotations

import collections
import signal

import psycopg
import pytest

from tests.admin.test_e2e import Console
from tests.e2e.conftest import Peer
from tests.support import postgres
from tests.support.receiver import Receiver
from tests.support.requirements import unavailable
from tests.support.server import TEST_PASSWORD, base_env, child_pids, flask_cli, wait_until

from .conftest import start_server

pytestmark = [pytest.mark.multiproc, pytest.mark.postgres]

# A hung receiver is given 6 s to answer (connect + read); the lease is 8 s.
WEBHOOKS = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "WEBHOOK_BACKOFF_SECONDS": "0.2",
            "WEBHOOK_MAX_BACKOFF_SECONDS": "0.5", "WEBHOOK_POLL_SECONDS": "0.1",
            "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1", "WEBHOOK_READ_TIMEOUT_SECONDS": "5",
            "WEBHOOK_LEASE_SECONDS": "8", "MESSAGE_RATE_LIMIT": "100000 per 1 second",
            "ROOM_CREATE_RATE_LIMIT": "100000 per 1 hour", "GRACEFUL_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def pg_url():
    reason = postgres.available()
    if reason is not None:
        unavailable(f"{reason}; start one or point PARLEY_TEST_POSTGRES_URL at one")
    with postgres.throwaway_database() as url:
        yield url


@pytest.fixture(scope="module")
def hook_env(pg_url, redis_server):
    env = base_env(pg_url, REDIS_URL=redis_server.url, **WEBHOOKS)
    flask_cli(env, "init-db")
    flask_cli(env, "create-user", "root", "--password-stdin", "--admin",
              stdin=TEST_PASSWORD + "\n")
    flask_cli(env, "create-user", "alice", "--password-stdin", stdin=TEST_PASSWORD + "\n")
    return env


@pytest.fixture
def servers(hook_env):
    running = [start_server(hook_env, "webhooks-a"), start_server(hook_env, "webhooks-b")]
    yield running
    for server in running:
        server.close()


@pytest.fixture
def database(pg_url):
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1),
                         autocommit=True) as conn:
        yield conn


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


def rooms_of(peer: Peer, count: int) -> list[str]:
    slugs = []
    for _ in range(count):
        slug = peer.create_room()
        peer.ok("room:join", {"room": slug})
        slugs.append(slug)
    return slugs


def test_two_processes_deliver_each_change_exactly_once_in_room_order(servers, receiver,
                                                                      database):
    a, b = servers
    console = Console(a.url, "root")
    writers = [Peer(a.url, "alice").connect(), Peer(b.url, "alice").connect()]
    rooms = rooms_of(writers[0], 4)
    console.ok("webhook:create", {"url": receiver.url, "rooms": rooms, "events": ["message"]})

    for n in range(48):  # alternately through each process: both dispatchers are woken
        writers[n % 2].send(rooms[n % 4], f"m{n}")

    wait_until(lambda: len({r.delivery for r in receiver.got()}) == 48, 60,
               message="not every change arrived")
    got = receiver.got()
    assert len(got) == 48, collections.Counter(r.delivery for r in got).most_common(3)
    for room in rooms:
        cursors = [r.json["cursor"] for r in got if r.json["room"] == room]
        assert cursors == sorted(cursors) and len(cursors) == 12
    # The receiver answers before the sender logs: wait for the last lines.
    def delivered_by():
        counts = [server.log().count("attempt 1: delivered") for server in servers]
        return counts if sum(counts) == 48 else None

    assert min(wait_until(delivered_by, 10, message="not every delivery was recorded")) > 0
    for writer in writers:
        writer.close()
    console.close()


def test_a_process_killed_mid_delivery_has_it_retried_after_the_lease(servers, database):
    receiver = Receiver(lambda number, got: "hang" if number == 1 else 200).start()
    try:
        a, b = servers
        console = Console(a.url, "root")
        writer = Peer(a.url, "alice").connect()
        [room] = rooms_of(writer, 1)
        console.ok("webhook:create", {"url": receiver.url, "rooms": [room], "events": ["message"]})
        console.close()

        writer.send(room, "do not lose me")
        wait_until(lambda: len(receiver.got()) == 1, 10, message="the delivery never started")
        [(claimed_by,)] = database.execute(
            "SELECT claimed_by FROM webhook_deliveries WHERE id = %s",
            (receiver.got()[0].delivery,)).fetchall()
        holder_pid = int(claimed_by.split(":")[1])
        [holder] = [s for s in servers if holder_pid in child_pids(s.process.pid)]
        survivor = b if holder is a else a
        writer.close()
        holder.stop(signal.SIGKILL)  # the whole process group, mid-delivery

        wait_until(lambda: len(receiver.got()) == 2, 30, message="never retried after the lease")
        first, again = receiver.got()
        assert again.delivery == first.delivery and again.body == first.body
        wait_until(lambda: database.execute(
            "SELECT status, attempts FROM webhook_deliveries WHERE id = %s",
            (first.delivery,)).fetchall() == [("delivered", 1)],
            10, message="the retry was not recorded")
        assert survivor.process.poll() is None
        # (logged just after the commit the query above saw)
        wait_until(lambda: f"{first.delivery} attempt 1: delivered" in survivor.log(), 10,
                   message="the survivor did not log the delivery")
    finally:
        receiver.stop()
