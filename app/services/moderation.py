"""What admins do: kick, ban, promote, delete, announce, archive.

The admin console and any other caller go through these. Every action is
written to the audit log in its own transaction, and only after that commit
reaches the console (the entry) and the chat: a ban closes connections, an
announcement is broadcast. ``check_admin`` is the one rule for who may call them; the admin
namespace runs it on every event, because rights can be taken away while a
console is open.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, or_, select

from .. import events
from ..errors import Conflict, Forbidden, NotFound, Unauthenticated
from ..extensions import db
from ..models import (Announcement, LoginSession, Membership, Message, Room, User, isoformat,
                      utcnow)
from . import Actor, audit, changes, messages, users
from .connections import live
from .rooms import room_to_public

log = logging.getLogger(__name__)

USERS_DEFAULT_LIMIT = 50
USERS_MAX_LIMIT = 500
ROOMS_LIMIT = 500
MESSAGES_DEFAULT_LIMIT = 50
# How much of a deleted message or an announcement the audit log keeps.
EXCERPT_LENGTH = 120


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


# -- who may moderate -----------------------------------------------------------

def check_admin(actor: Actor, session_token: str | None = None) -> None:
    """Refuse unless ``actor`` is an admin now (and, given a token, still signed in).

    Read from the database each time: an admin demoted, banned or signed out
    while connected must lose access at once.
    """
    if session_token is not None:
        login_session = db.session.get(LoginSession, session_token)
        if login_session is None or login_session.revoked_at is not None:
            raise Unauthenticated("this session has ended; sign in again")
    user = db.session.get(User, actor.id)
    if user is None or not user.is_admin:
        raise Forbidden("admins only")
    if user.is_banned():
        raise Forbidden("this account is banned")


def live_admin_sessions(tokens: set[str]) -> set[str]:
    """Which of these sign-in sessions still belong to an unbanned admin."""
    if not tokens:
        return set()
    rows = db.session.execute(
        select(LoginSession.token, User).join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token.in_(tokens), LoginSession.revoked_at.is_(None),
               User.is_admin.is_(True))
    ).all()
    return {token for token, user in rows if not user.is_banned()}


# -- users ------------------------------------------------------------------------

def user_to_admin(user: User, online: bool | None = None) -> dict:
    """A user as the console lists them: User plus online, admin and ban state."""
    banned = user.is_banned()
    return {
        **user.to_public(),
        "online": live.presence.is_user_online(user.id) if online is None else online,
        "is_admin": user.is_admin,
        "banned": banned,
        "banned_until": isoformat(user.banned_until) if banned else None,
        "ban_reason": (user.ban_reason or "") if banned else "",
        "created_at": isoformat(user.created_at),
    }


def list_users(query: str = "", limit: int | None = None) -> list[dict]:
    """Users whose name contains ``query`` (any case), by name."""
    limit = min(limit or USERS_DEFAULT_LIMIT, USERS_MAX_LIMIT)
    statement = select(User).order_by(User.username_key).limit(limit)
    if query.strip():
        statement = statement.where(
            User.username_key.contains(query.strip().lower(), autoescape=True))
    return [user_to_admin(user) for user in db.session.execute(statement).scalars()]


def kick(actor: Actor, username: str, reason: str = "") -> int:
    """Close every chat connection of the user, on every process; how many closed.

    The user may connect again at once: a kick is a warning, a ban keeps them out.
    """
    target = users.get_user(username)
    closed = events.user_disconnect(target.id, reason or "kicked", kicked=True)
    # A kick changes nothing stored: the entry, which counts the closed
    # connections, is its only write.
    audit.record(actor.username, "user:kick", target.username,
                 _with_reason(f"{closed} connection{'s' if closed != 1 else ''} closed", reason))
    db.session.commit()
    return closed


def _with_reason(text: str, reason: str) -> str:
    return f"{text}: {reason}" if reason else text


def _minutes(minutes: float) -> str:
    whole = int(minutes)
    shown = whole if whole == minutes else round(minutes, 2)
    return f"{shown} minute{'s' if shown != 1 else ''}"


def ban(actor: Actor, username: str, reason: str = "",
        minutes: float | None = None) -> tuple[dict, int]:
    """Ban the user (for ``minutes``, or until unbanned), end their sessions, close their sockets.

    Their sign-in cookies stop working and sign-in is refused while the ban
    lasts. Returns the user as listed and how many connections were closed.
    """
    target = users.get_user(username)
    if target.id == actor.id:
        raise Forbidden("you cannot ban yourself", field="user")
    if target.is_admin:
        raise Forbidden("an admin cannot be banned; demote them first", field="user")
    target.banned = True
    target.banned_until = utcnow() + timedelta(minutes=minutes) if minutes else None
    target.ban_reason = reason or None
    span = f"for {_minutes(minutes)}" if minutes else "until unbanned"
    audit.record(actor.username, "user:ban", target.username, _with_reason(span, reason))
    users.end_all_sessions(target)  # commits the ban, the revocations and the entry together
    log.info("user banned id=%s until=%s", target.id, target.banned_until)
    closed = events.user_disconnect(target.id, reason or "banned", kicked=True,
                                    ban=users.ban_notice(target))
    return user_to_admin(target, online=False), closed


def unban(actor: Actor, username: str) -> dict:
    """Lift a ban; the user may sign in again (their old sessions stay ended)."""
    target = users.get_user(username)
    if target.banned:
        was_in_force = target.is_banned()
        target.banned, target.banned_until, target.ban_reason = False, None, None
        if was_in_force:
            audit.record(actor.username, "user:unban", target.username)
        db.session.commit()
    return user_to_admin(target)


def reset_password(actor: Actor, username: str) -> dict:
    """A temporary password for someone who forgot theirs (``users.reset_password``).

    Your own password is changed on the account page, with the current one.
    """
    target = users.get_user(username)
    if target.id == actor.id:
        raise Forbidden("change your own password on your account page", field="user")
    password = users.reset_password(actor.username, target.username)
    return {**user_to_admin(target, online=False), "temporary_password": password}


def set_admin(actor: Actor, username: str, is_admin: bool) -> dict:
    """Promote or demote; a demoted admin's consoles are closed on every process."""
    target = users.get_user(username)
    if not is_admin and target.id == actor.id:
        # Also what keeps at least one admin: the last one cannot demote themself.
        raise Forbidden("you cannot demote yourself", field="user")
    if is_admin and target.is_banned():
        raise Conflict("unban the user before making them an admin", field="user")
    if target.is_admin != is_admin:
        target.is_admin = is_admin
        audit.record(actor.username, "user:promote" if is_admin else "user:demote",
                     target.username)
        if not is_admin:
            target_id = target.id
            changes.after_commit(lambda: events.admin_disconnect(target_id))
        db.session.commit()
    return user_to_admin(target)


