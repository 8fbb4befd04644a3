"""Stopping a serving process: move its clients at once, then finish.

gunicorn's SIGTERM (systemd stop, ``kill``, a rolling restart) only tells
the worker to stop accepting and to wait up to ``graceful_timeout`` for open
connections to end. A WebSocket (or a long-polling session) never ends on its
own, so without this its client would stay for the whole timeout on a
process that is going away, apart from the clients of the new one.

``begin`` runs once the worker got SIGTERM (``gunicorn.conf.py`` installs
it): from then on every HTTP request to this process is answered ``503``
with ``Connection: close`` (a reconnecting client must not land here again
over a kept-alive connection), then every Engine.IO transport is cut as
after a message-queue outage, so the official clients reconnect (to the
replacement process, or another instance behind the proxy) and catch up
with ``room:join`` ``since``. Once the requests in flight are done, the
worker drops its idle kept-alive connections, which it would otherwise also
wait the whole timeout for, and exits.
"""
from __future__ import annotations

import logging
import time

from ..extensions import socketio
from ..services.connections import live

log = logging.getLogger(__name__)

# The worker's run loop notices SIGTERM within a second and closes its
# listening sockets; cutting transports after that means a reconnect cannot
# reach this process through a new connection. Waiting longer would only keep
# clients here.
LISTENERS_CLOSE_TIMEOUT = 1.5


class _State:
    stopping = False
    # HTTP requests being served now (a WebSocket counts for its whole life).
    in_flight = 0


state = _State()


class StoppingGate:
    """WSGI middleware: while the process is stopping, every request gets ``503``.

    One attribute read per HTTP request while serving (a WebSocket is one
    request for its whole life).
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if not state.stopping:
            state.in_flight += 1
            try:
                return self.wsgi_app(environ, start_response)
            finally:
                state.in_flight -= 1
        start_response("503 Service Unavailable", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Connection", "close"),
            ("Retry-After", "1"),
        ])
        return [b"this server is stopping: reconnect\n"]


def begin(listeners=(), drain_timeout: float = 30.0) -> int:
    """Stop serving, wait for ``listeners`` to close, then cut every client's transport.

    Returns, after the requests in flight have ended (or ``drain_timeout``),
    how many Engine.IO connections were cut. What is left then are idle
    kept-alive connections, which the caller may drop.
    """
    if state.stopping:
        return 0
    state.stopping = True
    deadline = time.monotonic() + LISTENERS_CLOSE_TIMEOUT
    while any(_is_open(s) for s in listeners) and time.monotonic() < deadline:
        socketio.sleep(0.05)
    count = len(socketio.server.eio.sockets)
    live.drop_transports()
    log.info("stopping: %s client connections cut so that they reconnect elsewhere", count)
    deadline = time.monotonic() + drain_timeout
    while state.in_flight and time.monotonic() < deadline:
        socketio.sleep(0.05)
    return count


def _is_open(listener) -> bool:
    try:
        return listener.fileno() != -1
    except OSError:
        return False
