"""A lean Socket.IO v5 / Engine.IO v4 client for load generation.

One asyncio process (uvloop when available) holds thousands of WebSocket
connections through picows, a C WebSocket implementation, and speaks the
Engine.IO/Socket.IO text framing itself: python-socketio's client costs a
thread or greenlet and several objects per connection and would become the
bottleneck long before the server does.

Framing used (namespace ``/public``):
  server open        0{"sid":...,"pingInterval":...}
  ping / pong        2 / 3
  namespace connect  40/public,            -> 40/public,{"sid":...} or 44/public,{...}
  event with ack     42/public,<id>["event",{...}]  -> 43/public,<id>[{...}]
  server event       42/public,["message",{...}]

End-to-end latency: the sender writes ``time.monotonic_ns()`` at the start of
the body; every receiver (same process, same clock) subtracts it on arrival.
"""
from __future__ import annotations

import asyncio
import os
import re
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import requests
from picows import WSListener, WSMsgType, WSTransport, ws_connect

NAMESPACE = "/public"
_CONNECT = b"40/public,"
_EVENT_PREFIX = b"42/public,"
_ACK_PREFIX = b"43/public,"
_CONNECTED = b"40/public,"
_CONNECT_ERROR = b"44/public,"
_MESSAGE_EVENT = b'42/public,["message",'
PASSWORD = "bench-password-1"


class Stats:
    """Counters shared by every connection of one measurement."""

    __slots__ = ("deliveries", "latencies_ns", "other_events", "record", "acks_ok",
                 "acks_error", "ack_latencies_ns", "errors", "disconnects", "last_event_ns",
                 "event_bytes")

    def __init__(self):
        self.reset()
        self.disconnects = 0
        self.last_event_ns = 0
        self.event_bytes = 0

    def reset(self):
        self.deliveries = 0
        self.latencies_ns: list[int] = []
        self.other_events = 0
        self.record = False
        self.acks_ok = 0
        self.acks_error: dict[str, int] = {}
        self.ack_latencies_ns: list[int] = []
        self.errors = 0


class Client(WSListener):
    """One Socket.IO connection to ``/public``."""

    __slots__ = ("transport", "stats", "opened", "joined_ns", "acks", "next_ack",
                 "closed", "receiver", "on_message")

    def __init__(self, stats: Stats, receiver: bool = True, on_message=None):
        self.transport: WSTransport | None = None
        self.stats = stats
        self.receiver = receiver
        # Called with each ``message`` event's payload (a dict) instead of
        # counting latency (the reconnect storm tracks ids and cursors).
        self.on_message = on_message
        loop = asyncio.get_running_loop()
        self.opened = loop.create_future()      # Engine.IO open packet
        self.joined_ns = loop.create_future()   # Socket.IO namespace connected
        self.closed = loop.create_future()
        self.acks: dict[int, tuple[asyncio.Future | None, int]] = {}
        self.next_ack = 1

    # picows callbacks ---------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()
            return
        data = frame.get_payload_as_bytes()
        if data.startswith(_MESSAGE_EVENT):
            if self.on_message is not None:
                self.on_message(orjson.loads(data[len(_EVENT_PREFIX):])[1])
            elif self.receiver:
                stats = self.stats
                stats.deliveries += 1
                if stats.record:
                    # The body starts with the sender's monotonic_ns stamp.
                    start = data.find(b'"body":"', 20) + 8
                    end = data.find(b" ", start)
                    stats.latencies_ns.append(time.monotonic_ns() - int(data[start:end]))
            return
        kind = data[:1]
        if kind == b"4":
            if data.startswith(_ACK_PREFIX):
                self._on_ack(data)
            elif data.startswith(_EVENT_PREFIX):
                stats = self.stats
                stats.other_events += 1
                stats.event_bytes += len(data)
                stats.last_event_ns = time.monotonic_ns()
            elif data.startswith(_CONNECTED):
                if not self.joined_ns.done():
                    self.joined_ns.set_result(True)
            elif data.startswith(_CONNECT_ERROR):
                if not self.joined_ns.done():
                    self.joined_ns.set_exception(ConnectionRefusedError(data[10:].decode()))
        elif kind == b"2":
            transport.send(WSMsgType.TEXT, b"3")
        elif kind == b"0":
            if not self.opened.done():
                self.opened.set_result(True)
        elif kind == b"1":
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.stats.disconnects += 1
        for future in (self.opened, self.joined_ns, self.closed):
            if not future.done():
                if future is self.closed:
                    future.set_result(True)
                else:
                    future.set_exception(ConnectionError("disconnected"))
        for future, _ in self.acks.values():
            if future is not None and not future.done():
                future.set_exception(ConnectionError("disconnected"))
        self.acks.clear()

    # acks ----------------------------------------------------------------
    def _on_ack(self, data: bytes) -> None:
        rest = data[10:]
        bracket = rest.index(b"[")
        ack_id = int(rest[:bracket])
        entry = self.acks.pop(ack_id, None)
        if entry is None:
            return
        future, started = entry
        if future is not None:
            future.set_result(orjson.loads(rest[bracket:])[0])
            return
        # Fire-and-count sends: only the outcome and its latency are kept.
        stats = self.stats
        reply = orjson.loads(rest[bracket:])[0]
        if reply.get("ok"):
            stats.acks_ok += 1
            if stats.record:
                stats.ack_latencies_ns.append(time.monotonic_ns() - started)
        else:
            code = (reply.get("error") or {}).get("code", "unknown")
            stats.acks_error[code] = stats.acks_error.get(code, 0) + 1

    def emit(self, event: str, payload: dict, *, want_reply: bool = True):
        """Send ``event`` with an ack; returns a future of the ack (or None when counted)."""
        ack_id = self.next_ack
        self.next_ack += 1
        future = asyncio.get_running_loop().create_future() if want_reply else None
        self.acks[ack_id] = (future, time.monotonic_ns())
        body = orjson.dumps([event, payload])
        self.transport.send(WSMsgType.TEXT, _EVENT_PREFIX + str(ack_id).encode() + body)
        return future

    async def call(self, event: str, payload: dict, timeout: float = 30.0) -> dict:
        return await asyncio.wait_for(self.emit(event, payload), timeout)

    def send_message(self, room: str, client_id: str, text: str = "bench") -> None:
        """``message:send`` stamped with the send time; the ack is counted, not awaited."""
        body = f"{time.monotonic_ns()} {text}"
        self.emit("message:send", {"room": room, "body": body, "client_id": client_id},
                  want_reply=False)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send(WSMsgType.TEXT, b"41/public,")
            self.transport.disconnect()

    def cut(self) -> None:
        """Drop the TCP connection without a close frame: a lost network, not a goodbye."""
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect(graceful=False)


