"""Rooms, memberships, direct messages and read markers."""
from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError

from .. import events
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..extensions import db
from ..models import Membership, Message, Room, User, isoformat
from . import Actor
from .ratelimit import limits
from .users import get_user


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


def room_to_public(room: Room, member_count: int, unread: int | None = None) -> dict:
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
    if unread is not None:
        data["unread"] = unread
    return data


# -- checks -----------------------------------------------------------------

def check_room_name(name: str) -> str:
    name = name.strip()
    limit = current_app.config["ROOM_NAME_MAX_LENGTH"]
    if not 1 <= len(name) <= limit:
        raise Invalid(f"a room name is 1 to {limit} characters", field="name")
    return name


def check_topic(topic: str) -> str:
    topic = topic.strip()
    limit = current_app.config["ROOM_TOPIC_MAX_LENGTH"]
    if len(topic) > limit:
        raise Invalid(f"a topic is at most {limit} characters", field="topic")
    return topic


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48]
    # A name with no Latin letters still needs an address.
    return slug or f"room-{secrets.token_hex(3)}"


def _is_member(room_id: int, user_id: int) -> bool:
    return db.session.get(Membership, (room_id, user_id)) is not None


def _is_admin(actor: Actor) -> bool:
    return bool(db.session.execute(select(User.is_admin).where(User.id == actor.id)).scalar())


def visible_room(actor: Actor, slug: str) -> tuple[Room, bool]:
    """The room at ``slug`` and whether ``actor`` is a member.

    A private room the actor does not belong to answers ``not_found``: its
    existence is not revealed.
    """
    room = db.session.execute(select(Room).where(Room.slug == slug)).scalar_one_or_none()
    if room is None:
        raise NotFound("no such room", field="room")
    member = _is_member(room.id, actor.id)
    if room.private and not member:
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
    """Unread messages per room: others' messages after the member's read marker."""
    query = (
        select(Membership.room_id, func.count(Message.id))
        .join(Message, and_(Message.room_id == Membership.room_id,
                            Message.id > Membership.last_read_id,
                            Message.deleted.is_(False),
                            Message.user_id != user_id))
        .where(Membership.user_id == user_id)
        .group_by(Membership.room_id)
    )
    if room_ids is not None:
        query = query.where(Membership.room_id.in_(room_ids))
    return dict(db.session.execute(query).all())


def public_room(room: Room, user_id: int) -> dict:
    """A room as a member sees it (with ``unread``)."""
    unread = unread_counts(user_id, [room.id]).get(room.id, 0)
    return room_to_public(room, member_count(room.id), unread)


# -- actions ----------------------------------------------------------------

def _add_member(room: Room, user_id: int) -> bool:
    """Make ``user_id`` a member; False when they already were."""
    if _is_member(room.id, user_id):
        return False
    db.session.add(Membership(room_id=room.id, user_id=user_id))
    return True


def create_room(actor: Actor, name: str, topic: str = "", private: bool = False) -> dict:
    name, topic = check_room_name(name), check_topic(topic)
    slug = slugify(name)
    if db.session.execute(select(Room.id).where(Room.slug == slug)).first():
        raise Conflict(f"a room with the address {slug!r} exists", field="name")
    # Spent only by a valid request, before the write transaction begins.
    limits.hit("room_create", actor.id, actor.username)
    room = Room(slug=slug, name=name, topic=topic, private=private, owner_id=actor.id)
    db.session.add(room)
    try:
        db.session.flush()
        db.session.add(Membership(room_id=room.id, user_id=actor.id))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"a room with the address {slug!r} exists", field="name") from None
    return room_to_public(room, 1, 0)


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
    unread = unread_counts(actor.id)
    return [room_to_public(room, count, unread.get(room.id, 0) if member else None)
            for room, count, member in rows]


