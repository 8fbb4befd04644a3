"""The transport's limits: what an anonymous client may hold open, and for how long.

gevent's WSGI server and python-engineio trust the client on the wire:

- pywsgi reads a request line and headers with no deadline (slowloris), and
  after any response it reads and discards the rest of an announced body, so
  a POST that announces 60 KB and sends none keeps its greenlet and file
  descriptor forever, even after engine.io answered it. Nothing times out a
  socket either: a client that never reads a response holds its writer.
- python-engineio queues output for a socket without limit, and python-
  socketio buffers binary attachments without limit.
- An Engine.IO session that never connects a namespace lives until its
  ping times out, and nothing counts them.
- Malformed packets raise inside the libraries, which log each one as an
  ERROR with a traceback.

This module closes each of these at the edge, with two pieces:

``handler_class(app, keepalive)`` returns gevent-websocket's WSGI handler
with deadlines on every read, the body limit checked from the header
before anything is read, chunked bodies refused, the WebSocket Origin
checked before the upgrade (so a foreign page gets an HTTP 400, which every
client reports as a refused connection, not a socket closed in its face),
and client mistakes logged as one counted WARNING, never a traceback.
gunicorn.conf.py installs it on the worker (``post_worker_init``).

``guard(socketio_server, config)`` wraps python-socketio's Engine.IO
handlers and python-engineio's socket queues, for any server (the test
client too): binary packets refused, a per-connection outbox bound,
anonymous sessions capped per address and dropped when no namespace
connects in time, and malformed packets counted.

The library internals this relies on are pinned by
tests/unit/test_transport_limits.py, which fails if an upgrade moves them.
"""
from __future__ import annotations

import collections
import contextvars
import io
import json
import logging
import socket
import time
import traceback
import weakref
from dataclasses import dataclass

import gevent
from engineio import socket as engineio_socket
from gevent import pywsgi
from geventwebsocket.handler import WebSocketHandler

log = logging.getLogger(__name__)

# The client address of the request being handled, for log lines raised deep
# inside the libraries (engine.io's own error log has no address).
client_address: contextvars.ContextVar[str] = contextvars.ContextVar(
    "parley_client_address", default="-")


# -- malformed input: counted, and one WARNING per address at most this often --

# One line per address a minute is enough for an operator to see who is
# sending garbage, and caps what one client can write to the log at a few
# hundred bytes a minute however much it sends.
MALFORMED_WARNING_INTERVAL_SECONDS = 60.0
# Addresses remembered for the rate limit; past this the oldest are forgotten
# (a botnet cannot grow the table without bound).
MALFORMED_ADDRESSES_KEPT = 4096

# Library code that parses client bytes: an exception raised there (rather
# than in Parley's handlers or their libraries) is the client's fault.
_DECODERS = ("/engineio/packet.py", "/engineio/payload.py", "/engineio/socket.py",
             "/socketio/packet.py", "/socketio/server.py", "/geventwebsocket/",
             "/json/decoder.py", "/json/__init__.py", "/gevent/pywsgi.py")


class MalformedInput:
    """How much malformed client input this process saw, by kind and address."""

    def __init__(self):
        self.total = 0
        self.by_kind: collections.Counter[str] = collections.Counter()
        self._last_warned: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._since_warned: collections.Counter[str] = collections.Counter()

    def record(self, kind: str, address: str | None = None) -> None:
        address = address or client_address.get()
        self.total += 1
        self.by_kind[kind] += 1
        self._since_warned[address] += 1
        now = time.monotonic()
        last = self._last_warned.get(address)
        if last is not None and now - last < MALFORMED_WARNING_INTERVAL_SECONDS:
            return
        self._last_warned[address] = now
        self._last_warned.move_to_end(address)
        while len(self._last_warned) > MALFORMED_ADDRESSES_KEPT:
            old, _ = self._last_warned.popitem(last=False)
            self._since_warned.pop(old, None)
        count = self._since_warned.pop(address, 1)
        log.warning("malformed client input from %s: %s (%d since the last warning, "
                    "%d in all)", address, kind, count, self.total)

    def reset(self) -> None:
        self.__init__()


malformed = MalformedInput()


def is_client_input_error(exc: BaseException) -> bool:
    """True when ``exc`` was raised while a library parsed what a client sent."""
    if isinstance(exc, (socket.timeout, TimeoutError, ConnectionError, UnicodeDecodeError)):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.endswith(_DECODERS)


