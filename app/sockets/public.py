"""Namespace ``/public``: the group chat, for every signed-in user."""
from __future__ import annotations

import logging
import time

from flask import current_app, request
# python-socketio's ConnectionRefusedError, not the builtin of the same name:
# only its arguments reach the client's connect_error (data.code).
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room

from .. import bus, events, schemas
from ..extensions import db, socketio
from ..services import Actor, messages, rooms
from ..services.presence import store as presence
from ..services.ratelimit import report
from .connections import Connection, registry
from .edge import acked
from .tokenauth import close_at_expiry, connecting_user

log = logging.getLogger(__name__)

# Offline pushes still waiting out their grace period (see ``settle_presence``).
_pending_offline: set[object] = set()


class PublicNamespace(Namespace):
    def on_connect(self, auth=None):
        """A browser or client connects with its session cookie, or an
        access token in ``auth={"token"}`` (see ``tokenauth``).

        Refused (the client gets ``connect_error`` with ``data.code``) without
        a live session or for a banned user. The connection joins its user's
        private channel, for pushes such as ``room:added``.
        """
        try:
            user, token_expires = connecting_user(auth)
            if not user.is_authenticated:
                raise ConnectionRefusedError("not signed in", {"code": "unauthenticated"})
            if user.is_banned():
                raise ConnectionRefusedError("this account is banned", {"code": "forbidden"})
            address = request.remote_addr or ""
            _check_connection_caps(user, address)
            current_app.extensions["parley_start"]()
            registry.add(Connection(request.sid, Actor.of(user),
                                    user.login_session.token, address=address))
            presence.connected(user.id)
            join_room(events.user_channel(user.id))
            if token_expires is not None:
                close_at_expiry(registry, request.sid, self.namespace, token_expires)
        finally:
            db.session.remove()

    def on_disconnect(self, reason=None):
        """Presence goes offline in each joined room after the grace period."""
        connection = registry.remove(request.sid)
        if connection is None:
            return
        presence.disconnected(connection.actor.id)
        for slug in connection.rooms:
            if presence.left(slug, connection.actor.id):
                socketio.start_background_task(
                    _offline_after_grace, current_app._get_current_object(), slug,
                    connection.actor, current_app.config["PRESENCE_GRACE_SECONDS"])

    def trigger_event(self, event, *args):
        # Events are named "room:join"; their handlers on_room_join. An event
        # with no handler still answers its ack, instead of leaving the
        # client waiting. A name that is not text (a client may send any
        # JSON) names no handler.
        name = event.replace(":", "_") if isinstance(event, str) else ""
        # "connect" and "disconnect" come from python-socketio while the
        # connection is half-open or half-closed; a connected client sending
        # an event of that name must not re-register or unregister itself.
        reserved = name in ("connect", "disconnect") and self.server.manager.is_connected(
            args[0], self.namespace)
        if reserved or not hasattr(self, "on_" + name):
            return {"ok": False, "error": {"code": "not_found",
                                           "message": f"unknown event {str(event)[:64]!r}"}}
        return super().trigger_event(name, *args)

    @acked(schemas.Empty)
    def on_rooms_list(self, connection, payload):
        """``rooms:list`` from a client; the ack lists public rooms and the caller's private ones."""
        return {"rooms": rooms.list_rooms(connection.actor)}

    @acked(schemas.RoomCreate)
    def on_room_create(self, connection, payload):
        """``room:create``: the creator owns the room and is its member (not joined)."""
        return {"room": rooms.create_room(connection.actor, payload.name, payload.topic,
                                          payload.private)}

    @acked(schemas.RoomJoin)
    def on_room_join(self, connection, payload):
        """``room:join``: this connection receives the room's events from now on.

        Every connection in the room, this one included, gets ``presence``
        (online). The ack carries the catch-up page after ``since`` or the
        latest page.
        """
        actor = connection.actor
        room = rooms.join(actor, payload.room)
        if room.slug not in connection.rooms:
            join_room(events.room_channel(room.slug))
            connection.rooms[room.slug] = room
            presence.joined(room.slug, actor.id)
        reply = rooms.join_reply(actor, room, presence.online(room.slug),
                                 payload.since, payload.limit)
        events.presence(room.slug, actor.to_public(), True)
        return reply

    @acked(schemas.RoomRef)
    def on_room_leave(self, connection, payload):
        """``room:leave``: membership ends; every connection of the caller stops receiving the room."""
        rooms.leave_room(connection.actor, payload.room)

    @acked(schemas.RoomInvite)
    def on_room_invite(self, connection, payload):
        """``room:invite``: the invitee becomes a member and their connections get ``room:added``."""
        rooms.invite(connection.actor, payload.room, payload.user)

    @acked(schemas.MessageSend)
    def on_message_send(self, connection, payload):
        """``message:send``: acked after commit; then every joined connection gets ``message``."""
        room = connection.rooms.get(payload.room) or rooms.member_room(connection.actor,
                                                                       payload.room)
        return {"message": messages.send(connection.actor, room, payload.body,
                                         payload.client_id)}

    @acked(schemas.MessageHistory)
    def on_message_history(self, connection, payload):
        """``message:history``: a page before or after an id, ascending."""
        page, has_more = messages.history(connection.actor, payload.room,
                                          before=payload.before, after=payload.after,
                                          limit=payload.limit)
        return {"messages": page, "has_more": has_more}

    @acked(schemas.MessageEdit)
    def on_message_edit(self, connection, payload):
        """``message:edit`` by the author; the room gets ``message:updated``."""
        return {"message": messages.edit(connection.actor, payload.id, payload.body)}

    @acked(schemas.MessageRef)
    def on_message_delete(self, connection, payload):
        """``message:delete`` by the author, room owner or an admin; the room gets ``message:deleted``."""
        messages.delete(connection.actor, payload.id)

    @acked(schemas.RoomRead)
    def on_room_read(self, connection, payload):
        """``room:read``: moves the caller's read marker; the ack has the unread count left."""
        return {"unread": rooms.mark_read(connection.actor, payload.room,
                                          payload.last_read_id)}

    @acked(schemas.DmOpen)
    def on_dm_open(self, connection, payload):
        """``dm:open``: the two-person room, created once; the other user gets ``room:added``."""
        return {"room": rooms.open_dm(connection.actor, payload.user)}

    def on_typing(self, *args):
        """``typing`` (no ack): to the room's other members' connections, if this one joined it."""
        connection = registry.get(request.sid)
        try:
            payload = schemas.parse(schemas.Typing, args[0] if args else None)
        except Exception:
            return None  # typing is best-effort and has no ack to carry an error
        if connection is None or payload.room not in connection.rooms:
            return None
        own = [c.sid for c in registry.of_user(connection.actor.id)]
        events.typing(payload.room, connection.actor.to_public(), payload.typing, own)
        return None