def join(actor: Actor, slug: str) -> RoomRef:
    """Make ``actor`` a member of a public room they can see (stored membership).

    The caller subscribes the connection to the room's events next, and only
    then reads the catch-up page with ``join_reply``: in that order no message
    can fall between the page and the live stream.
    """
    room, member = visible_room(actor, slug)
    if not member:
        _add_member(room, actor.id)
        db.session.commit()
    return RoomRef.of(room)


def join_reply(actor: Actor, ref: RoomRef, online_ids: set[int], since: int | None = None,
               limit: int | None = None) -> dict:
    """The ``room:join`` ack: the room, its members, who is online, and a page."""
    from .messages import page  # messages imports rooms

    room = db.session.get(Room, ref.id)
    members = db.session.execute(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.room_id == room.id).order_by(func.lower(User.username))
    ).scalars().all()
    messages, has_more = page(room, before=None, after=since, limit=limit)
    public_members = [m.to_public() for m in members]
    return {
        "room": room_to_public(room, len(members),
                               unread_counts(actor.id, [room.id]).get(room.id, 0)),
        "members": public_members,
        "online": [m for m in public_members if m["id"] in online_ids],
        "messages": messages,
        "has_more": has_more,
    }


def leave_room(actor: Actor, slug: str) -> None:
    room, member = visible_room(actor, slug)
    if not member:
        return
    db.session.execute(delete(Membership).where(Membership.room_id == room.id,
                                                Membership.user_id == actor.id))
    db.session.commit()
    events.member_left(actor.id, room.slug)


def invite(actor: Actor, slug: str, username: str) -> None:
    room, member = visible_room(actor, slug)
    if room.is_dm:
        raise Forbidden("a direct message has exactly two members", field="room")
    if room.private and room.owner_id != actor.id and not _is_admin(actor):
        raise Forbidden("only the room's owner or an admin may invite", field="room")
    if not member and not _is_admin(actor):
        raise Forbidden("join the room first", field="room")
    invitee = get_user(username)
    if _add_member(room, invitee.id):
        db.session.commit()
        events.room_added(invitee.id, public_room(room, invitee.id))


def open_dm(actor: Actor, username: str) -> dict:
    """The one private room of ``actor`` and ``username``; created on first call."""
    other = get_user(username)
    if other.id == actor.id:
        raise Invalid("a direct message needs another user", field="user")
    low, high = sorted((actor.id, other.id))
    slug = f"dm-{low}-{high}"
    room = db.session.execute(select(Room).where(Room.slug == slug)).scalar_one_or_none()
    if room is None:
        names = sorted([actor.username, other.username], key=str.lower)
        room = Room(slug=slug, name=" & ".join(names), private=True, is_dm=True)
        db.session.add(room)
        try:
            db.session.flush()
        except IntegrityError:  # created by the other side at the same moment
            db.session.rollback()
            room = db.session.execute(select(Room).where(Room.slug == slug)).scalar_one()
    added_other = _add_member(room, other.id)
    _add_member(room, actor.id)
    db.session.commit()
    if added_other:
        events.room_added(other.id, public_room(room, other.id))
    return public_room(room, actor.id)


def mark_read(actor: Actor, slug: str, last_read_id: int) -> int:
    """Move the read marker forward (never back); the unread count left."""
    room = member_room(actor, slug)
    membership = db.session.get(Membership, (room.id, actor.id))
    newest = db.session.execute(
        select(func.max(Message.id)).where(Message.room_id == room.id)).scalar() or 0
    target = min(last_read_id, newest)
    if target > membership.last_read_id:
        membership.last_read_id = target
        db.session.commit()
    return unread_counts(actor.id, [room.id]).get(room.id, 0)


def members_of(actor: Actor, slug: str, online_ids: set[int]) -> dict:
    """A visible room's members, and which are online in it (REST ``/members``)."""
    room, _member = visible_room(actor, slug)
    people = db.session.execute(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.room_id == room.id).order_by(func.lower(User.username))
    ).scalars().all()
    shown = [user.to_public() for user in people]
    return {"members": shown, "online": [user for user in shown if user["id"] in online_ids]}
