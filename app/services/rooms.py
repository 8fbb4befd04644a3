"""Rooms, memberships (and removing a member), direct messages, read markers, deleting a room."""
from __future__ import annotations

import logging
import re
import time
import secrets
import unicodedata
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import and_, bindparam, case, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from .. import events
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..extensions import db
from ..models import (Announcement, Membership, Message, MessageMention, Reaction, Room, RoomChange,
                      User, WebhookDelivery, isoformat)
from . import Actor, audit, changes
from .ratelimit import limits
from .text import is_blank
from .users import get_user

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoomRef:
    """What the hot path needs to know of a room a connection has joined."""

    id: int
    slug: str
    private: bool
    archived: bool

    @classmethod
    def of(cls, room: Room) -> "RoomRef":
        return cls(room.id, room.slug, room.private, room.archived)


# A member's notification levels for a room (``room:notify``): a browser
# notification (and the ``mention`` push) for every message, for mentions
# only, or for nothing. Null in the database: the room kind's default.
NOTIFY_LEVELS = ("all", "mentions", "none")


def notify_level(room: Room, stored: str | None) -> str:
    """What a member chose, else the default: every message of a DM, mentions elsewhere."""
    return stored or ("all" if room.is_dm else "mentions")


@dataclass(frozen=True, slots=True)
class Reading:
    """A member's view of a room: unread messages, unread mentions of them, their level."""

    unread: int = 0
    mentions_unread: int = 0
    notify: str | None = None


def room_to_public(room: Room, member_count: int, reading: Reading | None = None) -> dict:
    """A Room object; ``reading`` (the caller is a member) adds ``unread``,
    ``mentions_unread`` and ``notify``."""
    data = {
        "slug": room.slug,
        "name": room.name,
        "topic": room.topic,
        "private": room.private,
        "created_at": isoformat(room.created_at),
        "member_count": member_count,
        "dm": room.is_dm,
        "archived": room.archived,
        "owner_id": room.owner_id,
    }
    if reading is not None:
        data["unread"] = reading.unread
        data["mentions_unread"] = reading.mentions_unread
        data["notify"] = notify_level(room, reading.notify)
    return data


# -- checks -----------------------------------------------------------------

def check_room_name(name: str) -> str:
    name = name.strip()
    limit = current_app.config["ROOM_NAME_MAX_LENGTH"]
    if is_blank(name) or len(name) > limit:
        raise Invalid(f"a room name is 1 to {limit} characters", field="name")
    return name


def check_topic(topic: str) -> str:
    topic = topic.strip()
    limit = current_app.config["ROOM_TOPIC_MAX_LENGTH"]
    if len(topic) > limit:
        raise Invalid(f"a topic is at most {limit} characters", field="topic")
    # A topic may be empty; one of only invisible characters is.
    return "" if is_blank(topic) else topic


# Every direct message's slug starts with this (those made before pairs were
# recorded are ``dm-<low id>-<high id>``; new ones ``dm-<random>``). No room
# name can produce such a slug: the address space belongs to the server.
DM_SLUG_PREFIX = "dm-"
# A private room's slug, and a public one's whose readable address is taken
# by a room the creator cannot see: the name's slug, this mark (which
# ``slugify`` never produces) and random hex, so that the address neither
# collides with nor reveals any other room.
UNLISTED_SLUG_MARK = "_"


