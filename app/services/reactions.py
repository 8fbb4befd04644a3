"""Emoji reactions on messages: add and remove, one per user, emoji and message.

A change is one ``reaction:updated`` entry in the room's change log
(``{"room", "id", "emoji", "user", "added", "count"}``): ``count`` is how
many people reacted with that emoji after the change, so a client applying
the log in order holds exact counts, and one whose own id is ``user.id``
knows whether it reacted (the payload is the same for every receiver).
Adding a reaction already given, or removing one not given, changes and
records nothing.

What a message carries (``reactions``, with ``me``) is read by
``messages.reactions_of``.
"""
from __future__ import annotations

import emoji as unicode_emoji
from flask import current_app
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, Forbidden, Invalid
from ..extensions import db
from ..models import Message, Reaction, utcnow
from . import Actor, changes
from .messages import _live_message, _no_such_message
from .ratelimit import limits
from .rooms import RoomRef, _is_member, can_see, check_writable

# The longest emoji Unicode lists are 10 code points (a kiss with two skin
# tones: 👩🏻‍❤️‍💋‍👨🏿); anything longer is not one emoji.
EMOJI_MAX_CODE_POINTS = 10


def check_emoji(text: str) -> str:
    """``text`` if it is exactly one emoji of Unicode's list, in its fully-qualified
    form (``❤`` becomes ``❤️``, so both count as one reaction); ``invalid`` otherwise.

    Any emoji is allowed, as in any team chat; text, digits, control
    characters and several emoji in a row are not.
    """
    if not text or len(text) > EMOJI_MAX_CODE_POINTS or not unicode_emoji.is_emoji(text):
        raise Invalid("a reaction is a single emoji", field="emoji")
    qualified = unicode_emoji.emojize(unicode_emoji.demojize(text))
    return qualified if unicode_emoji.is_emoji(qualified) else text


def add(actor: Actor, message_id: int, emoji: str) -> None:
    """``actor`` reacts to a live message of a room they are a member of."""
    _change(actor, message_id, check_emoji(emoji), added=True)


def remove(actor: Actor, message_id: int, emoji: str) -> None:
    """``actor`` takes back their reaction (nothing happens if there was none)."""
    _change(actor, message_id, check_emoji(emoji), added=False)


def _reactable(actor: Actor, message_id: int) -> tuple[Message, RoomRef]:
    """The live message if ``actor`` may react to it: a member of its room, which is
    not archived. Who cannot see the room gets ``not_found`` exactly as for an
    id that does not exist; a non-member of a public room ``forbidden``; an
    archived room ``forbidden``; a deleted message ``not_found``.
    """
    message, room = _live_message(message_id)
    member = _is_member(room.id, actor.id)
    if not can_see(room, member):
        raise _no_such_message()
    if not member:
        raise Forbidden("join the room first", field="id")
    ref = RoomRef.of(room)
    check_writable(ref)
    return message, ref


def _held(message_id: int, user_id: int, emoji: str) -> bool:
    return db.session.get(Reaction, (message_id, user_id, emoji)) is not None


def _change(actor: Actor, message_id: int, emoji: str, *, added: bool) -> None:
    # Every well-formed request spends a unit, answered or not: a no-op or a
    # refusal still reads the database. Spent before the transaction, as a
    # send's (Redis is network I/O).
    limits.hit("reaction", actor.id, actor.username)
    message, room = _reactable(actor, message_id)
    if _held(message.id, actor.id, emoji) == added:
        db.session.rollback()
        return
    # The room's lock (held to the commit) orders this with every other
    # change of the room: the distinct-emoji cap, the count and the message
    # still being live are read under it.
    position = changes.take_position(room.id)
    try:
        still_live = db.session.execute(
            select(Message.deleted).where(Message.id == message.id)).scalar_one()
        if still_live:
            raise _no_such_message()
        if added:
            _insert(message.id, actor.id, emoji)
        elif not db.session.execute(delete(Reaction).where(
                Reaction.message_id == message.id, Reaction.user_id == actor.id,
                Reaction.emoji == emoji)).rowcount:
            db.session.rollback()
            return
    except IntegrityError:
        # The same reaction raced in on another connection: that one stands.
        db.session.rollback()
        return
    except Exception:
        db.session.rollback()
        raise
    count = db.session.execute(
        select(func.count()).select_from(Reaction)
        .where(Reaction.message_id == message.id, Reaction.emoji == emoji)).scalar_one()
    changes.record(room.id, room.slug, "reaction:updated", {
        "room": room.slug, "id": message.id, "emoji": emoji, "user": actor.to_public(),
        "added": added, "count": count}, message_id=message.id, position=position)
    db.session.commit()


def _insert(message_id: int, user_id: int, emoji: str) -> None:
    cap = current_app.config["REACTIONS_PER_MESSAGE_MAX"]
    given = set(db.session.execute(
        select(Reaction.emoji).where(Reaction.message_id == message_id).distinct()).scalars())
    if emoji not in given and len(given) >= cap:
        raise Conflict(f"a message carries at most {cap} different reactions: "
                       "add to one it has", field="emoji")
    db.session.execute(insert(Reaction).values(message_id=message_id, user_id=user_id,
                                               emoji=emoji, created_at=utcnow()))