# A refused connection has no window to wait out: a live one must close first.
# Socket.IO clients retry with backoff; this tells them not to hurry.
CONNECTION_CAP_RETRY_AFTER = 10.0


def _check_connection_caps(user, address: str) -> None:
    """Refuse a connection past the per-user or per-address cap (this process's count)."""
    cfg = current_app.config
    for rule, limit, count, key in (
        ("connect_user", cfg["MAX_CONNECTIONS_PER_USER"],
         registry.count_of_user(user.id), user.username),
        ("connect_address", cfg["MAX_CONNECTIONS_PER_ADDRESS"],
         registry.count_of_address(address), address),
    ):
        if limit and count >= limit:
            log.info("connection refused: %s cap of %s reached", rule, limit)
            report(rule, key, f"{count} live connections; the cap is {limit}")
            raise ConnectionRefusedError(
                f"too many connections (at most {limit}); close one and retry",
                {"code": "rate_limited", "retry_after": CONNECTION_CAP_RETRY_AFTER})


def _offline_after_grace(app, slug: str, actor: Actor, grace: float) -> None:
    token = object()
    _pending_offline.add(token)
    try:
        socketio.sleep(grace)
        if not presence.is_online(slug, actor.id):
            with app.app_context():
                events.presence(slug, actor.to_public(), False)
    finally:
        _pending_offline.discard(token)


def settle_presence(timeout: float) -> None:
    """Wait until every pending offline push has been sent (or ``timeout``).

    The tests call this between tests so that one test's offline pushes
    never reach the next test's clients.
    """
    socketio.sleep(0)  # let timers just started register themselves
    deadline = time.monotonic() + timeout
    while _pending_offline and time.monotonic() < deadline:
        socketio.sleep(0.01)


@bus.handler("close")
def _close_connections(payload: dict) -> int:
    """Sign-out, kick and ban: close the matching connections of this process.

    Returns how many it closed (``bus.gather`` adds the processes up).
    """
    if "session" in payload:
        targets = registry.of_session(payload["session"])
    else:
        targets = registry.of_user(payload["user_id"])
    for connection in targets:
        if payload.get("kicked"):
            socketio.emit("kicked", {"reason": payload.get("reason") or ""},
                          namespace=events.PUBLIC, to=connection.sid)
        socketio.server.disconnect(connection.sid, namespace=events.PUBLIC)
    return len(targets)


@bus.handler("left")
def _forget_room(payload: dict) -> None:
    """A member left a room: none of their connections here receive it any more."""
    user_id, slug = payload["user_id"], payload["room"]
    for connection in registry.of_user(user_id):
        if connection.rooms.pop(slug, None) is not None:
            socketio.server.leave_room(connection.sid, events.room_channel(slug),
                                       namespace=events.PUBLIC)
            if presence.left(slug, user_id) and not presence.is_online(slug, user_id):
                events.presence(slug, connection.actor.to_public(), False)


def ask_clients_to_catch_up() -> None:
    """After a message-queue outage: drop this process's Engine.IO connections.

    Events broadcast while Redis was away never reached them. The transport
    is cut without a goodbye (``abort``): a namespace disconnect or an
    Engine.IO close packet tells clients the server meant it and they stay
    away, while a lost transport makes every client reconnect on its own and
    catch up with ``room:join`` ``since``.
    """
    for eio_socket in list(socketio.server.eio.sockets.values()):
        eio_socket.close(wait=False, abort=True)