def slugify(name: str) -> str:
    """The readable address of a room name: ``[a-z0-9-]``, never in the DM space."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48]
    # A name with no Latin letters still needs an address.
    slug = slug or f"room-{secrets.token_hex(3)}"
    # Checked on the finished slug, so that no spelling of "dm 3 4" (case,
    # punctuation, full-width or other compatibility forms) gets past it.
    if slug == "dm" or slug.startswith(DM_SLUG_PREFIX):
        slug = f"room-{slug}"
    return slug


def unlisted_slug(base: str) -> str:
    return f"{base}{UNLISTED_SLUG_MARK}{secrets.token_hex(4)}"


def _is_member(room_id: int, user_id: int) -> bool:
    return db.session.get(Membership, (room_id, user_id)) is not None


def _is_admin(actor: Actor) -> bool:
    return bool(db.session.execute(select(User.is_admin).where(User.id == actor.id)).scalar())


def _room_at(slug: str) -> Room | None:
    return db.session.execute(select(Room).where(Room.slug == slug)).scalar_one_or_none()


def can_see(room: Room, member: bool) -> bool:
    """Whether a user sees ``room`` at all: any public room, a private one as a member."""
    return member or not room.private


def visible_room(actor: Actor, slug: str) -> tuple[Room, bool]:
    """The room at ``slug`` and whether ``actor`` is a member.

    A private room the actor does not belong to answers ``not_found``: its
    existence is not revealed.
    """
    room = _room_at(slug)
    member = room is not None and _is_member(room.id, actor.id)
    if room is None or not can_see(room, member):
        raise NotFound("no such room", field="room")
    return room, member


def member_room(actor: Actor, slug: str) -> RoomRef:
    """The room at ``slug`` if ``actor`` is a member (to post or read)."""
    room, member = visible_room(actor, slug)
    if not member:
        raise Forbidden("join the room first", field="room")
    return RoomRef.of(room)


def check_writable(room: RoomRef) -> None:
    if room.archived:
        raise Forbidden("this room is archived and read-only", field="room")


def member_count(room_id: int) -> int:
    return db.session.execute(
        select(func.count()).select_from(Membership).where(Membership.room_id == room_id)
    ).scalar_one()


def unread_counts(user_id: int, room_ids: list[int] | None = None) -> dict[int, int]:
    """Unread messages per room (rooms with none left out); see ``readings``."""
    return {room_id: reading.unread for room_id, reading in readings(user_id, room_ids).items()
            if reading.unread}


def readings(user_id: int, room_ids: list[int] | None = None) -> dict[int, Reading]:
    """Every room of the member (or those of ``room_ids``): its ``Reading``, in one query.

    Unread: others' live messages after the member's read marker; unread
    mentions: those of them that name the member or say ``@room``. The
    notification level never changes the counts.
    """
    mentioned = or_(MessageMention.user_id.is_not(None), Message.mentions_room.is_(True))
    query = (
        select(Membership.room_id, Membership.notify, func.count(Message.id),
               func.count(case((mentioned, Message.id))))
        .select_from(Membership)
        .outerjoin(Message, and_(Message.room_id == Membership.room_id,
                                 Message.id > Membership.last_read_id,
                                 Message.deleted.is_(False),
                                 Message.user_id != user_id))
        .outerjoin(MessageMention, and_(MessageMention.message_id == Message.id,
                                        MessageMention.user_id == user_id))
        .where(Membership.user_id == user_id)
        .group_by(Membership.room_id, Membership.notify)
    )
    if room_ids is not None:
        query = query.where(Membership.room_id.in_(room_ids))
    return {room_id: Reading(unread, mentions, notify)
            for room_id, notify, unread, mentions in db.session.execute(query).all()}


def reading_of(user_id: int, room_id: int) -> Reading:
    return readings(user_id, [room_id]).get(room_id, Reading())


def public_room(room: Room, user_id: int) -> dict:
    """A room as a member sees it (with ``unread``, ``mentions_unread``, ``notify``)."""
    return room_to_public(room, member_count(room.id), reading_of(user_id, room.id))


# -- actions ----------------------------------------------------------------

def _add_member(room: Room, user: Actor | User) -> bool:
    """Make ``user`` a member (logged as ``member:added``); False when they already were."""
    if _is_member(room.id, user.id):
        return False
    db.session.add(Membership(room_id=room.id, user_id=user.id))
    changes.record(room.id, room.slug, "member:added",
                   {"room": room.slug, "user": user.to_public()})
    return True


def create_room(actor: Actor, name: str, topic: str = "", private: bool = False) -> dict:
    """A new room owned by ``actor``, who is its one member.

    Its slug never tells the creator anything about rooms they cannot see: a
    private room gets an unlisted slug (``team_3f9a0c1b``), which no other
    room can have, and a public room whose readable slug is taken by a room
    the creator cannot see (a private room from before unlisted slugs) gets
    one too. Only a room the creator can see, public or theirs, answers
    ``conflict``: it is listed to them anyway.
    """
    name, topic = check_room_name(name), check_topic(topic)
    # Spent by every valid request, before any other room is looked at: a
    # conflict costs a unit like a creation, so probing names is capped too.
    # (Outside the write transaction: with Redis this is network I/O.)
    limits.hit("room_create", actor.id, actor.username)
    base = slugify(name)
    slug = unlisted_slug(base) if private else base
    if not private:
        taken = _room_at(base)
        if taken is not None:
            if can_see(taken, _is_member(taken.id, actor.id)):
                raise Conflict(f"a room with the address {base!r} exists", field="name")
            slug = unlisted_slug(base)
    room = Room(slug=slug, name=name, topic=topic, private=private, owner_id=actor.id)
    db.session.add(room)
    try:
        db.session.flush()
        _add_member(room, actor)
        db.session.commit()
    except IntegrityError:
        # Another creator took the readable slug at this moment (a public
        # room: visible); an unlisted slug colliding is a 1 in 2**32 chance.
        db.session.rollback()
        raise Conflict(f"a room with the address {slug!r} exists", field="name") from None
    return room_to_public(room, 1, Reading())


def default_room_names() -> list[str]:
    """``DEFAULT_ROOMS``: the rooms every new user joins, by name."""
    return [name.strip() for name in current_app.config["DEFAULT_ROOMS"].split(",")
            if name.strip()]


def join_default_rooms(user_id: int) -> None:
    """Make a new user a member of every default room, creating a room on first use.

    Called inside the transaction that creates the user. A default room is
    public and has no owner (admins moderate it).
    """
    user = db.session.get(User, user_id)  # just added: from the session, no query
    for name in default_room_names():
        slug = slugify(check_room_name(name))
        room = db.session.execute(select(Room).where(Room.slug == slug)).scalar_one_or_none()
        if room is None:
            room = Room(slug=slug, name=name, topic="", private=False, owner_id=None)
            db.session.add(room)
            db.session.flush()
        elif room.private:
            # An operator's typo must not hand new users a private room.
            log.warning("default room %s is private; not joining new users to it", slug)
            continue
        _add_member(room, user)


def list_rooms(actor: Actor) -> list[dict]:
    """Public rooms and the private rooms ``actor`` belongs to, by name."""
    mine = select(Membership.room_id).where(Membership.user_id == actor.id)
    counts = (select(Membership.room_id, func.count().label("n"))
              .group_by(Membership.room_id).subquery())
    rows = db.session.execute(
        select(Room, func.coalesce(counts.c.n, 0), Room.id.in_(mine))
        .outerjoin(counts, counts.c.room_id == Room.id)
        .where((Room.private.is_(False)) | Room.id.in_(mine))
        .order_by(Room.is_dm, func.lower(Room.name))
    ).all()
    reading = readings(actor.id)
    return [room_to_public(room, count, reading.get(room.id, Reading()) if member else None)
            for room, count, member in rows]


def join(actor: Actor, slug: str) -> RoomRef:
    """Make ``actor`` a member of a public room they can see (stored membership).

    The caller subscribes the connection to the room's events next, and only
    then reads the catch-up page with ``join_reply``: in that order no message
    can fall between the page and the live stream.
    """
    room, member = visible_room(actor, slug)
    ref = RoomRef.of(room)  # before the commit expires the room (no reload)
    if not member:
        _add_member(room, actor)
        db.session.commit()
    return ref


# A room's members as Users, in one Core statement built once: no ORM
# objects for a list that a room of 1,000 sends to every joiner.
_users, _memberships = User.__table__, Membership.__table__
_MEMBERS = (select(_users.c.id, _users.c.username, _users.c.is_bot, _users.c.display_name)
            .join(_memberships, _memberships.c.user_id == _users.c.id)
            .where(_memberships.c.room_id == bindparam("room_id"))
            .order_by(func.lower(_users.c.username)))


def room_members(room_id: int, position: int | None = None) -> list[dict]:
    """The room's members as public Users, by username (do not modify the list).

    Given ``position``, the room's latest change-log position just read, the
    list may come from ``members_cache``: every change of membership is
    logged (``member:added``, ``member:removed``) and so moves the position,
    and a list read after the position was read is at least that recent.
    A room filling with 1,000 members who are members already (a restart, a
    reconnect storm) then reads its members once, not once per join. A new
    display name is not logged: ``control.UserRenamed`` clears the cache on
    every process.
    """
    if position is not None:
        found = members_cache.get(room_id, position)
        if found is not None:
            return found
    rows = db.session.connection().execute(_MEMBERS, {"room_id": room_id})
    members = [{"id": id_, "username": username, "bot": bool(is_bot), "display_name": shown}
               for id_, username, is_bot, shown in rows]
    if position is not None:
        members_cache.put(room_id, position, members)
    return members


class MembersCache:
    """Per room, its member list as of one change-log position (see ``room_members``)."""

    MAX_ROOMS = 2000
    TTL_SECONDS = 30.0

    def __init__(self):
        self._rooms: dict[int, tuple[int, float, list[dict]]] = {}

    def clear(self) -> None:
        self._rooms.clear()

    def get(self, room_id: int, position: int) -> list[dict] | None:
        entry = self._rooms.get(room_id)
        if entry is None or entry[0] != position or entry[1] < time.monotonic():
            return None
        return entry[2]

    def put(self, room_id: int, position: int, members: list[dict]) -> None:
        if len(self._rooms) >= self.MAX_ROOMS and room_id not in self._rooms:
            self._rooms.pop(next(iter(self._rooms)))
        self._rooms[room_id] = (position, time.monotonic() + self.TTL_SECONDS, members)


members_cache = MembersCache()


def join_reply(actor: Actor, ref: RoomRef, online_ids: set[int], since: int | None = None,
               limit: int | None = None, cursor: int | None = None,
               members_limit: int | None = None) -> dict:
    """The ``room:join`` ack: the room, its members, who is online, a page, and the cursor.

    With ``cursor`` (a log position) the page is the room's ``changes`` after
    it instead of messages (see ``messages.catch_up``).
    """
    from .messages import catch_up, page  # messages imports rooms

    if cursor is not None:
        reply = catch_up(ref, cursor, limit, viewer_id=actor.id)
    else:
        # The position before the page: every change up to it is in the
        # page, and the connection (already subscribed) receives the rest.
        position = changes.current_position(ref.id)
        messages, has_more = page(ref, before=None, after=since, limit=limit,
                                  viewer_id=actor.id)
        reply = {"messages": messages, "has_more": has_more, "cursor": position}
    room = db.session.get(Room, ref.id)
    # The latest position, when the reply knows it: the page reached the end.
    latest = (position if cursor is None
              else None if reply.get("has_more") or reply.get("reset") else reply["cursor"])
    public_members = room_members(room.id, latest)
    online = [m for m in public_members if m["id"] in online_ids]
    shown = {"members": public_members, "online": online}
    if members_limit is not None:
        # The first page of each; ``room:members`` pages on (issue 14).
        shown = {"members": public_members[:members_limit], "online": online[:members_limit],
                 "members_total": len(public_members), "online_total": len(online)}
    return {
        "room": room_to_public(room, len(public_members), reading_of(actor.id, room.id)),
        **shown,
        **reply,
    }


def members_page(actor: Actor, slug: str, online_ids: set[int], after: str | None,
                 online: bool, limit: int) -> dict:
    """``room:members``: up to ``limit`` members of a visible room by username
    (case-insensitive), after the username ``after``; only those online in it
    with ``online``. ``has_more`` when more follow."""
    room, _member = visible_room(actor, slug)
    people = room_members(room.id, changes.current_position(room.id))
    if online:
        people = [m for m in people if m["id"] in online_ids]
    if after is not None:
        key = after.lower()
        people = [m for m in people if m["username"].lower() > key]
    return {"members": people[:limit], "has_more": len(people) > limit}


def update_room(actor: Actor, slug: str, name: str | None = None,
                topic: str | None = None) -> dict:
    """Rename a room or change its topic (its owner or an admin); the slug stays.

    The room's joined connections get ``room:updated`` ``{"room", "name", "topic"}``.
    """
    room, member = visible_room(actor, slug)
    if room.is_dm:
        raise Forbidden("a direct message has no name or topic to change", field="room")
    if room.owner_id != actor.id and not _is_admin(actor):
        raise Forbidden("only the room's owner or an admin may change it", field="room")
    check_writable(RoomRef.of(room))
    if name is None and topic is None:
        raise Invalid("give a new name, a new topic, or both", field="name")
    new_name = check_room_name(name) if name is not None else room.name
    new_topic = check_topic(topic) if topic is not None else room.topic
    if (new_name, new_topic) != (room.name, room.topic):
        room.name, room.topic = new_name, new_topic
        changes.record(room.id, room.slug, "room:updated",
                       {"room": room.slug, "name": new_name, "topic": new_topic})
    reply = room_to_public(room, member_count(room.id),
                           reading_of(actor.id, room.id) if member else None)
    db.session.commit()
    return reply


def leave_room(actor: Actor, slug: str) -> None:
    room, member = visible_room(actor, slug)
    if not member:
        return
    db.session.execute(delete(Membership).where(Membership.room_id == room.id,
                                                Membership.user_id == actor.id))
    slug = room.slug
    # Queued first: the leaver's connections stop receiving the room before
    # the room hears that they left.
    changes.after_commit(lambda: events.member_left(actor.id, slug))
    changes.record(room.id, slug, "member:removed", {"room": slug, "user": actor.to_public()})
    db.session.commit()


def _managed_room(actor: Actor, slug: str, dm_refusal: str) -> Room:
    """The room at ``slug`` if ``actor`` may manage it (remove members, delete it):
    its owner, or an admin.

    An admin finds any room (as ``invite``); anyone else only a room they can
    see, so a private room of others answers ``not_found`` exactly like a
    missing one. Direct messages are nobody's to manage (``dm_refusal`` says why).
    """
    admin = _is_admin(actor)
    if admin:
        room = _room_at(slug)
        if room is None:
            raise NotFound("no such room", field="room")
    else:
        room, _member = visible_room(actor, slug)
    if room.is_dm:
        raise Forbidden(dm_refusal, field="room")
    if not admin and room.owner_id != actor.id:
        raise Forbidden("only the room's owner or an admin may do this", field="room")
    return room


def remove_member(actor: Actor, slug: str, username: str) -> None:
    """The owner or an admin removes ``username`` from a room (``room:remove``).

    Their connections stop receiving the room on every process, the room's
    log records ``member:removed`` with ``"by"`` (who removed them), and the
    removed user's connections get ``room:removed``. They lose access at
    once: a private room is gone from their list and its history closed to
    them; a public one they may join again (keeping someone out is a ban).
    The owner does not remove themself: they leave. Audited.
    """
    room = _managed_room(actor, slug, "a direct message has exactly two members")
    target = get_user(username)
    if target.id == actor.id:
        raise Invalid("you cannot remove yourself; leave the room instead", field="user")
    if not _is_member(room.id, target.id):
        raise NotFound(f"{target.username} is not a member of this room", field="user")
    db.session.execute(delete(Membership).where(Membership.room_id == room.id,
                                                Membership.user_id == target.id))
    slug, target_id, by = room.slug, target.id, actor.to_public()
    # Queued first, as for leaving: the removed member's connections stop
    # receiving the room before it hears that they were removed.
    changes.after_commit(lambda: events.member_removed(target_id, slug, by))
    changes.record(room.id, slug, "member:removed",
                   {"room": slug, "user": target.to_public(), "by": by})
    audit.record(actor.username, "room:remove", slug, f"removed {target.username}")
    db.session.commit()


def is_default_room(room: Room) -> bool:
    """Whether ``room`` is one of ``DEFAULT_ROOMS`` (every new user joins it)."""
    return room.slug in {slugify(name) for name in default_room_names()}


def delete_room(actor: Actor, slug: str) -> None:
    """The owner or an admin deletes a room with its messages and log (``room:delete``).

    Refused for a direct message and for a default room (new users would
    re-create it; take it out of ``DEFAULT_ROOMS`` first). After the commit
    every process's connections forget the room and ``room:deleted`` tells
    its members (every client, for a public room); its SSE streams end.
    Audited, with what was lost.
    """
    room = _managed_room(actor, slug, "a direct message cannot be deleted")
    if is_default_room(room):
        raise Forbidden("a default room cannot be deleted; take it out of DEFAULT_ROOMS first",
                        field="room")
    member_ids = list(db.session.execute(
        select(Membership.user_id).where(Membership.room_id == room.id)).scalars())
    message_total = db.session.execute(
        select(func.count()).select_from(Message).where(Message.room_id == room.id)).scalar_one()
    room_id, slug, private, name = room.id, room.slug, room.private, room.name
    # Explicitly, child tables first: SQLite enforces ON DELETE CASCADE only
    # with foreign keys switched on, and nothing here should depend on that.
    of_room = select(Message.id).where(Message.room_id == room_id).scalar_subquery()
    for model in (Reaction, MessageMention):
        db.session.execute(delete(model).where(model.message_id.in_(of_room)))
    for model in (WebhookDelivery, RoomChange, Announcement, Message, Membership):
        db.session.execute(delete(model).where(model.room_id == room_id))
    db.session.execute(delete(Room).where(Room.id == room_id))
    by = actor.to_public()
    changes.after_commit(lambda: events.room_deleted(room_id, slug, private, member_ids, by))
    audit.record(actor.username, "room:delete", slug,
                 f"{name!r}: {message_total} message{'s' if message_total != 1 else ''}, "
                 f"{len(member_ids)} member{'s' if len(member_ids) != 1 else ''}")
    db.session.commit()
    log.info("room %s deleted by user %s", room_id, actor.id)


def invite(actor: Actor, slug: str, username: str) -> None:
    """Add ``username`` to a room: a public room's member or an admin; a private
    room's owner (while a member) or an admin; never to a direct message."""
    admin = _is_admin(actor)
    if admin:
        # An admin may invite to any room, member or not: found directly.
        room = _room_at(slug)
        if room is None:
            raise NotFound("no such room", field="room")
        member = _is_member(room.id, actor.id)
    else:
        room, member = visible_room(actor, slug)
    if room.is_dm:
        raise Forbidden("a direct message has exactly two members", field="room")
    if not admin:
        if room.private and room.owner_id != actor.id:
            raise Forbidden("only the room's owner or an admin may invite", field="room")
        if not member:
            raise Forbidden("join the room first", field="room")
    invitee = get_user(username)
    if _add_member(room, invitee):
        _tell_added(invitee.id, public_room(room, invitee.id))
        db.session.commit()


