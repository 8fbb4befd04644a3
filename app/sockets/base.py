"""What both namespaces share: connect checks, event dispatch, error acks.

``/public`` and ``/admin`` differ in who may connect and which events they
answer; how a connection is admitted or refused, how an event name finds its
handler, and how a handler's outcome becomes the contract's ack are written
once, here and in ``edge.acked``.
"""
from __future__ import annotations

import logging

from flask import request
# python-socketio's ConnectionRefusedError, not the builtin of the same name:
# only its arguments reach the client's ``connect_error`` as ``data``.
from flask_socketio import ConnectionRefusedError, Namespace

from ..errors import DomainError, Unauthenticated
from ..extensions import db
from ..services import users
from ..services.connections import Registry
from .tokenauth import close_at_expiry, connecting_user

log = logging.getLogger(__name__)

# The longest event name quoted back in an "unknown event" error.
_NAME_ECHO = 64


def refusal(exc: DomainError) -> ConnectionRefusedError:
    """The ``connect_error`` for a refused connection: ``message`` and ``data.code``."""
    data: dict = {"code": exc.code}
    if exc.retry_after is not None:
        data["retry_after"] = exc.retry_after
    return ConnectionRefusedError(exc.message, data)


class ChatNamespace(Namespace):
    """A namespace whose events are named ``area:verb`` and handled by ``on_area_verb``.

    Subclasses set ``registry`` (their live connections), implement
    ``admit(user, auth)`` (raise a ``DomainError`` to refuse; register the
    connection) and their ``on_<event>`` handlers, decorated with
    ``edge.acked``.
    """

    registry: Registry
    # Whether a cookie's user may come from ``sessioncache`` (``/public``).
    cached_sessions = False

    def on_connect(self, auth=None):
        """A client connects with its session cookie, or an access token in
        ``auth={"token"}`` (``tokenauth``).

        Refused (``connect_error`` with ``data.code``) when signed out or
        banned (``forbidden``, with ``data.banned``, ``until`` and ``reason``),
        for a bad token (``unauthenticated``, ``data.error`` ``invalid_token``),
        or by ``admit``. A token connection is closed when its token expires.
        The database session is returned to the pool either way (Flask's
        teardown does not run for socket events).
        """
        try:
            user, token_expires = connecting_user(auth, cached=self.cached_sessions)
            if not user.is_authenticated:
                raise Unauthenticated("not signed in")
            if user.is_banned():
                raise ConnectionRefusedError(users.ban_message(user),
                                             {"code": "forbidden", **users.ban_notice(user)})
            self.admit(user, auth)
            if token_expires is not None:
                close_at_expiry(self.registry, request.sid, self.namespace, token_expires)
        except DomainError as exc:
            db.session.rollback()
            raise refusal(exc) from None
        except ConnectionRefusedError:
            raise
        except Exception:
            # Refused, never passed on: Flask-SocketIO calls a connect
            # handler that raises TypeError again *without* ``auth``, which
            # would turn a token (or presence) connect into a cookie one.
            db.session.rollback()
            log.exception("connect to %s failed", self.namespace)
            raise ConnectionRefusedError("internal error", {"code": "internal"}) from None
        finally:
            db.session.remove()

    def trigger_event(self, event, *args):
        # Events are named "room:join" or "user:reset-password"; their
        # handlers on_room_join and on_user_reset_password. An event
        # with no handler still answers its ack, instead of leaving the
        # client waiting. A name that is not text (a client may send any
        # JSON: a number, null, an object) names no handler.
        name = event.replace(":", "_").replace("-", "_") if isinstance(event, str) else ""
        # "connect" and "disconnect" come from python-socketio while the
        # connection is half-open or half-closed; a connected client sending
        # an event of that name must not re-register or unregister itself.
        reserved = name in ("connect", "disconnect") and self.server.manager.is_connected(
            args[0], self.namespace)
        if not name or reserved or not hasattr(self, "on_" + name):
            return {"ok": False, "error": {
                "code": "not_found", "message": f"unknown event {str(event)[:_NAME_ECHO]!r}"}}
        return super().trigger_event(name, *args)
