"""Socket.IO connections that authenticate with an access token.

A client passes ``auth={"token": ACCESS_TOKEN}`` when it connects (the
Socket.IO ``auth`` payload). The token is checked as the REST API checks a
bearer token, and then every rule of a cookie connection applies (bans,
connection caps, admin rights on ``/admin``).

The Origin rule does not apply to such a client: it exists to stop another
site's page from riding on the browser's cookie, and a token is no ambient
credential. See ``origin_allowed``.

When the token expires, the server sends ``token:expired`` ``{"reason"}``
to that connection and then disconnects it (a namespace disconnect, so the
official clients do not reconnect on their own with the stale token): the
client refreshes its token and connects again, catching up with
``room:join`` ``since``.
"""
from __future__ import annotations

import time
from flask_login import current_user
from flask_socketio import ConnectionRefusedError

from ..errors import DomainError, Forbidden
from ..extensions import socketio
from ..services import tokens

EXPIRED_EVENT = "token:expired"
EXPIRED_REASON = "the access token expired; refresh it and connect again"


def connecting_user(auth, *, cached: bool = False) -> tuple[object, float | None]:
    """Who is connecting, and when their token expires (None for a cookie).

    With ``auth={"token": ...}`` the token decides, whatever cookie the
    request carries; otherwise the session cookie does (``current_user``,
    perhaps anonymous). A bad token is refused here, with ``data.code``
    ``unauthenticated`` and ``data.error`` ``invalid_token``. With ``cached``
    (``/public``) a cookie's user may come from ``sessioncache``.
    """
    if not (isinstance(auth, dict) and "token" in auth):
        if cached:
            from .sessioncache import cookie_user

            return cookie_user(), None
        return current_user, None
    try:
        user, claims = tokens.authenticate_access_token(auth["token"])
    except Forbidden:
        raise ConnectionRefusedError("this account is banned", {"code": "forbidden"}) from None
    except DomainError as exc:
        raise ConnectionRefusedError(exc.message, {"code": "unauthenticated",
                                                   "error": "invalid_token"}) from None
    return user, float(claims["exp"])


def close_at_expiry(connections, sid: str, namespace: str, expires_at: float) -> None:
    """Disconnect ``sid`` when its token expires, unless it has gone by then.

    One sleeping greenlet per token connection: it costs a few KB and no CPU
    until it wakes.
    """
    connection = connections.get(sid)
    socketio.start_background_task(_expire, connections, connection, namespace, expires_at)


def _expire(connections, connection, namespace: str, expires_at: float) -> None:
    socketio.sleep(max(0.0, expires_at - time.time()))
    if connection is None or connections.get(connection.sid) is not connection:
        return
    socketio.emit(EXPIRED_EVENT, {"reason": EXPIRED_REASON}, namespace=namespace,
                  to=connection.sid)
    socketio.server.disconnect(connection.sid, namespace=namespace)


# -- the Origin check ----------------------------------------------------------

def origin_policy(configured: list[str] | None):
    """python-engineio's ``cors_allowed_origins`` as a callable.

    Engine.IO checks the Origin of every request (handshake included) before
    the application sees it, so it cannot know whether the client will
    authenticate with a token. What it can see is whether the request carries
    a cookie: without one nothing ambient can authenticate it, only a token
    in the ``auth`` payload, so any Origin is let through. A request with a
    cookie must come from the site itself (or ``CORS_ALLOWED_ORIGINS``), as
    before. python-socketio sends no Origin at all unless told to.
    """
    def allowed(origin: str | None, environ: dict) -> bool:
        if not environ.get("HTTP_COOKIE"):
            return True
        if configured is not None:
            return origin in configured
        return origin in _own_origins(environ)
    return allowed


def _own_origins(environ: dict) -> list[str]:
    """The page's own origin, as python-engineio computes it for ``None``."""
    host = environ.get("HTTP_HOST")
    if not host:
        return []
    scheme = environ.get("wsgi.url_scheme", "http")
    origins = [f"{scheme}://{host}"]
    # Behind a proxy (ProxyFix has already rewritten these when trusted).
    forwarded_proto = environ.get("HTTP_X_FORWARDED_PROTO")
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST")
    if forwarded_proto or forwarded_host:
        origins.append("{}://{}".format((forwarded_proto or scheme).split(",")[0].strip(),
                                        (forwarded_host or host).split(",")[0].strip()))
    return origins