def _tell_added(user_id: int, room: dict) -> None:
    changes.after_commit(lambda: events.room_added(user_id, room))


def _dm_of(low: int, high: int) -> Room | None:
    return db.session.execute(
        select(Room).where(Room.dm_low_id == low, Room.dm_high_id == high)
    ).scalar_one_or_none()


def open_dm(actor: Actor, username: str) -> dict:
    """The one direct message of ``actor`` and ``username``; created on first call.

    Found by its pair of users, which only this function sets: never by slug,
    so no other room can ever be taken for it. A new DM's slug is random
    (``dm-<16 hex>``), not derived from the ids. Creating one spends a unit
    of ``DM_OPEN_RATE_LIMIT``; opening an existing one is free.
    """
    other = get_user(username)
    if other.id == actor.id:
        raise Invalid("a direct message needs another user", field="user")
    low, high = sorted((actor.id, other.id))
    room = _dm_of(low, high)
    if room is None:
        limits.hit("dm_open", actor.id, actor.username)
        names = sorted([actor.username, other.username], key=str.lower)
        room = Room(slug=f"{DM_SLUG_PREFIX}{secrets.token_hex(8)}", name=" & ".join(names),
                    private=True, is_dm=True, dm_low_id=low, dm_high_id=high)
        db.session.add(room)
        try:
            db.session.flush()
        except IntegrityError:  # created by the other side at the same moment
            db.session.rollback()
            room = _dm_of(low, high)
            if room is None:
                raise
    added_other = _add_member(room, other)
    _add_member(room, actor)
    if added_other:
        _tell_added(other.id, public_room(room, other.id))
    reply = public_room(room, actor.id)
    db.session.commit()
    return reply


