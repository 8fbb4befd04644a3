"""Namespace ``/admin``: the moderators' console, for admins only.

An admin's connection is accepted at connect and then re-checked on every
event (``moderation.check_admin``): rights taken away while the console is
open take effect at the next event. Pushes: ``stats`` every few seconds from
one background task per process, and ``audit`` entries as they are written.
"""
from __future__ import annotations

import logging

from flask import current_app, request
from flask_socketio import join_room

from .. import schemas
from ..errors import Forbidden
from ..services import Actor, audit, bots, moderation, stats, webhooks
from ..services.connections import LOCAL_ADMINS, Connection, live
from .base import ChatNamespace
from .edge import acked

log = logging.getLogger(__name__)


def _still_admin(connection: Connection) -> None:
    moderation.check_admin(connection.actor, connection.session_token)


def admin_event(schema):
    """``acked`` for ``/admin``: the caller must still be an admin, checked before anything else."""
    return acked(schema, connections=live.admins, authorize=_still_admin)


class AdminNamespace(ChatNamespace):
    registry = live.admins

    def admit(self, user, auth) -> None:
        """An admin's console (refusal rules in ``ChatNamespace.on_connect``); others get ``forbidden``.

        The first admin of a process starts its stats push.
        """
        if not user.is_admin:
            raise Forbidden("admins only")
        current_app.extensions["parley_start"]()
        live.admins.add(Connection(request.sid, Actor.of(user), user.login_session.token))
        join_room(LOCAL_ADMINS)
        live.stats_push.ensure_running(current_app._get_current_object())
        log.info("admin console connected user=%s", user.id)

    def on_disconnect(self, reason=None):
        live.admins.remove(request.sid)

    @admin_event(schemas.Empty)
    def on_invite_create(self, connection, payload):
        """``invite:create``: a single-use sign-up code, shown in the ack only (audited without it)."""
        from ..services import invites

        return {"invite": invites.create_invite(connection.actor.username)}

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
    def on_user_reset_password(self, connection, payload):
        """``user:reset-password``: a one-time temporary password for the user, in the ack only.

        Every session of the user ends and their sockets close; audited.
        """
        return {"user": moderation.reset_password(connection.actor, payload.user)}

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
        """``messages:recent``: the latest live messages of any room, ascending, to moderate.

        A direct message needs ``reason`` and the read is audited (``dm:read``).
        """
        page, has_more = moderation.recent_messages(connection.actor, payload.room,
                                                    before=payload.before,
                                                    limit=payload.limit, reason=payload.reason)
        return {"messages": page, "has_more": has_more}

    @admin_event(schemas.MessageRef)
    def on_message_delete(self, connection, payload):
        """``message:delete``: any message; the room's members get ``message:deleted``."""
        moderation.delete_message(connection.actor, payload.id)

    @admin_event(schemas.Announce)
    def on_announce(self, connection, payload):
        """``announce``: ``/public`` clients (all, or the room's) get ``announcement``."""
        return {"announcement": moderation.announce(connection.actor, payload.body,
                                                    payload.room, payload.minutes)}

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

    @admin_event(schemas.Empty)
    def on_webhooks_list(self, connection, payload):
        """``webhooks:list``: every webhook with its filter, state and pending deliveries."""
        return {"webhooks": webhooks.list_webhooks()}

    @admin_event(schemas.WebhookCreate)
    def on_webhook_create(self, connection, payload):
        """``webhook:create``: a new webhook; the ack carries its secret, shown this once."""
        webhook, secret = webhooks.create_webhook(connection.actor, payload.url, payload.rooms,
                                                  payload.events, payload.active)
        return {"webhook": webhook, "secret": secret}

    @admin_event(schemas.WebhookUpdate)
    def on_webhook_update(self, connection, payload):
        """``webhook:update``: change the fields given; ``rotate_secret`` puts a new secret in the ack."""
        given = payload.model_fields_set
        changes = {name: getattr(payload, name) for name in ("url", "rooms", "events", "active")
                   if name in given and (name == "rooms" or getattr(payload, name) is not None)}
        webhook, secret = webhooks.update_webhook(connection.actor, payload.id,
                                                  rotate_secret=payload.rotate_secret, **changes)
        return {"webhook": webhook, **({"secret": secret} if secret else {})}

    @admin_event(schemas.WebhookRef)
    def on_webhook_delete(self, connection, payload):
        """``webhook:delete``: the webhook and its deliveries are gone; nothing more is sent."""
        webhooks.delete_webhook(connection.actor, payload.id)

    @admin_event(schemas.WebhookDeliveries)
    def on_webhook_deliveries(self, connection, payload):
        """``webhook:deliveries``: the webhook's newest deliveries, newest first."""
        return {"deliveries": webhooks.deliveries(payload.id, payload.limit)}

    @admin_event(schemas.DeliveryRef)
    def on_webhook_redeliver(self, connection, payload):
        """``webhook:redeliver``: a finished delivery is sent again, same id and body."""
        return {"delivery": webhooks.redeliver(connection.actor, payload.delivery)}

    @admin_event(schemas.AuditHistory)
    def on_audit_list(self, connection, payload):
        """``audit:list``: the newest audit entries before ``before``, ascending by id."""
        entries, has_more = audit.history(before=payload.before, limit=payload.limit)
        return {"entries": entries, "has_more": has_more}