class ClientErrorFilter(logging.Filter):
    """On engine.io's and socket.io's loggers: a traceback caused by client
    input becomes a count (and the rate-limited WARNING) instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None \
                and is_client_input_error(record.exc_info[1]):
            malformed.record(type(record.exc_info[1]).__name__)
            return False
        return True


# -- the HTTP edge: gevent-websocket's handler with deadlines and limits --

@dataclass(frozen=True)
class HttpLimits:
    header_timeout: float
    body_timeout: float
    send_timeout: float
    keepalive: float
    websocket_timeout: float
    max_body_bytes: int


def limits_from(config, keepalive: float, ping_cycle: float) -> HttpLimits:
    return HttpLimits(header_timeout=config["HTTP_HEADER_TIMEOUT_SECONDS"],
                      body_timeout=config["HTTP_BODY_TIMEOUT_SECONDS"],
                      send_timeout=config["HTTP_SEND_TIMEOUT_SECONDS"],
                      keepalive=keepalive,
                      # A healthy client sends a pong every ping interval; a
                      # little over a full ping cycle of silence means it is gone.
                      websocket_timeout=ping_cycle + 5,
                      max_body_bytes=config["MAX_PAYLOAD_BYTES"])


class _Refused(Exception):
    """A request refused from its head: answered in the contract's error shape."""

    def __init__(self, status: str, code: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


# After refusing a request whose body is still coming, read and drop what the
# client goes on sending for this long (at most LINGER_BYTES) before closing:
# closing a socket with unread data makes the kernel answer with a reset, and
# the client would see "connection reset" instead of the 413 (nginx's
# lingering close, on a smaller scale). Bounded, so a refused client cannot
# hold the greenlet longer than this.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20


class LimitedHandler(WebSocketHandler):
    """gevent-websocket's handler, with a deadline on every read and write."""

    limits: HttpLimits
    engineio_server = None  # for the WebSocket Origin check
    _served = 0

    def read_requestline(self):
        # The first request of a connection must start within the header
        # deadline; a kept-alive connection may idle for the keep-alive time.
        wait = self.limits.keepalive if self._served else self.limits.header_timeout
        self._served += 1
        self.socket.settimeout(None)  # the deadline here is the gevent.Timeout
        line = ""
        with gevent.Timeout(wait, False):
            line = super().read_requestline()
        return line

    def read_request(self, raw_requestline):
        # A client trickling its headers a byte at a time (slowloris) has the
        # same deadline as one that sends nothing. False answers 400, closed.
        with gevent.Timeout(self.limits.header_timeout, False):
            return super().read_request(raw_requestline)
        return False

    def handle_one_response(self):
        client_address.set(self._address())
        try:
            self._admit()
        except _Refused as refusal:
            malformed.record(refusal.reason)
            self._refuse(refusal)
            return
        websocket = self.environ.get("HTTP_UPGRADE", "").lower() == "websocket"
        # From here on every socket operation has a deadline: a response the
        # client never reads, or a WebSocket that goes silent, ends.
        self.socket.settimeout(self.limits.websocket_timeout if websocket
                               else self.limits.send_timeout)
        super().handle_one_response()

    def _address(self) -> str:
        address = self.client_address
        return address[0] if isinstance(address, tuple) else str(address or "-")

    def _admit(self) -> None:
        """Refuse what can be refused from the head; read a body whole, in time."""
        environ = self.environ
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket" and not self._origin_allowed():
            raise _Refused("400 Bad Request", "forbidden", "not an accepted origin")
        body = self.wsgi_input
        if body.chunked_input:
            # No Parley client sends a chunked body; it would have no length
            # to check against the limit before reading.
            raise _Refused("411 Length Required", "invalid", "chunked request body")
        length = body.content_length or 0
        if length > self.limits.max_body_bytes:
            raise _Refused("413 Payload Too Large", "too_large", "request body over the limit")
        if length:
            # Read the (bounded) body before the application runs, so the
            # application never waits on the client, and pywsgi's discard of
            # an unread body never blocks.
            data = None
            try:
                with gevent.Timeout(self.limits.body_timeout, False):
                    data = body.read(length)
            except OSError:
                data = None
            if data is None or len(data) < length:
                raise _Refused("408 Request Timeout", "invalid", "request body incomplete")
            self.wsgi_input = pywsgi.Input(io.BytesIO(data), length)
            environ["wsgi.input"] = self.wsgi_input

    def _origin_allowed(self) -> bool:
        # Engine.IO's own check (engineio.Server.handle_request), made before
        # gevent-websocket completes the upgrade: after it, engine.io's 400 is
        # lost and the client sees only a closed socket.
        eio = self.engineio_server
        origin = self.environ.get("HTTP_ORIGIN")
        if eio is None or not origin or eio.cors_allowed_origins == []:
            return True
        allowed = eio._cors_allowed_origins(self.environ)
        return allowed is None or origin in allowed

    def _refuse(self, refusal: _Refused) -> None:
        self.close_connection = True
        body = json.dumps({"error": {"code": refusal.code, "message": refusal.reason}}).encode()
        try:
            # A length, not chunks: the socket is shut for writing right after.
            self.start_response(refusal.status, [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body))),
                                                 ("Connection", "close")])
            self.write(body)
            self._linger()
        except OSError:
            pass
        self.time_finish = time.time()
        self.log_request()

    def _linger(self) -> None:
        """Stop writing, then drop what the client still sends, for a bounded time."""
        self.socket.shutdown(socket.SHUT_WR)
        dropped = 0
        with gevent.Timeout(LINGER_SECONDS, False):
            while dropped < LINGER_BYTES:
                chunk = self.socket.recv(65536)
                if not chunk:
                    break
                dropped += len(chunk)

    def handle_error(self, t, v, tb):
        # pywsgi reports any exception out of the application (gevent-
        # websocket's reader included) as a traceback on stderr and a 500.
        # One the client caused (a timeout, a frame that does not parse) is
        # counted instead and the connection closed.
        if v is not None and is_client_input_error(v):
            malformed.record(t.__name__)
            self.close_connection = True
            return
        super().handle_error(t, v, tb)