def mark_read(actor: Actor, slug: str, last_read_id: int) -> dict:
    """Move the read marker forward (never back); the ``room:read`` ack:
    ``{"unread", "mentions_unread"}`` left."""
    room = member_room(actor, slug)
    membership = db.session.get(Membership, (room.id, actor.id))
    newest = db.session.execute(
        select(func.max(Message.id)).where(Message.room_id == room.id)).scalar() or 0
    target = min(last_read_id, newest)
    if target > membership.last_read_id:
        membership.last_read_id = target
        db.session.commit()
    left = reading_of(actor.id, room.id)
    return {"unread": left.unread, "mentions_unread": left.mentions_unread}


def members_of(actor: Actor, slug: str, online_ids: set[int]) -> dict:
    """A visible room's members, and which are online in it (REST ``/members``)."""
    room, _member = visible_room(actor, slug)
    people = db.session.execute(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.room_id == room.id).order_by(func.lower(User.username))
    ).scalars().all()
    shown = [user.to_public() for user in people]
    return {"members": shown, "online": [user for user in shown if user["id"] in online_ids]}


def may_follow(user_id: int, session_token: str, room_id: int) -> bool:
    """Whether a reader of a room's SSE feed may go on reading it.

    Their sign-in session must be live and the user not banned; a private
    room's reader must still be a member (a public room is readable by any
    signed-in user, as anyone may join it).
    """
    from ..models import LoginSession

    row = db.session.execute(
        select(LoginSession.revoked_at, User, Room.private)
        .join(User, User.id == LoginSession.user_id)
        .join(Room, Room.id == room_id)
        .where(LoginSession.token == session_token, User.id == user_id)).first()
    if row is None or row.revoked_at is not None or row.User.is_banned():
        return False
    return not row.private or _is_member(room_id, user_id)