# -- messages and announcements ----------------------------------------------

def recent_messages(actor: Actor, slug: str, *, before: int | None = None,
                    limit: int | None = None,
                    reason: str | None = None) -> tuple[list[dict], bool]:
    """A page of any room's live messages (private rooms included), ascending.

    Direct messages are the one exception: reading one is a compliance
    action, refused without a ``reason``, and every page read is written to
    the audit log with it (who read which conversation, and why), so that
    the people in a DM can trust that no admin browses it unseen.
    """
    room = _room(slug)
    page, has_more = messages.page(room, before=before, after=None,
                                   limit=limit or MESSAGES_DEFAULT_LIMIT, viewer_id=actor.id)
    if room.is_dm:
        reason = " ".join((reason or "").split())
        if not reason:
            raise Forbidden("a direct message is private: reading it is a compliance action "
                            "that needs a reason, recorded in the audit log", field="reason")
        shown = f"{len(page)} message{'s' if len(page) != 1 else ''}"
        # The read is the whole action: its entry commits on its own.
        audit.notice(actor.username, "dm:read", room.slug,
                     f"{shown}{f' before {before}' if before else ''}: {reason}")
    return page, has_more


def delete_message(actor: Actor, message_id: int) -> None:
    """Delete any message; the room's members get ``message:deleted``."""
    row = db.session.execute(
        select(Room.slug, User.username, Message.body)
        .join(Room, Room.id == Message.room_id).join(User, User.id == Message.user_id)
        .where(Message.id == message_id, Message.deleted.is_(False))).first()
    if row is None:
        raise NotFound("no such message", field="id")
    audit.record(actor.username, "message:delete", row.slug,
                 f"message {message_id} by {row.username}: {_excerpt(row.body)}")
    messages.delete(actor, message_id, as_admin=True)  # commits the entry with the deletion


