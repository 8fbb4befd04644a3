"""The socket edge: payload in, ack out, errors as values.

Every acked event goes through ``acked``: it validates the payload with the
event's schema, runs the handler, and turns the outcome into the contract's
ack. No exception escapes to python-socketio, so bad input never kills the
connection, and the database session is always returned to the pool
(Flask's teardown does not run for socket events).
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Callable

from flask import request
from flask.sessions import SecureCookieSessionInterface

from .. import metrics
from ..errors import DomainError, Unauthenticated
from ..extensions import db
from ..schemas import parse
from ..services.connections import Connection, Registry, live

log = logging.getLogger(__name__)

INTERNAL = {"ok": False, "error": {"code": "internal", "message": "internal error"}}


def acked(schema, *, connections: Registry = live.public,
          authorize: Callable[[Connection], None] | None = None) -> Callable:
    """Decorate ``on_<event>(self, connection, payload)``; the return value is the ack.

    ``connections`` is the namespace's registry: ``/public`` by default, the
    admin namespace passes its own. ``authorize``, when given, runs before the
    payload is even parsed and raises to refuse (the admin namespace re-checks
    the caller's rights on every event).
    """
    def decorate(handler):
        # on_room_join handles "room:join" (the metrics' label).
        event = handler.__name__.removeprefix("on_").replace("_", ":")

        @functools.wraps(handler)
        def on_event(self, *args):
            started = time.perf_counter()
            code, result = "ok", None
            try:
                connection = connections.get(request.sid)
                if connection is None:
                    raise Unauthenticated("this connection is not signed in")
                if authorize is not None:
                    authorize(connection)
                payload = parse(schema, args[0] if args else None)
                result = handler(self, connection, payload)
                return {"ok": True, **(result or {})}
            except DomainError as exc:
                db.session.rollback()
                code = exc.code
                return exc.to_ack()
            except Exception:
                db.session.rollback()
                code = "internal"
                log.exception("%s failed (sid=%s)", handler.__name__, request.sid)
                return INTERNAL
            finally:
                db.session.remove()
                metrics.socket_event(getattr(self, "namespace", ""), event, code,
                                     time.perf_counter() - started, result)
        on_event.schema = schema
        return on_event
    return decorate


class ConnectionSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but a socket event reuses its connection's.

    Flask-SocketIO runs every event in a request context built from the
    connection's WSGI environ; pushing that context makes Flask decode and
    verify the session cookie again, and Flask-SocketIO then replaces the
    result with the copy it keeps for the connection (``saved_session``, taken
    at connect). Returning that copy directly gives the event the very same
    session without the HMAC check and JSON decode: about a tenth of the
    worker's CPU in the chat benchmark. HTTP requests, and a connection's
    first event, have no saved copy and open the cookie as usual.
    """

    def open_session(self, app, request):
        saved = request.environ.get("saved_session")
        if saved is not None:
            return saved
        if request.environ.get("PATH_INFO", "").startswith("/socket.io"):
            # A socket connection's first event (its environ is the Engine.IO
            # handshake's; no Flask route serves that path): a cookie seen
            # within SESSION_CACHE_SECONDS is not decoded again.
            from .sessioncache import decoded_session

            return decoded_session(app, request, super().open_session)
        return super().open_session(app, request)
