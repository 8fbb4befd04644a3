"""Mentions (``@alice``, ``@room``) and each member's notification level per room.

A message's mentions are found on the server when it is sent or edited:
``@name`` names a member of the room (any other name, a member of no such
room or no user at all, is plain text and tells the sender nothing), and
``@room`` mentions every member when its author is the room's owner or an
admin (anyone else's ``@room`` is plain text). The author never mentions
themselves. Who was mentioned is stored (``message_mentions``,
``messages.mentions_room``) and travels in the Message object
(``"mentions"``, ``"mentions_room"``), so the change log, catch-up and the
SSE feed carry it with the message.

After the commit, every mentioned member whose level for the room is not
``none`` gets ``mention`` ``{"room", "message"}`` on their user channel:
on every connection, whether or not it joined the room. The level changes
what is pushed, never what is stored or counted (``rooms.readings``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, insert, select

from .. import events
from ..errors import Invalid
from ..extensions import db
from ..models import Membership, MessageMention, Room, User
from . import Actor, changes
from .ratelimit import limits
from .rooms import NOTIFY_LEVELS, RoomRef, member_room, notify_level

# ``@`` then a username's characters (2 to 32 of A-Z a-z 0-9 . _ -), not
# inside a word or an address (``bob@example.com`` mentions no one), and
# not the start of a longer word.
_MENTION = re.compile(r"(?<![\w.@-])@([A-Za-z0-9._-]{2,32})(?![A-Za-z0-9._-])")
# Sentence punctuation after a name ("thanks @alice.") is not part of it,
# unless a username really ends that way: both readings are looked up.
_TRAILING = "._-"
# The word that mentions the whole room. A user named "room" cannot be
# mentioned by name: the room's meaning wins.
ROOM_WORD = "room"


@dataclass(frozen=True, slots=True)
class Found:
    """The mentions of one body: ``user_ids`` by name (sorted), ``room`` for ``@room``,
    and ``pushes``: each mentioned member with their stored level."""

    user_ids: tuple[int, ...] = ()
    room: bool = False
    pushes: tuple[tuple[int, str | None], ...] = ()


NONE = Found()


def names_in(body: str, limit: int | None = None) -> set[str]:
    """Every lowercased name a body may mention (both readings of trailing
    punctuation), from its first ``limit`` distinct ``@`` words."""
    names: set[str] = set()
    words: set[str] = set()
    for match in _MENTION.finditer(body):
        name = match.group(1).lower()
        if name not in words:
            if limit is not None and len(words) >= limit:
                break
            words.add(name)
        names.add(name)
        bare = name.rstrip(_TRAILING)
        if len(bare) >= 2:
            names.add(bare)
    return names


def find(actor: Actor, room: RoomRef, body: str) -> Found:
    """The mentions of ``body`` by ``actor`` in ``room`` (a member room).

    The send path's cost: nothing for a body without ``@``; otherwise one
    query resolving the names to members (all members for an ``@room``),
    and one more reading the author's rights when the body says ``@room``.
    """
    if "@" not in body:
        return NONE
    # A cap on the words read keeps one message from pushing to a crowd
    # name by name (the way around @room's rights and limit) and the query small.
    names = names_in(body, current_app.config["MENTION_MAX_NAMES"])
    if not names:
        return NONE
    whole_room = ROOM_WORD in names and _may_mention_room(actor, room)
    names.discard(ROOM_WORD)
    if not names and not whole_room:
        return NONE
    query = (select(Membership.user_id, User.username_key, Membership.notify)
             .join(User, User.id == Membership.user_id)
             .where(Membership.room_id == room.id, Membership.user_id != actor.id))
    if not whole_room:
        query = query.where(User.username_key.in_(names))
    rows = db.session.execute(query).all()
    named = tuple(sorted(user_id for user_id, key, _ in rows if key in names))
    pushes = tuple((user_id, notify) for user_id, key, notify in rows
                   if whole_room or key in names)
    return Found(named, whole_room, pushes)


def _may_mention_room(actor: Actor, room: RoomRef) -> bool:
    owner_id, is_admin = db.session.execute(
        select(Room.owner_id, User.is_admin).join(User, User.id == actor.id)
        .where(Room.id == room.id)).one()
    return owner_id == actor.id or bool(is_admin)


def spend(actor: Actor, found: Found, *, sending: bool) -> None:
    """Spend the send's rate limits, all or none: ``message`` for a send, and
    ``mention_room`` for a new ``@room``; ``rate_limited`` past either."""
    spends = [("message", actor.id, actor.username)] if sending else []
    if found.room:
        spends.append(("mention_room", actor.id, actor.username))
    if spends:
        limits.reserve(spends)


_INSERT = insert(MessageMention.__table__)


def store(message_id: int, found: Found) -> None:
    """Write a new message's mentions by name, in its transaction."""
    if found.user_ids:
        db.session.connection().execute(
            _INSERT, [{"message_id": message_id, "user_id": user_id} for user_id in found.user_ids])


def stored(message_ids: list[int]) -> dict[int, list[int]]:
    """The mentions by name of these messages, sorted ids each (one query)."""
    mentioned: dict[int, list[int]] = {}
    if not message_ids:
        return mentioned
    rows = db.session.execute(
        select(MessageMention.message_id, MessageMention.user_id)
        .where(MessageMention.message_id.in_(message_ids))
        .order_by(MessageMention.message_id, MessageMention.user_id)).all()
    for message_id, user_id in rows:
        mentioned.setdefault(message_id, []).append(user_id)
    return mentioned


def replace(message_id: int, before: list[int], found: Found) -> None:
    """An edit's mentions by name replace the message's ``before``."""
    gone = set(before) - set(found.user_ids)
    new = [user_id for user_id in found.user_ids if user_id not in before]
    if gone:
        db.session.execute(delete(MessageMention).where(
            MessageMention.message_id == message_id, MessageMention.user_id.in_(gone)))
    if new:
        db.session.execute(_INSERT, [{"message_id": message_id, "user_id": user_id}
                                     for user_id in new])


def push_after_commit(slug: str, message: dict, found: Found,
                      already: set[int] | frozenset = frozenset()) -> None:
    """Queue ``mention`` for each mentioned member not in ``already`` (told before:
    an edit tells only the newly mentioned) whose level is not ``none``."""
    targets = [user_id for user_id, level in found.pushes
               if level != "none" and user_id not in already]
    if targets:
        changes.after_commit(lambda: events.mention(targets, slug, message))


# -- notification levels ----------------------------------------------------------

def set_level(actor: Actor, slug: str, level: str) -> dict:
    """``room:notify``: the member's level for the room; ``{"room", "notify"}``.

    Only the member's own connections hear of it (``room:notify`` on their
    user channel): a level is no one else's business, so it is not a change
    of the room (not in its log, feed or catch-up).
    """
    if level not in NOTIFY_LEVELS:
        raise Invalid(f"a level is one of {', '.join(NOTIFY_LEVELS)}", field="level")
    ref = member_room(actor, slug)
    membership = db.session.get(Membership, (ref.id, actor.id))
    membership.notify = level
    room = db.session.get(Room, ref.id)
    reply = {"room": ref.slug, "notify": notify_level(room, level)}
    changes.after_commit(lambda: events.notify_level(actor.id, reply))
    db.session.commit()
    return reply
