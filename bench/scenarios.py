"""The scenarios: connections, fan-out, chat and scale.

Each takes a started server (``servers.WebServer``) and the run's ``Users``
and returns one JSON-able dict of figures. Every loop is bounded in count
and time.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time

from . import loadgen
from .loadgen import CpuMeter, Stats, percentiles

P99_LIMIT_MS = 250.0
log = logging.getLogger("bench")
_room_numbers = itertools.count(1)
_client_ids = itertools.count(1)


class Users:
    """Bench users of one work directory, signed in once; cookies are reused
    across server restarts (same database and SECRET_KEY)."""

    def __init__(self):
        self.cookies: list[str] = []
        self.run_tag = format(int(time.time()) % 10**6, "06d")

    def ensure(self, server, count: int) -> list[str]:
        if server.kind != "parley":
            return [None] * max(1, count)  # the relay has no sign-in
        missing = count - len(self.cookies)
        if missing > 0:
            names = [f"bench{self.run_tag}u{i:05d}"
                     for i in range(len(self.cookies), count)]
            self.cookies += loadgen.sign_in_many(server.url, names, register=True)
        return self.cookies[:count]


async def _wait_quiet(stats: Stats, *, quiet: float = 1.0, limit: float = 60.0) -> None:
    """Wait until no event has arrived for ``quiet`` seconds (presence after joins)."""
    deadline = time.monotonic() + limit
    last = (-1, -1)
    while time.monotonic() < deadline:
        now = (stats.other_events, stats.deliveries)
        if now == last:
            return
        last = now
        await asyncio.sleep(quiet)


async def _join_all(clients, slug: str, concurrency: int = 50) -> int:
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(client):
        nonlocal failures
        async with gate:
            try:
                reply = await client.call("room:join", {"room": slug})
                if not reply.get("ok"):
                    failures += 1
            except Exception:
                failures += 1

    await asyncio.gather(*(one(c) for c in clients))
    return failures


def _close_all(clients) -> None:
    for client in clients:
        client.close()


# connections -----------------------------------------------------------------

async def connections(server, users: Users, *, count: int, hold: float = 5.0,
                      per_user: int = 10, concurrency: int = 200) -> dict:
    """Open ``count`` connections, hold them, report rate, failures and RSS per connection."""
    cookies = users.ensure(server, max(1, -(-count // per_user)))
    stats = Stats()
    # Warm the worker (imports, first request) so the baseline is the idle server.
    warm, _, _ = await loadgen.connect_many(server.url, cookies, 20, stats)
    _close_all(warm)
    await asyncio.sleep(1.0)
    rss_before = server.rss_kib()
    cpu = CpuMeter()
    clients, failures, seconds = await loadgen.connect_many(server.url, cookies, count, stats,
                                                            concurrency=concurrency)
    gen_cpu = cpu.read()
    disconnects_before_hold = stats.disconnects
    await asyncio.sleep(hold)
    rss_after = server.rss_kib()
    alive = sum(1 for c in clients if not c.transport.is_disconnected)
    _close_all(clients)
    opened = len(clients)
    return {
        "connections": count,
        "opened": opened,
        "failures": failures,
        "alive_after_hold": alive,
        "dropped_during_hold": stats.disconnects - disconnects_before_hold,
        "hold_s": hold,
        "connect_s": round(seconds, 2),
        "connects_per_s": round(opened / seconds, 1) if seconds else None,
        "server_rss_before_kib": rss_before,
        "server_rss_after_kib": rss_after,
        "kib_per_connection": round((rss_after - rss_before) / opened, 1) if opened else None,
        "generator_cpu": round(gen_cpu, 2),
    }


# fan-out ---------------------------------------------------------------------

async def _paced_sends(duration: float, rate: float, send_one) -> int:
    """Call ``send_one(i)`` ``rate`` times a second for ``duration`` seconds."""
    started = time.monotonic()
    sent = 0
    total = int(rate * duration)
    while sent < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        while sent < due:
            send_one(sent)
            sent += 1
        await asyncio.sleep(0.002)
    return sent


async def _drain(stats: Stats, expected: int, limit: float = 10.0) -> None:
    """Wait until ``expected`` deliveries arrived, or no progress for 2 s, or ``limit``."""
    deadline = time.monotonic() + limit
    last, last_change = stats.deliveries, time.monotonic()
    while stats.deliveries < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if stats.deliveries != last:
            last, last_change = stats.deliveries, time.monotonic()
        elif time.monotonic() - last_change > 2.0:
            break


async def fanout(server, users: Users, *, receivers: int, rates: list[float],
                 duration: float = 5.0, per_user: int = 1) -> dict:
    """R receivers in one room, one sender at stepped rates.

    Each step sends at a fixed rate for ``duration`` seconds, then waits for
    the deliveries to drain. A step passes with p99 under 250 ms, nothing
    lost and every send acked ok; the stepping stops at the first failure.
    """
    cookies = users.ensure(server, 1 + max(1, -(-receivers // per_user)))
    stats = Stats()
    sender_stats = Stats()
    sender = await loadgen.connect(server.url, cookies[0], sender_stats, receiver=False)
    slug = f"fanout-{users.run_tag}-{next(_room_numbers)}"
    if server.kind == "parley":
        reply = await sender.call("room:create", {"name": slug})
        if not reply.get("ok"):
            raise RuntimeError(f"room:create failed: {reply}")
        slug = reply["room"]["slug"]
    await sender.call("room:join", {"room": slug})
    clients, failures, connect_s = await loadgen.connect_many(
        server.url, cookies[1:], receivers, stats)
    join_failures = await _join_all(clients, slug)
    await _wait_quiet(stats)
    tag = users.run_tag

    def send_one(i: int) -> None:
        sender.send_message(slug, f"f{tag}-{next(_client_ids)}")

    # Warm-up: JIT-free Python still has caches (SQLAlchemy statements, pages).
    warm = await _paced_sends(1.0, 10, send_one)
    await _drain(stats, stats.deliveries + 10 * len(clients), limit=5)
    await _wait_for_acks(sender_stats, warm)

    steps = []
    for rate in rates:
        stats.reset()
        sender_stats.reset()
        stats.record = sender_stats.record = True
        cpu = CpuMeter()
        server_cpu0 = server.cpu_seconds()
        started = time.monotonic()
        log.info("step: %s sends/s for %s s", rate, duration)
        sent = await _paced_sends(duration, rate, send_one)
        send_window = time.monotonic() - started
        await _drain(stats, sent * len(clients))
        # Acks of the last sends may trail the deliveries by a moment.
        ack_deadline = time.monotonic() + 5
        while (sender_stats.acks_ok + sum(sender_stats.acks_error.values()) < sent
               and time.monotonic() < ack_deadline):
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        stats.record = sender_stats.record = False
        lat = percentiles(stats.latencies_ns)
        expected = sender_stats.acks_ok * len(clients)
        lost = max(0, expected - stats.deliveries)
        step = {
            "rate": rate,
            "sent": sent,
            "acked_ok": sender_stats.acks_ok,
            "ack_errors": dict(sender_stats.acks_error),
            "deliveries": stats.deliveries,
            # Deliveries over the sending window: what the server sustained.
            "deliveries_per_s": round(stats.deliveries / _delivery_window(send_window, lat), 0)
            if lat["samples"] else 0,
            "lost": lost,
            "latency_ms": lat,
            "ack_latency_ms": percentiles(sender_stats.ack_latencies_ns),
            "server_cpu": round((server.cpu_seconds() - server_cpu0) / elapsed, 2),
            "generator_cpu": round(cpu.read(), 2),
        }
        step["passed"] = bool(lat["p99"] is not None and lat["p99"] < P99_LIMIT_MS
                              and lost == 0 and not step["ack_errors"]
                              and sender_stats.acks_ok == sent)
        steps.append(step)
        if not step["passed"]:
            break
        await asyncio.sleep(0.5)
    _close_all(clients)
    sender.close()
    passing = [s for s in steps if s["passed"]]
    best = max(passing, key=lambda s: s["deliveries_per_s"]) if passing else None
    return {
        "receivers": receivers,
        "new_members": new_members,
        "members_limit": members_limit,
        "connected": len(clients),
        "connect_failures": failures,
        "join_failures": join_failures,
        "connect_s": round(connect_s, 2),
        "step_s": duration,
        "best_deliveries_per_s": best["deliveries_per_s"] if best else 0,
        "best_rate": best["rate"] if best else None,
        "best_latency_ms": best["latency_ms"] if best else None,
        "best_lost": best["lost"] if best else None,
        "best_generator_cpu": best["generator_cpu"] if best else None,
        "best_server_cpu": best["server_cpu"] if best else None,
        "generator_saturated": any(s["generator_cpu"] > 0.9 for s in steps),
        "steps": steps,
    }


async def _wait_for_acks(stats: Stats, count: int, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while stats.acks_ok + sum(stats.acks_error.values()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _delivery_window(send_window: float, lat: dict) -> float:
    # Deliveries trail the sends by the latency: the window they arrived in is
    # the send window shifted by it. Using the send window alone would count
    # a backlog drained afterwards as throughput.
    return send_window + (lat["max"] or 0) / 1000.0


# chat ------------------------------------------------------------------------

async def chat(server, users: Users, *, clients_count: int, room_size: int,
               rates: list[float], duration: float = 5.0, per_user: int = 1) -> dict:
    """Many small rooms; random members send at a stepped total rate, with acks."""
    cookies = users.ensure(server, max(1, -(-clients_count // per_user)))
    stats = Stats()
    clients, failures, connect_s = await loadgen.connect_many(server.url, cookies,
                                                              clients_count, stats)
    rooms = []
    for start in range(0, len(clients), room_size):
        members = clients[start:start + room_size]
        slug = f"chat-{users.run_tag}-{next(_room_numbers)}"
        if server.kind == "parley":
            reply = await members[0].call("room:create", {"name": slug})
            if not reply.get("ok"):
                raise RuntimeError(f"room:create failed: {reply}")
            slug = reply["room"]["slug"]
        await _join_all(members, slug, concurrency=room_size)
        rooms.append((slug, members))
    await _wait_quiet(stats)
    senders = [(slug, member, len(members)) for slug, members in rooms for member in members]
    tag = users.run_tag
    sends_per_room: dict[str, int] = {}

    def send_one(i: int) -> None:
        slug, member, _ = random.choice(senders)
        sends_per_room[slug] = sends_per_room.get(slug, 0) + 1
        member.send_message(slug, f"c{tag}-{next(_client_ids)}")

    warm = await _paced_sends(1.0, 50, send_one)
    # Every warm-up ack must be in before the first step counts acks: a late
    # one would be counted as the step's, and the step would look wrong.
    await _wait_for_acks(stats, warm)
    await _drain(stats, stats.deliveries, limit=2)

    size_of = {slug: len(members) for slug, members in rooms}
    steps = []
    for rate in rates:
        stats.reset()
        stats.record = True
        sends_per_room.clear()
        cpu = CpuMeter()
        server_cpu0 = server.cpu_seconds()
        started = time.monotonic()
        log.info("step: %s sends/s for %s s", rate, duration)
        sent = await _paced_sends(duration, rate, send_one)
        send_window = time.monotonic() - started
        expected_all = sum(n * size_of[slug] for slug, n in sends_per_room.items())
        await _drain(stats, expected_all)
        ack_deadline = time.monotonic() + 5
        while (stats.acks_ok + sum(stats.acks_error.values()) < sent
               and time.monotonic() < ack_deadline):
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        stats.record = False
        lat = percentiles(stats.latencies_ns)
        ack_lat = percentiles(stats.ack_latencies_ns)
        # Room sizes are equal but for the last room; expected counts the
        # acked sends only (an unacked send may or may not be stored).
        acked_ratio = stats.acks_ok / sent if sent else 0
        lost = max(0, round(expected_all * acked_ratio) - stats.deliveries)
        step = {
            "rate": rate,
            "sent": sent,
            "acked_ok": stats.acks_ok,
            "ack_errors": dict(stats.acks_error),
            "acks_per_s": round(stats.acks_ok / _delivery_window(send_window, ack_lat), 0)
            if ack_lat["samples"] else 0,
            "deliveries": stats.deliveries,
            "deliveries_per_s": round(stats.deliveries / _delivery_window(send_window, lat), 0)
            if lat["samples"] else 0,
            "lost": lost,
            "latency_ms": lat,
            "ack_latency_ms": ack_lat,
            "server_cpu": round((server.cpu_seconds() - server_cpu0) / elapsed, 2),
            "generator_cpu": round(cpu.read(), 2),
        }
        step["passed"] = bool(lat["p99"] is not None and lat["p99"] < P99_LIMIT_MS
                              and ack_lat["p99"] is not None and ack_lat["p99"] < P99_LIMIT_MS
                              and lost == 0 and stats.acks_ok == sent)
        steps.append(step)
        if not step["passed"]:
            break
        await asyncio.sleep(0.5)
    _close_all(clients)
    passing = [s for s in steps if s["passed"]]
    best = max(passing, key=lambda s: s["acks_per_s"]) if passing else None
    return {
        "clients": clients_count,
        "room_size": room_size,
        "rooms": len(rooms),
        "connected": len(clients),
        "connect_failures": failures,
        "connect_s": round(connect_s, 2),
        "step_s": duration,
        "best_acks_per_s": best["acks_per_s"] if best else 0,
        "best_deliveries_per_s": best["deliveries_per_s"] if best else 0,
        "best_rate": best["rate"] if best else None,
        "best_latency_ms": best["latency_ms"] if best else None,
        "best_ack_latency_ms": best["ack_latency_ms"] if best else None,
        "best_lost": best["lost"] if best else None,
        "best_generator_cpu": best["generator_cpu"] if best else None,
        "generator_saturated": any(s["generator_cpu"] > 0.9 for s in steps),
        "steps": steps,
    }


# join --------------------------------------------------------------------------

BATCHED = {"presence": "batched"}


async def join(server, users: Users, *, receivers: int, per_user: int = 1,
               batched: bool = True, concurrency: int = 50, new_members: bool = False,
               grace: float = 5.0, members_limit: int | None = None) -> dict:
    """``receivers`` connect and join one room, ``concurrency`` joins at a time.

    By default they are members already (a room filling again after a
    restart, or in the morning): each joined once and left (connection
    closed; the offline presence waited out, ``grace``) before the
    measurement. With ``new_members`` each join also makes its member, and
    the room's change log records ``member:added``, which every joined
    connection receives (n²/2 deliveries by the contract of issue 13).
    ``members_limit`` (Parley): each ack lists at most that many members
    and online members (the first page), instead of all of them.

    ``fill_s``: from the first ``room:join`` until every join is acked and the
    presence it caused has arrived (the last event before a quiet second).
    Parley's connections opt into ``presence:batch`` unless ``batched`` is
    False (then every one gets ``presence`` per change, as the contract's
    default).
    """
    cookies = users.ensure(server, 1 + max(1, -(-receivers // per_user)))
    stats = Stats()
    auth = BATCHED if batched and server.kind == "parley" else None
    owner = await loadgen.connect(server.url, cookies[0], Stats(), receiver=False)
    slug = f"join-{users.run_tag}-{next(_room_numbers)}"
    if server.kind == "parley":
        reply = await owner.call("room:create", {"name": slug})
        if not reply.get("ok"):
            raise RuntimeError(f"room:create failed: {reply}")
        slug = reply["room"]["slug"]
    owner.close()
    if server.kind == "parley" and not new_members:
        setup, _, _ = await loadgen.connect_many(server.url, cookies[1:], receivers, Stats(),
                                                 auth=auth)
        await _join_all(setup, slug)
        _close_all(setup)
        await asyncio.sleep(grace + 1.0)
    clients, failures, connect_s = await loadgen.connect_many(
        server.url, cookies[1:], receivers, stats, auth=auth)
    reply_bytes = 0
    payload = {"room": slug}
    if members_limit is not None and server.kind == "parley":
        payload["members_limit"] = members_limit
    gate = asyncio.Semaphore(concurrency)
    join_failures = 0

    async def one(client):
        nonlocal join_failures, reply_bytes
        async with gate:
            try:
                reply = await client.call("room:join", payload, timeout=120)
                if not reply.get("ok"):
                    join_failures += 1
                reply_bytes += len(reply.get("members", ())) + len(reply.get("online", ()))
            except Exception:
                join_failures += 1

    cpu = CpuMeter()
    server_cpu0 = server.cpu_seconds()
    started_ns = time.monotonic_ns()
    await asyncio.gather(*(one(c) for c in clients))
    joined_ns = time.monotonic_ns()
    await _wait_quiet(stats, quiet=1.0, limit=120)
    last = max(joined_ns, stats.last_event_ns)
    fill_s = (last - started_ns) / 1e9
    result = {
        "receivers": receivers,
        "connected": len(clients),
        "connect_failures": failures,
        "join_failures": join_failures,
        "connect_s": round(connect_s, 2),
        "connects_per_s": round(len(clients) / connect_s, 1) if connect_s else None,
        "joins_acked_s": round((joined_ns - started_ns) / 1e9, 2),
        "fill_s": round(fill_s, 2),
        "presence_events": stats.other_events,
        "presence_mib": round(stats.event_bytes / 2**20, 1),
        "users_in_join_replies": reply_bytes,
        "server_cpu": round((server.cpu_seconds() - server_cpu0) / max(fill_s, 1e-9), 2),
        "generator_cpu": round(cpu.read(), 2),
    }
    _close_all(clients)
    return result


# reconnect storm -----------------------------------------------------------------

def backoff(attempt: int) -> float:
    """socket.io-client's reconnection delay (its defaults): 1 s doubling per
    attempt up to 5 s, randomized by ±50 %."""
    base = min(1.0 * 2 ** attempt, 5.0)
    return max(0.0, base + (random.random() * 2 - 1) * 0.5 * base)


class StormMember:
    """One client of the storm: its room, its cursor, the message ids it applied.

    It applies an event as the documented client does (docs/protocol.md,
    cursors): one with a cursor at or below the room's is a redelivery and
    skipped; live events that arrive while a catch-up is in flight wait for it.
    ``doubled`` counts a message id applied twice (a new cursor for a message
    already seen: the server's fault, never a client's).
    """

    __slots__ = ("cookie", "slug", "client", "cursor", "applied", "doubled", "redelivered",
                 "syncing", "buffer", "caught_up_ns", "attempts")

    def __init__(self, cookie):
        self.cookie = cookie
        self.slug = None
        self.client = None
        self.cursor = None
        self.applied: set[int] = set()
        self.doubled = 0
        self.redelivered = 0
        self.syncing = True
        self.buffer: list[dict] = []
        self.caught_up_ns = 0
        self.attempts = 0

    def on_message(self, data: dict) -> None:
        if self.syncing:
            self.buffer.append(data)
        else:
            self.apply(data)

    def apply(self, data: dict) -> None:
        cursor = data.get("cursor")
        if cursor is not None and self.cursor is not None and cursor <= self.cursor:
            self.redelivered += 1
            return
        if data["id"] in self.applied:
            self.doubled += 1
        else:
            self.applied.add(data["id"])
        if cursor is not None:
            self.cursor = cursor

    def apply_page(self, reply: dict) -> None:
        for change in reply.get("changes") or ():
            if change["event"] == "message":
                self.apply(change["data"])
        for message in reply.get("messages") or ():
            self.apply(message)
        if reply.get("cursor") is not None:
            self.cursor = max(self.cursor or 0, reply["cursor"])

    async def sync(self, first: bool) -> None:
        """``room:join`` (with the cursor after the first time), paging on with
        ``message:history`` while ``has_more``; then the buffered live events."""
        self.syncing = True
        payload = {"room": self.slug}
        if not first and self.cursor is not None:
            payload = {"room": self.slug, "cursor": self.cursor, "limit": 500}
        reply = await self.client.call("room:join", payload, timeout=60)
        if not reply.get("ok"):
            raise RuntimeError(f"room:join: {reply}")
        self.apply_page(reply)
        while reply.get("has_more") and reply.get("changes") is not None and not first:
            reply = await self.client.call("message:history", {
                "room": self.slug, "cursor": self.cursor, "limit": 500}, timeout=60)
            if not reply.get("ok"):
                raise RuntimeError(f"message:history: {reply}")
            self.apply_page(reply)
        buffered, self.buffer = self.buffer, []
        self.syncing = False
        for data in buffered:
            self.apply(data)
        self.caught_up_ns = time.monotonic_ns()


async def storm(server, users: Users, *, clients_count: int, room_size: int, rate: float,
                per_user: int = 1, before: float = 3.0, after: float = 3.0,
                limit: float = 120.0) -> dict:
    """Signed-in clients in rooms, messages flowing; every transport cut at once.

    Each client reconnects with the official back-off and catches up from its
    cursor. Reported: the time from the cut until the last client is caught
    up, the server's peak RSS, and per client the acked messages of its room
    it never applied (lost) or applied twice (doubled).
    """
    cookies = users.ensure(server, max(1, -(-clients_count // per_user)))
    stats = Stats()
    auth = BATCHED if server.kind == "parley" else None
    members = [StormMember(cookies[i % len(cookies)]) for i in range(clients_count)]

    async def open_one(member: StormMember, timeout: float = 20.0) -> None:
        member.client = await loadgen.connect(server.url, member.cookie, stats, auth=auth,
                                              timeout=timeout, on_message=member.on_message)

    gate = asyncio.Semaphore(200)

    async def setup_one(member):
        async with gate:
            await open_one(member)

    started = time.monotonic()
    await asyncio.gather(*(setup_one(m) for m in members))
    rooms: dict[str, list[StormMember]] = {}
    for start in range(0, len(members), room_size):
        group = members[start:start + room_size]
        slug = f"storm-{users.run_tag}-{next(_room_numbers)}"
        if server.kind == "parley":
            reply = await group[0].client.call("room:create", {"name": slug})
            if not reply.get("ok"):
                raise RuntimeError(f"room:create failed: {reply}")
            slug = reply["room"]["slug"]
        for member in group:
            member.slug = slug
        rooms[slug] = group

    async def first_sync(member):
        async with gate:
            await member.sync(first=True)

    await asyncio.gather(*(first_sync(m) for m in members))
    setup_s = time.monotonic() - started
    await _wait_quiet(stats, quiet=0.5)

    acked: dict[str, set[int]] = {slug: set() for slug in rooms}
    send_errors: dict[str, int] = {}
    counters = {"sent": 0, "unanswered": 0}
    tag = users.run_tag

    def on_ack(slug, future):
        if future.cancelled() or future.exception() is not None:
            counters["unanswered"] += 1
            return
        reply = future.result()
        if reply.get("ok"):
            acked[slug].add(reply["message"]["id"])
        else:
            code = (reply.get("error") or {}).get("code", "unknown")
            send_errors[code] = send_errors.get(code, 0) + 1

    def send_one(i: int) -> None:
        member = random.choice(members)
        client = member.client
        if member.syncing or client is None or client.transport.is_disconnected:
            return
        counters["sent"] += 1
        body = f"{time.monotonic_ns()} storm"
        future = client.emit("message:send", {"room": member.slug, "body": body,
                                              "client_id": f"s{tag}-{next(_client_ids)}"})
        future.add_done_callback(lambda f, slug=member.slug: on_ack(slug, f))

    peak = {"rss": server.rss_kib()}
    sampling = True

    async def sample_rss():
        while sampling:
            try:
                peak["rss"] = max(peak["rss"], server.rss_kib())
            except Exception:
                pass
            await asyncio.sleep(0.2)

    sampler = asyncio.ensure_future(sample_rss())
    rss_before = server.rss_kib()
    sending = True

    async def keep_sending():
        while sending:
            await _paced_sends(0.5, rate, send_one)

    sender = asyncio.ensure_future(keep_sending())
    await asyncio.sleep(before)

    # The cut: every transport at once, no goodbye.
    cut_ns = time.monotonic_ns()
    for member in members:
        member.syncing = True
        member.client.cut()
    server_cpu0 = server.cpu_seconds()

    async def reconnect(member: StormMember):
        attempt = 0
        while True:
            await asyncio.sleep(backoff(attempt))
            attempt += 1
            member.attempts = attempt
            try:
                await open_one(member)
                await member.sync(first=False)
                return
            except Exception:
                if member.client is not None:
                    member.client.cut()

    done = await asyncio.wait_for(asyncio.gather(*(reconnect(m) for m in members),
                                                 return_exceptions=True), limit)
    failed = sum(1 for d in done if isinstance(d, BaseException))
    caught_up_s = (max(m.caught_up_ns for m in members) - cut_ns) / 1e9
    storm_cpu = server.cpu_seconds() - server_cpu0
    await asyncio.sleep(after)
    sending = False
    await sender
    # Every acked message reaches every member of its room, or it is lost.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(acked[m.slug] <= m.applied for m in members):
            break
        await asyncio.sleep(0.2)
    sampling = False
    await sampler
    lost = sum(len(acked[m.slug] - m.applied) for m in members)
    result = {
        "clients": clients_count,
        "rooms": len(rooms),
        "room_size": room_size,
        "rate": rate,
        "setup_s": round(setup_s, 1),
        "caught_up_s": round(caught_up_s, 2),
        "reconnect_failures": failed,
        "attempts_max": max(m.attempts for m in members),
        "attempts_mean": round(sum(m.attempts for m in members) / len(members), 2),
        "sent": counters["sent"],
        "acked": sum(len(s) for s in acked.values()),
        "send_errors": send_errors,
        "unanswered_sends": counters["unanswered"],
        "lost": lost,
        "doubled": sum(m.doubled for m in members),
        "redelivered": sum(m.redelivered for m in members),
        "rss_before_kib": rss_before,
        "rss_peak_kib": peak["rss"],
        "server_cpu_s_in_storm": round(storm_cpu, 1),
        "persisted": server.kind == "parley",
    }
    for member in members:
        member.client.close()
    return result
