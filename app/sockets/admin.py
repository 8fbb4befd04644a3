"""Namespace ``/admin``: the moderators' console, for admins only.

An admin's connection is accepted at connect and then re-checked on every
event (``moderation.check_admin``): rights taken away while the console is
open take effect at the next event. Pushes: ``stats`` every few seconds from
one background task per process, and ``audit`` entries as they are written.
"""
from __future__ import annotations

import dataclasses
import logging

from flask import current_app, request
# python-socketio's ConnectionRefusedError, not the builtin of the same name:
# only its arguments reach the client's ``connect_error`` as ``data``.
from flask_socketio import ConnectionRefusedError, Namespace, join_room

from .. import bus, events, schemas
from ..extensions import db, socketio
from ..services import Actor, audit, bots, moderation, stats
from .connections import Connection, Registry, registry
from .edge import acked
from .tokenauth import close_at_expiry, connecting_user

log = logging.getLogger(__name__)

# Every few seconds: often enough for a live chart, rarely enough that the
# figures' queries (a count of messages, a few index look-ups) cost nothing.
STATS_PUSH_SECONDS = 2.0

# This process's admin connections: the stats push goes to them only, since
# every process pushes its own (a broadcast would reach each admin once per
# process).
LOCAL_ADMINS = f"admins@{bus.PROCESS_ID}"

admins = Registry()


def _still_admin(connection: Connection) -> None:
    moderation.check_admin(connection.actor, connection.session_token)


def admin_event(schema):
    """``acked`` for ``/admin``: the caller must still be an admin, checked before anything else."""
    return acked(schema, connections=admins, authorize=_still_admin)


class AdminNamespace(Namespace):
    def on_connect(self, auth=None):
        """An admin's console (or an admin bot) connects with its session cookie or a token.

        Refused (``connect_error`` with ``data.code``) when signed out,
        banned, or not an admin. The first admin of a process starts its
        stats push.
        """
        try:
            user, token_expires = connecting_user(auth)
            if not user.is_authenticated:
                raise ConnectionRefusedError("not signed in", {"code": "unauthenticated"})
            if user.is_banned():
                raise ConnectionRefusedError("this account is banned", {"code": "forbidden"})
            if not user.is_admin:
                raise ConnectionRefusedError("admins only", {"code": "forbidden"})
            current_app.extensions["parley_start"]()
            admins.add(Connection(request.sid, Actor.of(user), user.login_session.token))
            join_room(LOCAL_ADMINS)
            stats_push.ensure_running(current_app._get_current_object())
            if token_expires is not None:
                close_at_expiry(admins, request.sid, self.namespace, token_expires)
            log.info("admin console connected user=%s", user.id)
        finally:
            db.session.remove()

    def on_disconnect(self, reason=None):
        admins.remove(request.sid)

    def trigger_event(self, event, *args):
        # "user:kick" is handled by on_user_kick; an unknown event still
        # answers its ack.
        name = (event or "").replace(":", "_")
        # As on /public: "connect" and "disconnect" from a connected client
        # are events it sent, not the connection's lifecycle.
        reserved = name in ("connect", "disconnect") and self.server.manager.is_connected(
            args[0], self.namespace)
        if reserved or not hasattr(self, "on_" + name):
            return {"ok": False, "error": {"code": "not_found",
                                           "message": f"unknown event {event[:64]!r}"}}
        return super().trigger_event(name, *args)

    @admin_event(schemas.Empty)
    def on_stats(self, connection, payload):
        """``stats``: connections, users online, rooms, messages, and per-worker connections."""
        return stats.snapshot()

    @admin_event(schemas.UserSearch)
    def on_users_list(self, connection, payload):
        """``users:list``: users whose name contains ``query``, with online, admin and ban state."""
        return {"users": moderation.list_users(payload.query, payload.limit)}

    @admin_event(schemas.UserKick)
    def on_user_kick(self, connection, payload):
        """``user:kick``: the user's chat connections get ``kicked`` and close, on every process."""
        return {"disconnected": moderation.kick(connection.actor, payload.user, payload.reason)}

    @admin_event(schemas.UserBan)
    def on_user_ban(self, connection, payload):
        """``user:ban``: as a kick, and the user cannot sign in or connect until the ban ends."""
        user, closed = moderation.ban(connection.actor, payload.user, payload.reason,
                                      payload.minutes)
        return {"user": user, "disconnected": closed}

    @admin_event(schemas.UserRef)
    def on_user_unban(self, connection, payload):
        """``user:unban``: the user may sign in again."""
        return {"user": moderation.unban(connection.actor, payload.user)}

    @admin_event(schemas.UserRef)
    def on_user_promote(self, connection, payload):
        """``user:promote``: the user becomes an admin."""
        return {"user": moderation.set_admin(connection.actor, payload.user, True)}

    @admin_event(schemas.UserRef)
    def on_user_demote(self, connection, payload):
        """``user:demote``: the user stops being an admin; their consoles are closed."""
        return {"user": moderation.set_admin(connection.actor, payload.user, False)}

    @admin_event(schemas.RoomSearch)
    def on_rooms_list(self, connection, payload):
        """``rooms:list``: every room with its member and message counts."""
        return {"rooms": moderation.list_rooms(payload.query)}

    @admin_event(schemas.RoomArchive)
    def on_room_archive(self, connection, payload):
        """``room:archive``: the room turns read-only (or writable with ``archived: false``).

        Its joined ``/public`` connections get ``room:archived``.
        """
        return {"room": moderation.archive_room(connection.actor, payload.room,
                                                payload.archived)}

    @admin_event(schemas.RecentMessages)
    def on_messages_recent(self, connection, payload):
        """``messages:recent``: the latest live messages of any room, ascending, to moderate."""
        page, has_more = moderation.recent_messages(payload.room, before=payload.before,
                                                    limit=payload.limit)
        return {"messages": page, "has_more": has_more}

    @admin_event(schemas.MessageRef)
    def on_message_delete(self, connection, payload):
        """``message:delete``: any message; the room's members get ``message:deleted``."""
        moderation.delete_message(connection.actor, payload.id)

    @admin_event(schemas.Announce)
    def on_announce(self, connection, payload):
        """``announce``: ``/public`` clients (all, or the room's) get ``announcement``."""
        return {"announcement": moderation.announce(connection.actor, payload.body,
                                                    payload.room)}

    @admin_event(schemas.Empty)
    def on_bots_list(self, connection, payload):
        """``bots:list``: every bot with whether its key is live."""
        return {"bots": bots.list_bots()}

    @admin_event(schemas.BotCreate)
    def on_bot_create(self, connection, payload):
        """``bot:create``: a new bot user; the ack carries its key, shown this once."""
        bot, key = bots.create_bot(connection.actor, payload.name, is_admin=payload.admin)
        return {"bot": bot, "key": key}

    @admin_event(schemas.BotRef)
    def on_bot_rotate(self, connection, payload):
        """``bot:rotate``: a new key (in the ack, once); the old key and its tokens stop working."""
        bot, key = bots.rotate_key(connection.actor, payload.bot)
        return {"bot": bot, "key": key}

    @admin_event(schemas.BotRef)
    def on_bot_revoke(self, connection, payload):
        """``bot:revoke``: the key and every token of the bot stop working."""
        return {"bot": bots.revoke_key(connection.actor, payload.bot)}

    @admin_event(schemas.AuditHistory)
    def on_audit_list(self, connection, payload):
        """``audit:list``: the newest audit entries before ``before``, ascending by id."""
        entries, has_more = audit.history(before=payload.before, limit=payload.limit)
        return {"entries": entries, "has_more": has_more}