async def connect(base_url: str, cookie: str | None, stats: Stats, *, receiver: bool = True,
                  timeout: float = 30.0, auth: dict | None = None, on_message=None) -> Client:
    """Open a WebSocket, wait for Engine.IO open, connect the ``/public`` namespace
    (with ``auth`` as the Socket.IO auth payload when given)."""
    url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    headers = {"Cookie": cookie} if cookie else None
    transport, client = await ws_connect(lambda: Client(stats, receiver, on_message), url,
                                         extra_headers=headers,
                                         websocket_handshake_timeout=timeout)
    try:
        await asyncio.wait_for(client.opened, timeout)
        transport.send(WSMsgType.TEXT, _CONNECT + (orjson.dumps(auth) if auth else b""))
        await asyncio.wait_for(client.joined_ns, timeout)
    except BaseException:
        transport.disconnect(graceful=False)
        raise
    return client


async def connect_many(base_url: str, cookies: list[str | None], count: int, stats: Stats, *,
                       concurrency: int = 200, receiver: bool = True, auth: dict | None = None
                       ) -> tuple[list[Client], int, float]:
    """Open ``count`` connections, ``concurrency`` at a time, cookies round-robin.

    Returns the clients, the number of failures and the seconds it took.
    """
    gate = asyncio.Semaphore(concurrency)
    clients: list[Client] = []
    failures = 0

    async def one(i: int):
        nonlocal failures
        async with gate:
            try:
                clients.append(await connect(base_url, cookies[i % len(cookies)], stats,
                                             receiver=receiver, auth=auth))
            except Exception:
                failures += 1

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    return clients, failures, time.monotonic() - started


# HTTP sign-in (once per user, before the event loop work) ---------------

def _csrf(http: requests.Session, url: str) -> str:
    page = http.get(url, timeout=30)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if match is None:
        raise RuntimeError(f"no csrf_token on {url} (status {page.status_code})")
    return match.group(1)


def sign_in(base_url: str, username: str, *, register: bool) -> str:
    """Create the user through ``/register`` if asked, sign in through ``/login``;
    returns the Cookie header value."""
    if register:
        http = requests.Session()
        token = _csrf(http, base_url + "/register")
        http.post(base_url + "/register", timeout=30, allow_redirects=False,
                  data={"username": username, "password": PASSWORD, "csrf_token": token})
    http = requests.Session()
    token = _csrf(http, base_url + "/login")
    response = http.post(base_url + "/login", timeout=30, allow_redirects=False,
                         data={"username": username, "password": PASSWORD, "csrf_token": token})
    if response.status_code not in (302, 303):
        raise RuntimeError(f"sign-in of {username} failed: {response.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def sign_in_many(base_url: str, usernames: list[str], *, register: bool,
                 threads: int = 8) -> list[str]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda name: sign_in(base_url, name, register=register),
                             usernames))


# Own CPU --------------------------------------------------------------------

class CpuMeter:
    """This process's CPU time over a wall-clock window (1.0 = one full core)."""

    def __init__(self):
        self.start()

    def start(self):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu = usage.ru_utime + usage.ru_stime
        self._wall = time.monotonic()

    def read(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - self._wall
        return (usage.ru_utime + usage.ru_stime - self._cpu) / wall if wall > 0 else 0.0


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentiles(samples_ns: list[int]) -> dict:
    """p50/p95/p99/max in milliseconds (nearest rank)."""
    if not samples_ns:
        return {"p50": None, "p95": None, "p99": None, "max": None, "samples": 0}
    ordered = sorted(samples_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] / 1e6, 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
            "max": round(ordered[-1] / 1e6, 2), "samples": n}


def cpu_count_note() -> str:
    return f"{os.cpu_count()} cpus"
