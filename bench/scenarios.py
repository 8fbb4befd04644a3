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