class StatsPush:
    """This process's one background task pushing ``stats`` to its admins.

    It runs while at least one admin is connected here and ends after the
    last one leaves; the next admin to connect starts it again.
    """

    def __init__(self):
        self.running = False

    def ensure_running(self, app) -> None:
        if self.running:
            return
        self.running = True
        socketio.start_background_task(self._run, app)

    def _run(self, app) -> None:
        try:
            while len(admins):
                socketio.sleep(STATS_PUSH_SECONDS)
                self.push_once(app)
        finally:
            self.running = False

    def push_once(self, app) -> None:
        """Close consoles whose rights lapsed, then push the figures to the others."""
        with app.app_context():
            try:
                close_lapsed_consoles()
                if len(admins):
                    events.stats(stats.snapshot(), LOCAL_ADMINS)
            except Exception:
                log.exception("stats push failed")
            finally:
                db.session.remove()


stats_push = StatsPush()


def close_lapsed_consoles() -> int:
    """Disconnect this process's consoles whose admin signed out, was demoted or banned.

    Demotion closes consoles at once through the bus; this sweep also covers
    rights taken away elsewhere (a sign-out, the database), so pushes stop
    within one stats period.
    """
    connections = [admins.get(sid) for sid in admins.sids()]
    live = moderation.live_admin_sessions({c.session_token for c in connections if c})
    lapsed = [c for c in connections if c and c.session_token not in live]
    for connection in lapsed:
        socketio.server.disconnect(connection.sid, namespace=events.ADMIN)
    return len(lapsed)


@bus.handler("admin:close")
def _close_consoles(payload: dict) -> int:
    """A user lost admin rights: close their consoles in this process."""
    targets = admins.of_user(payload["user_id"])
    for connection in targets:
        socketio.server.disconnect(connection.sid, namespace=events.ADMIN)
    return len(targets)


@bus.handler("archived")
def _update_cached_room(payload: dict) -> None:
    """A room was archived or reopened: correct what this process's chat connections cached.

    ``/public`` connections keep the ``RoomRef`` of each room they joined so
    a send needs no query; its ``archived`` flag must follow the room.
    """
    slug, archived = payload["room"], payload["archived"]
    for sid in registry.sids():
        connection = registry.get(sid)
        cached = connection.rooms.get(slug) if connection else None
        if cached is not None and cached.archived != archived:
            connection.rooms[slug] = dataclasses.replace(cached, archived=archived)