def handler_class(app, keepalive: float) -> type[LimitedHandler]:
    """The WSGI handler class for ``app``'s gunicorn worker."""
    socketio = app.extensions["socketio"]
    eio = socketio.server.eio
    limits = limits_from(app.config, keepalive, eio.ping_interval + eio.ping_timeout)
    return type("ParleyWebSocketHandler", (LimitedHandler,),
                {"limits": limits, "engineio_server": eio})


# -- the Socket.IO edge --

@dataclass(frozen=True)
class SocketLimits:
    outbox_packets: int
    outbox_bytes: int
    anonymous_per_address: int
    anonymous_timeout: float


def _outbox_class(limits: SocketLimits, on_overflow):
    from gevent.queue import JoinableQueue

    class Outbox(JoinableQueue):
        """An Engine.IO socket's output queue, bounded in packets and characters.

        Past either bound the connection is a slow consumer: further output is
        dropped and the connection closed (``on_overflow``); the client
        reconnects and catches up from the database like after any drop.
        """

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.queued_bytes = 0
            self.overflowed = False

        def put(self, item, block=True, timeout=None):
            if item is None:  # the end-of-stream marker always goes through
                return super().put(item, block, timeout)
            if self.overflowed:
                return None
            size = _size(item)
            if self.qsize() >= limits.outbox_packets or \
                    self.queued_bytes + size > limits.outbox_bytes:
                self.overflowed = True
                on_overflow(self)
                return None
            self.queued_bytes += size
            return super().put(item, block, timeout)

        def get(self, block=True, timeout=None):
            item = super().get(block, timeout)
            if item is not None:
                self.queued_bytes = max(0, self.queued_bytes - _size(item))
            return item

    return Outbox


def _size(pkt) -> int:
    data = getattr(pkt, "data", None)
    return len(data) if isinstance(data, (str, bytes)) else 64