# -- the operator's check ---------------------------------------------------------

def rooms_posing_as_dms() -> list[tuple[str, str]]:
    """Rooms that look like direct messages but are not genuine: (slug, why).

    Before DMs recorded their pair, ``dm:open`` adopted any room at
    ``dm-<low id>-<high id>``, including one a third user made with
    ``room:create``, who then read the DM as its owner (issue 12). Such rooms
    are never used as DMs again; ``check-rooms`` and the start-up warning
    list them for the operator to review (docs/hardening.md).
    """
    found = []
    for room in db.session.execute(
            select(Room).where(Room.slug.startswith(DM_SLUG_PREFIX) | Room.is_dm.is_(True))
            .order_by(Room.id)).scalars():
        if not room.is_dm:
            found.append((room.slug, "in the DM address space but not made as a DM "
                                     f"(owner id {room.owner_id})"))
            continue
        if room.dm_low_id is None:
            found.append((room.slug, "a DM with no recorded pair of users"))
            continue
        members = set(db.session.execute(
            select(Membership.user_id).where(Membership.room_id == room.id)).scalars())
        # One side may have left (dm:open brings them back); no one else belongs.
        strangers = members - {room.dm_low_id, room.dm_high_id}
        if strangers:
            found.append((room.slug, "a DM with members other than its pair "
                                     f"(user ids {sorted(strangers)})"))
    return found
