"""Namespace ``/public``: the group chat, for every signed-in user."""
from __future__ import annotations

import logging

from flask import current_app, request
from flask_socketio import join_room

from .. import events, schemas
from ..services import Actor, mentions, messages, moderation, reactions, rooms, search, users
from ..services.connections import Connection, live
from ..errors import Invalid
from ..services.ratelimit import limits
from .base import ChatNamespace
from .edge import acked

log = logging.getLogger(__name__)


PRESENCE_MODES = ("each", "batched")


def presence_mode(auth) -> str:
    """How a connection hears presence: ``auth={"presence": "batched"}`` opts into
    ``presence:batch``; absent (or ``"each"``) keeps one ``presence`` per change.
    Any other value refuses the connection (``invalid``, ``field`` ``presence``)."""
    mode = auth.get("presence", "each") if isinstance(auth, dict) else "each"
    if mode not in PRESENCE_MODES:
        raise Invalid('auth "presence" must be "batched" or "each"', field="presence")
    return mode


class PublicNamespace(ChatNamespace):
    registry = live.public
    cached_sessions = True

    def admit(self, user, auth) -> None:
        """A signed-in user's connection (refusal rules in ``ChatNamespace.on_connect``).

        Past the per-user or per-address connection cap it is refused with
        ``rate_limited``. The connection joins its user's private channel,
        for pushes such as ``room:added``.
        """
        address = request.remote_addr or ""
        batched = presence_mode(auth) == "batched"
        live.check_caps(user.id, user.username, address)
        current_app.extensions["parley_start"]()
        live.connected(Connection(request.sid, Actor.of(user), user.login_session.token,
                                  address=address, batched_presence=batched))
        join_room(events.user_channel(user.id))

    def on_disconnect(self, reason=None):
        """Presence goes offline in each joined room after the grace period."""
        live.disconnected(request.sid)

    @acked(schemas.Empty)
    def on_rooms_list(self, connection, payload):
        """``rooms:list`` from a client; the ack lists public rooms and the caller's private ones."""
        return {"rooms": rooms.list_rooms(connection.actor)}

    @acked(schemas.Empty)
    def on_announcements_list(self, connection, payload):
        """``announcements:list``: the announcements still current for the caller, newest last.

        The chat UI asks on every connect, so an announcement made while it
        was away (or before a reload) still shows.
        """
        return {"announcements": moderation.current_announcements(connection.actor.id)}

    @acked(schemas.RoomCreate)
    def on_room_create(self, connection, payload):
        """``room:create``: the creator owns the room and is its member (not joined)."""
        return {"room": rooms.create_room(connection.actor, payload.name, payload.topic,
                                          payload.private)}

    @acked(schemas.RoomJoin)
    def on_room_join(self, connection, payload):
        """``room:join``: this connection receives the room's events from now on.

        When the caller was not yet online in the room anywhere (their first
        connection joins it), every connection in the room, this one
        included, gets ``presence`` (online); a repeated join or a second
        tab changes nothing and repeats nothing. The ack carries the
        catch-up page after ``since``, the changes after ``cursor``, or the
        latest page; who is online; and the room's cursor. The connection is
        subscribed before the page is read, so nothing falls between the two
        (what arrives twice carries a cursor already seen). Counted by the
        heavy-read limit (``rate_limited``).
        """
        actor = connection.actor
        limits.hit("heavy_read", actor.id, actor.username)
        room = rooms.join(actor, payload.room)
        joined_now, came_online = live.joined(connection, room)
        if joined_now:
            join_room(events.room_channel(room.slug))
            join_room(events.presence_channel(room.slug, connection.batched_presence))
        reply = rooms.join_reply(actor, room, live.presence.online(room.slug),
                                 payload.since, payload.limit, payload.cursor,
                                 payload.members_limit)
        if came_online:
            events.presence(room.slug, actor.to_public(), True)
        return reply

    @acked(schemas.RoomMembers)
    def on_room_members(self, connection, payload):
        """``room:members``: a page of the room's members (or of those online), by
        username after ``after``; for a client that joined with ``members_limit``
        (heavy-read limit)."""
        limits.hit("heavy_read", connection.actor.id, connection.actor.username)
        return rooms.members_page(connection.actor, payload.room,
                                  live.presence.online(payload.room), payload.after,
                                  payload.online, payload.limit)

    @acked(schemas.RoomRef)
    def on_room_leave(self, connection, payload):
        """``room:leave``: membership ends; every connection of the caller stops receiving the room."""
        rooms.leave_room(connection.actor, payload.room)

    @acked(schemas.RoomInvite)
    def on_room_invite(self, connection, payload):
        """``room:invite``: the invitee becomes a member and their connections get ``room:added``."""
        rooms.invite(connection.actor, payload.room, payload.user)

    @acked(schemas.RoomRemove)
    def on_room_remove(self, connection, payload):
        """``room:remove`` by the owner or an admin: the member's connections stop
        receiving the room and get ``room:removed``; the room gets ``member:removed``
        with ``by``."""
        rooms.remove_member(connection.actor, payload.room, payload.user)

    @acked(schemas.RoomRef)
    def on_room_delete(self, connection, payload):
        """``room:delete`` by the owner or an admin: the room, its messages and its log
        are gone; every process forgets it and its members (everyone, for a public
        room) get ``room:deleted``."""
        rooms.delete_room(connection.actor, payload.room)

    @acked(schemas.MessageSend)
    def on_message_send(self, connection, payload):
        """``message:send``: acked after commit; then every joined connection gets ``message``,
        and each member it mentions (``@name``, ``@room``) gets ``mention`` on every
        connection of theirs, joined to the room or not (unless their level is ``none``).

        With ``reply_to`` the message answers another of the room, and carries its quote.
        """
        room = connection.rooms.get(payload.room) or rooms.member_room(connection.actor,
                                                                       payload.room)
        return {"message": messages.send(connection.actor, room, payload.body,
                                         payload.client_id, payload.reply_to)}

    @acked(schemas.MessageHistory)
    def on_message_history(self, connection, payload):
        """``message:history``: a page before, after or around an id, ascending, or the
        changes after a cursor (heavy-read limit)."""
        limits.hit("heavy_read", connection.actor.id, connection.actor.username)
        return messages.history_reply(connection.actor, payload.room, before=payload.before,
                                      after=payload.after, cursor=payload.cursor,
                                      around=payload.around, limit=payload.limit)

    @acked(schemas.MessageSearch)
    def on_message_search(self, connection, payload):
        """``message:search``: a page of the messages the caller may read that hold
        every word of ``query``, with snippets; only the caller gets the ack (search limit)."""
        return search.search(connection.actor, payload.query, room=payload.room,
                             author=payload.author, before=payload.before, after=payload.after,
                             order=payload.order, cursor=payload.cursor, limit=payload.limit)

    @acked(schemas.RoomUpdate)
    def on_room_update(self, connection, payload):
        """``room:update`` by the owner or an admin; the room gets ``room:updated``."""
        return {"room": rooms.update_room(connection.actor, payload.room, payload.name,
                                          payload.topic)}

    @acked(schemas.MessageEdit)
    def on_message_edit(self, connection, payload):
        """``message:edit`` by the author; the room gets ``message:updated``."""
        return {"message": messages.edit(connection.actor, payload.id, payload.body)}

    @acked(schemas.MessageRef)
    def on_message_delete(self, connection, payload):
        """``message:delete`` by the author, room owner or an admin; the room gets ``message:deleted``."""
        messages.delete(connection.actor, payload.id)

    @acked(schemas.ReactionChange)
    def on_reaction_add(self, connection, payload):
        """``reaction:add`` by a member; the room gets ``reaction:updated`` (unless it was
        already given: then nothing)."""
        reactions.add(connection.actor, payload.id, payload.emoji)

    @acked(schemas.ReactionChange)
    def on_reaction_remove(self, connection, payload):
        """``reaction:remove`` of the caller's own reaction; the room gets ``reaction:updated``
        (unless there was none: then nothing)."""
        reactions.remove(connection.actor, payload.id, payload.emoji)

    @acked(schemas.RoomRead)
    def on_room_read(self, connection, payload):
        """``room:read``: moves the caller's read marker; the ack has the unread count left."""
        return rooms.mark_read(connection.actor, payload.room, payload.last_read_id)

    @acked(schemas.RoomNotify)
    def on_room_notify(self, connection, payload):
        """``room:notify`` ``{"room", "level"}``: the caller's notification level for a
        room they belong to; acked ``{"room", "notify"}``, and their own
        connections (this one included) get ``room:notify`` with the same."""
        return mentions.set_level(connection.actor, payload.room, payload.level)

    @acked(schemas.DmOpen)
    def on_dm_open(self, connection, payload):
        """``dm:open``: the two-person room, created once; the other user gets ``room:added``."""
        return {"room": rooms.open_dm(connection.actor, payload.user)}

    @acked(schemas.UserLookup)
    def on_users_search(self, connection, payload):
        """``users:search``: users whose name starts with ``query``, to complete a username."""
        limits.hit("user_search", connection.actor.id, connection.actor.username)
        return {"users": users.search(payload.query, payload.limit)}

    def on_typing(self, *args):
        """``typing`` (no ack): to the room's other members' connections, if this one joined it.

        Only changes of state, and one "true" per user and room every
        ``TYPING_INTERVAL_SECONDS`` (``live.typing``, app/services/typists.py).
        """
        connection = live.public.get(request.sid)
        try:
            payload = schemas.parse(schemas.Typing, args[0] if args else None)
        except Exception:
            return None  # typing is best-effort and has no ack to carry an error
        if connection is None or payload.room not in connection.rooms:
            return None
        if not live.typing.passes(connection.actor.id, payload.room, payload.typing,
                                  current_app.config["TYPING_INTERVAL_SECONDS"]):
            return None
        own = [c.sid for c in live.public.of_user(connection.actor.id)]
        events.typing(payload.room, connection.actor.to_public(), payload.typing, own)
        return None