def guard(sio, config) -> None:
    """Install the Socket.IO edge's limits on python-socketio server ``sio``."""
    eio = sio.eio
    limits = SocketLimits(outbox_packets=config["MAX_OUTBOX_PACKETS"],
                          outbox_bytes=config["MAX_OUTBOX_BYTES"],
                          anonymous_per_address=config["MAX_ANONYMOUS_SESSIONS_PER_ADDRESS"],
                          anonymous_timeout=config["ANONYMOUS_SESSION_TIMEOUT_SECONDS"])
    for logger in (eio.logger, sio.logger):
        if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
            logger.addFilter(ClientErrorFilter())
    _install_outbox(eio, limits)

    # eio sid -> (address, deadline), until a namespace connects. One sweeper
    # greenlet per process drops the overdue ones (a sleeping greenlet per
    # session would hold a stack for every connection's first seconds: about
    # 25 KB each, measured as RSS that climbed with every wave of connections).
    anonymous: dict[str, tuple[str, float]] = {}
    per_address: collections.Counter[str] = collections.Counter()
    sweeping = [False]
    on_connect = eio.handlers["connect"]
    on_message = eio.handlers["message"]
    on_disconnect = eio.handlers["disconnect"]

    def settle(eio_sid: str) -> None:
        entry = anonymous.pop(eio_sid, None)
        if entry is not None:
            address = entry[0]
            per_address[address] -= 1
            if per_address[address] <= 0:
                del per_address[address]

    def has_namespace(eio_sid: str) -> bool:
        return any(sio.manager.sid_from_eio_sid(eio_sid, ns) is not None
                   for ns in list(sio.manager.get_namespaces()))

    def sweep() -> None:
        # Looks a few times per timeout: a session is dropped at most a
        # quarter of the timeout (or a second) after its deadline.
        interval = min(1.0, limits.anonymous_timeout / 4)
        try:
            while anonymous:
                eio.sleep(interval)
                now = time.monotonic()
                for eio_sid, (_address, deadline) in list(anonymous.items()):
                    if deadline > now or eio_sid not in anonymous:
                        continue
                    settle(eio_sid)
                    sock = eio.sockets.get(eio_sid)
                    if sock is not None:
                        log.info("dropping Engine.IO session %s: no namespace connect in %ss",
                                 eio_sid, limits.anonymous_timeout)
                        _abort(eio, eio_sid, sock)
        finally:
            sweeping[0] = False

    def connect(eio_sid, environ):
        address = environ.get("REMOTE_ADDR") or "-"
        if limits.anonymous_per_address and \
                per_address[address] >= limits.anonymous_per_address:
            malformed.record("too many sessions without a namespace", address)
            return False
        anonymous[eio_sid] = (address, time.monotonic() + limits.anonymous_timeout)
        per_address[address] += 1
        if not sweeping[0]:
            sweeping[0] = True
            eio.start_background_task(sweep)
        return on_connect(eio_sid, environ)

    def message(eio_sid, data):
        environ = sio.environ.get(eio_sid) or {}
        address = environ.get("REMOTE_ADDR") or "-"
        token = client_address.set(address)
        try:
            # Parley sends and accepts no binary events: a binary event or
            # ack (types 5 and 6) would make python-socketio buffer the
            # frames that follow as its attachments, without limit.
            if isinstance(data, bytes) or data[:1] in ("5", "6"):
                malformed.record("binary packet", address)
                _close(eio, eio_sid)
                return None
            try:
                result = on_message(eio_sid, data)
            except Exception as exc:
                if not is_client_input_error(exc):
                    raise
                malformed.record(type(exc).__name__, address)
                return None
            if eio_sid in anonymous and data[:1] == "0" and has_namespace(eio_sid):
                settle(eio_sid)
            return result
        finally:
            client_address.reset(token)

    def disconnect(eio_sid, *args):
        settle(eio_sid)
        return on_disconnect(eio_sid, *args)

    eio.on("connect", connect)
    eio.on("message", message)
    eio.on("disconnect", disconnect)
    sio.parley_anonymous = anonymous


def _install_outbox(eio, limits: SocketLimits) -> None:
    def overflow(queue) -> None:
        for sid, sock in list(eio.sockets.items()):
            if sock.queue is queue:
                malformed.record("slow consumer: outbox full")
                log.info("closing Engine.IO session %s: its outbox is full "
                         "(a client that does not read)", sid)
                eio.start_background_task(_abort, eio, sid, sock)
                return

    outbox = _outbox_class(limits, overflow)
    eio.create_queue = lambda *args, **kwargs: outbox(*args, **kwargs)


def _abort(eio, sid, sock) -> None:
    """Close Engine.IO session ``sid`` and, over WebSocket, its TCP connection at once.

    Engine.IO's own close waits on the transport: the writer may be blocked
    sending to a client that does not read, and the reader waiting for a
    frame that never comes."""
    ws_ref = getattr(sock, "parley_websocket", None)
    ws = ws_ref() if ws_ref is not None else None
    handler = getattr(getattr(ws, "_sock", None), "handler", None)
    tcp = getattr(handler, "socket", None)
    if tcp is not None:
        try:
            tcp.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    _close(eio, sid)


def _close(eio, sid) -> None:
    # engineio.Server.disconnect waits for the socket's queue to drain, which
    # never happens for a client that does not read (or from inside the
    # handler of its own POST): close without waiting.
    sock = eio.sockets.get(sid)
    if sock is not None:
        sock.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
        eio.sockets.pop(sid, None)


def _remember_websocket() -> None:
    """Let a slow consumer's TCP connection be found from its Engine.IO socket."""
    original = engineio_socket.Socket._websocket_handler
    if getattr(original, "parley", False):
        return

    def _websocket_handler(self, ws):
        # A weak reference: the Engine.IO socket must not keep the WebSocket
        # (and through it the handler and its buffers) alive in a cycle.
        self.parley_websocket = weakref.ref(ws)
        return original(self, ws)

    _websocket_handler.parley = True
    engineio_socket.Socket._websocket_handler = _websocket_handler


_remember_websocket()