def announce(actor: Actor, body: str, slug: str | None = None,
             minutes: float | None = None) -> dict:
    """Keep an announcement and send ``announcement`` to every ``/public`` client, or one room's.

    It stays current for ``minutes`` (for good without): clients that connect
    meanwhile get it in ``announcements`` (``current_announcements``).
    """
    body = messages.check_body(body)
    room = _room(slug) if slug is not None else None
    now = utcnow()
    row = Announcement(body=body, room_id=room.id if room else None, created_by=actor.username,
                       created_at=now,
                       expires_at=now + timedelta(minutes=minutes) if minutes else None)
    db.session.add(row)
    db.session.flush()
    announcement = announcement_to_public(row, room.slug if room else None)
    span = f", for {_minutes(minutes)}" if minutes else ""
    audit.record(actor.username, "announce", room.slug if room else "",
                 f"{'to ' + room.slug if room else 'to every room'}{span}: {_excerpt(body)}")
    changes.after_commit(lambda: events.announcement(announcement))
    db.session.commit()
    return announcement


def announcement_to_public(row: Announcement, slug: str | None) -> dict:
    return {"id": row.id, "body": row.body, "created_at": isoformat(row.created_at),
            "room": slug, "expires_at": isoformat(row.expires_at)}


# Enough for a banner: the UI shows at most three at once.
CURRENT_ANNOUNCEMENTS_LIMIT = 3


def current_announcements(user_id: int) -> list[dict]:
    """The announcements still current for this user: to everyone or to a room of theirs.

    Newest last, at most ``CURRENT_ANNOUNCEMENTS_LIMIT``. One indexed query,
    run once per ``/public`` connection.
    """
    now = utcnow()
    mine = select(Membership.room_id).where(Membership.user_id == user_id)
    rows = db.session.execute(
        select(Announcement, Room.slug).outerjoin(Room, Room.id == Announcement.room_id)
        .where(or_(Announcement.expires_at.is_(None), Announcement.expires_at > now),
               or_(Announcement.room_id.is_(None), Announcement.room_id.in_(mine)))
        .order_by(Announcement.created_at.desc(), Announcement.id.desc())
        .limit(CURRENT_ANNOUNCEMENTS_LIMIT)).all()
    return [announcement_to_public(row, slug) for row, slug in reversed(rows)]


# -- rooms ----------------------------------------------------------------------

def _room(slug: str) -> Room:
    room = db.session.execute(select(Room).where(Room.slug == slug)).scalar_one_or_none()
    if room is None:
        raise NotFound("no such room", field="room")
    return room


def _member_counts():
    return (select(Membership.room_id, func.count().label("n"))
            .group_by(Membership.room_id).subquery())


def _message_counts():
    return (select(Message.room_id, func.count().label("n"))
            .where(Message.deleted.is_(False)).group_by(Message.room_id).subquery())


def _rooms_with_counts(*conditions) -> list[dict]:
    """Rooms as the console lists them: Room plus ``message_count`` (live messages)."""
    members, posts = _member_counts(), _message_counts()
    statement = (
        select(Room, func.coalesce(members.c.n, 0), func.coalesce(posts.c.n, 0))
        .outerjoin(members, members.c.room_id == Room.id)
        .outerjoin(posts, posts.c.room_id == Room.id)
        .where(*conditions)
        .order_by(Room.is_dm, func.lower(Room.name)).limit(ROOMS_LIMIT))
    return [{**room_to_public(room, n_members), "message_count": n_messages}
            for room, n_members, n_messages in db.session.execute(statement).all()]


def list_rooms(query: str = "") -> list[dict]:
    """Every room (private ones and direct messages too) with member and message counts."""
    conditions = []
    if query.strip():
        needle = query.strip().lower()
        conditions.append(or_(func.lower(Room.name).contains(needle, autoescape=True),
                              Room.slug.contains(needle, autoescape=True)))
    return _rooms_with_counts(*conditions)


def archive_room(actor: Actor, slug: str, archived: bool = True) -> dict:
    """Make a room read-only to its members (or writable again).

    Members still join and read it; sending and editing answer ``forbidden``.
    Every process updates what its connections know of the room.
    """
    room = _room(slug)
    if room.archived != archived:
        room.archived = archived
        slug = room.slug
        changes.record(room.id, slug, "room:archived", {"room": slug, "archived": archived})
        audit.record(actor.username, "room:archive" if archived else "room:unarchive", slug)
        changes.after_commit(lambda: events.room_archived(slug, archived))
        db.session.commit()
    return _rooms_with_counts(Room.id == room.id)[0]
