"""Messages: send (durable and idempotent), history, edit, delete; how a message reads
(with the message it replies to and its reactions)."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import bindparam, case, delete as delete_rows, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from .. import metrics
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..extensions import db
from ..models import Message, Reaction, Room, User, isoformat, utcnow
from . import Actor, changes, mentions
from .ratelimit import limits
from .rooms import RoomRef, _is_admin, _is_member, can_see, check_writable, member_room
from .text import is_blank

# A reply quotes the start of the original, whitespace runs as one space.
REPLY_EXCERPT_LENGTH = 100



def message_to_public(message: Message, slug: str, user: dict, *,
                      reply_to: dict | None = None, reactions: list | tuple = (),
                      mentioned: list[int] | None = None) -> dict:
    """A Message object; ``mentioned``: the ids it mentions by name (``mentions.stored``)."""
    return {
        "id": message.id,
        "room": slug,
        "user": user,
        "body": message.body,
        "created_at": isoformat(message.created_at),
        "edited_at": isoformat(message.edited_at),
        "client_id": message.client_id,
        "reply_to": reply_to,
        "reactions": list(reactions),
        "mentions": mentioned or [],
        "mentions_room": bool(message.mentions_room),
    }


def excerpt(body: str) -> str:
    return " ".join(body.split())[:REPLY_EXCERPT_LENGTH]


def quote(original_id: int | None, *, deleted: bool, body: str | None,
          author: dict | None) -> dict | None:
    """The ``reply_to`` of a message answering ``original_id`` (None: it answers nothing).

    An original that is deleted (or gone) is quoted without its author or text.
    """
    if original_id is None:
        return None
    if deleted or body is None:
        return {"id": original_id, "author": None, "excerpt": None, "deleted": True}
    return {"id": original_id, "author": author, "excerpt": excerpt(body), "deleted": False}


def reactions_of(message_ids: list[int], viewer_id: int | None) -> dict[int, list[dict]]:
    """Each message's reactions, ``[{"emoji", "count", "me"}]`` in the order they were
    first given: one query for a whole page. ``me``: whether ``viewer_id`` is among them.
    """
    if not message_ids:
        return {}
    mine = func.sum(case((Reaction.user_id == (viewer_id or 0), 1), else_=0))
    first = func.min(Reaction.created_at)
    rows = db.session.execute(
        select(Reaction.message_id, Reaction.emoji, func.count(), mine)
        .where(Reaction.message_id.in_(message_ids))
        .group_by(Reaction.message_id, Reaction.emoji)
        .order_by(Reaction.message_id, first, Reaction.emoji)).all()
    found: dict[int, list[dict]] = {}
    for message_id, emoji, count, me in rows:
        found.setdefault(message_id, []).append({"emoji": emoji, "count": count, "me": bool(me)})
    return found


def as_broadcast(reactions: list[dict]) -> list[dict]:
    """Reactions as a live event carries them: the same for every receiver, so no ``me``."""
    return [{"emoji": r["emoji"], "count": r["count"]} for r in reactions]


def author(uid, name, bot, shown) -> dict:
    return {"id": uid, "username": name, "bot": bot, "display_name": shown}


_Original = aliased(Message, name="original")
_OriginalAuthor = aliased(User, name="original_author")


def with_quotes(query):
    """``query`` over Message, joined to what each message replies to (one query, no N+1)."""
    return (query.add_columns(_Original.deleted, _Original.body, _OriginalAuthor.id,
                              _OriginalAuthor.username, _OriginalAuthor.is_bot,
                              _OriginalAuthor.display_name)
            .outerjoin(_Original, _Original.id == Message.reply_to_id)
            .outerjoin(_OriginalAuthor, _OriginalAuthor.id == _Original.user_id))


def quote_of(message: Message, deleted, body, uid, name, bot, shown) -> dict | None:
    return quote(message.reply_to_id, deleted=bool(deleted), body=body,
                 author=author(uid, name, bot, shown) if uid is not None else None)


def one_message(message: Message, slug: str, viewer_id: int | None) -> dict:
    """A single stored message as ``viewer_id`` reads it now (a replayed send, an edit)."""
    uid, name, bot, shown, *original = db.session.execute(
        with_quotes(select(User.id, User.username, User.is_bot, User.display_name)
                     .select_from(Message)
                     .join(User, User.id == Message.user_id))
        .where(Message.id == message.id)).one()
    reactions = reactions_of([message.id], viewer_id).get(message.id, [])
    mentioned = mentions.stored([message.id]).get(message.id) if "@" in message.body else None
    return message_to_public(message, slug, author(uid, name, bot, shown),
                             reply_to=quote_of(message, *original), reactions=reactions,
                             mentioned=mentioned)


def check_body(body: str) -> str:
    limit = current_app.config["MESSAGE_MAX_LENGTH"]
    if is_blank(body):
        raise Invalid("a message cannot be empty", field="body")
    if len(body) > limit:
        raise Invalid(f"a message is at most {limit} characters", field="body")
    return body


def clamp_limit(limit: int | None) -> int:
    cfg = current_app.config
    return min(limit or cfg["HISTORY_DEFAULT_LIMIT"], cfg["HISTORY_MAX_LIMIT"])


def page(room: Room | RoomRef, *, before: int | None, after: int | None,
         limit: int | None, viewer_id: int | None = None) -> tuple[list[dict], bool]:
    """One page of a room's live messages, ascending by id, and ``has_more``.

    ``after``: the first messages past that id (catch-up; more may follow).
    ``before`` or neither: the latest messages before it (older may remain).
    Each message carries what it replies to (read now: a deleted original
    reads as deleted) and its reactions, ``me`` meaning ``viewer_id``'s: two
    queries for the whole page.
    """
    limit = clamp_limit(limit)
    query = with_quotes(select(Message, User.id, User.username, User.is_bot, User.display_name)
                         .join(User, User.id == Message.user_id)
                         .where(Message.room_id == room.id, Message.deleted.is_(False)))
    if after is not None:
        query = query.where(Message.id > after).order_by(Message.id.asc())
    else:
        if before is not None:
            query = query.where(Message.id < before)
        query = query.order_by(Message.id.desc())
    rows = db.session.execute(query.limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if after is None:
        rows.reverse()
    reactions = reactions_of([row[0].id for row in rows], viewer_id)
    # Only a body with "@" can mention anyone: most pages need no lookup.
    mentioned = mentions.stored([m.id for m, *_ in rows if "@" in m.body])
    return [message_to_public(m, room.slug, author(uid, name, bot, shown),
                              reply_to=quote_of(m, *original),
                              reactions=reactions.get(m.id, ()), mentioned=mentioned.get(m.id))
            for m, uid, name, bot, shown, *original in rows], has_more


def page_around(room: Room | RoomRef, message_id: int, limit: int | None,
                viewer_id: int | None = None) -> dict:
    """The page of ``room`` centred on ``message_id``, ascending by id.

    Half the page (rounded down) is older than the message; the message, if
    it is live, and what follows fill the rest. ``has_more``: older messages
    remain (as for ``before``); ``has_newer``: newer ones remain, which the
    reader fetches with ``after`` the last id.
    """
    limit = clamp_limit(limit)
    older, has_more = page(room, before=message_id, after=None, limit=max(limit // 2, 1),
                           viewer_id=viewer_id)
    newer, has_newer = page(room, before=None, after=message_id - 1,
                            limit=max(limit - len(older), 1), viewer_id=viewer_id)
    return {"messages": older + newer, "has_more": has_more, "has_newer": has_newer}


def history(actor: Actor, slug: str, *, before: int | None = None,
            after: int | None = None, limit: int | None = None) -> tuple[list[dict], bool]:
    room = member_room(actor, slug)
    return page(room, before=before, after=after, limit=limit, viewer_id=actor.id)


def history_around(actor: Actor, slug: str, message_id: int, limit: int | None = None) -> dict:
    """``{"messages", "has_more", "has_newer"}``: the page around a message (``page_around``)."""
    return page_around(member_room(actor, slug), message_id, limit)


def history_reply(actor: Actor, slug: str, *, before: int | None = None,
                  after: int | None = None, cursor: int | None = None,
                  around: int | None = None, limit: int | None = None) -> dict:
    """The ``message:history`` ack: a page of messages, or of changes after ``cursor``.

    Either way it carries ``cursor``, the room's log position as of the page.
    """
    room = member_room(actor, slug)
    if cursor is not None:
        return catch_up(room, cursor, limit, viewer_id=actor.id)
    # Read before the page: every change up to it is reflected in the page.
    position = changes.current_position(room.id)
    if around is not None:
        return {**page_around(room, around, limit, viewer_id=actor.id), "cursor": position}
    messages, has_more = page(room, before=before, after=after, limit=limit,
                              viewer_id=actor.id)
    return {"messages": messages, "has_more": has_more, "cursor": position}


def catch_up(room: Room | RoomRef, cursor: int, limit: int | None, *,
             viewer_id: int | None = None) -> dict:
    """Every change of ``room`` after ``cursor``, a page at a time.

    ``{"changes": [{"event", "data"}...], "has_more", "cursor", "messages": []}``;
    a cursor that cannot be caught up (older than the log keeps) answers
    ``"reset": true`` with the latest page of messages, from which the
    client rebuilds the room.
    """
    result = changes.after(room.id, cursor, clamp_limit(limit))
    if result.reset:
        messages, has_more = page(room, before=None, after=None, limit=limit,
                                  viewer_id=viewer_id)
        return {"reset": True, "changes": [], "messages": messages, "has_more": has_more,
                "cursor": result.cursor}
    return {"changes": result.changes, "messages": [], "has_more": result.has_more,
            "cursor": result.cursor}


# The send path's two statements, built once (SQLAlchemy then reuses their
# compiled form) and run as Core on the session's connection: a send is the
# hottest path of the server and needs no ORM unit of work.
_messages = Message.__table__
_OWN_MESSAGE_ID = select(_messages.c.id).where(_messages.c.user_id == bindparam("user_id"),
                                                _messages.c.client_id == bindparam("client_id"))
_INSERT_MESSAGE = insert(_messages).returning(_messages.c.id)


def _own_message(actor: Actor, client_id: str) -> Message | None:
    # The id alone first: nearly every send is new.
    message_id = db.session.connection().execute(
        _OWN_MESSAGE_ID, {"user_id": actor.id, "client_id": client_id}).scalar_one_or_none()
    return None if message_id is None else db.session.get(Message, message_id)


def _replay(message: Message, room: RoomRef) -> dict:
    """The ack of a send whose ``client_id`` names a stored message of the author.

    The same room: a retry, acked with the message as stored. Another room:
    ``conflict`` (a client reusing ids would otherwise get another room's
    message acked as this one). Deleted since: ``not_found``, as history no
    longer shows it; the id stays spent. docs/protocol.md gives the reasons.
    """
    if message.room_id != room.id:
        raise Conflict("this client_id already names a message in another room",
                       field="client_id")
    if message.deleted:
        raise NotFound("the message sent with this client_id has been deleted",
                       field="client_id")
    return one_message(message, room.slug, message.user_id)


_ORIGINAL = (select(_messages.c.room_id, _messages.c.deleted, _messages.c.body,
                    User.__table__.c.id, User.__table__.c.username, User.__table__.c.is_bot,
                    User.__table__.c.display_name)
             .join(User.__table__, User.__table__.c.id == _messages.c.user_id)
             .where(_messages.c.id == bindparam("id")))


def _quote_for(room: RoomRef, reply_to: int) -> dict:
    """What a new reply quotes: a live message of the same room, else ``not_found``.

    Read under the room's lock (after ``take_position``): a deletion of the
    original either committed before (and is seen here) or waits for this
    send and then finds the reply to unquote.
    """
    row = db.session.connection().execute(_ORIGINAL, {"id": reply_to}).first()
    if row is None or row.room_id != room.id or row.deleted:
        raise NotFound("no such message in this room to reply to", field="reply_to")
    return quote(reply_to, deleted=False, body=row.body,
                 author=author(row.id, row.username, row.is_bot, row.display_name))


def send(actor: Actor, room: RoomRef, body: str, client_id: str,
         reply_to: int | None = None) -> dict:
    """Store a message and broadcast it; the same ``client_id`` acks the same message.

    The reply is returned only after the commit; the broadcast follows it.
    ``room`` must come from ``member_room`` (or a connection that joined it).
    ``reply_to``: the id of a live message of the same room that this one
    answers (``not_found`` otherwise; then the send's rate-limit unit is
    given back, as for any send refused before storing).
    """
    body = check_body(body)
    check_writable(room)
    existing = _own_message(actor, client_id)
    if existing is not None:
        return _replay(existing, room)
    # Read before the write transaction starts (a query for a body with "@").
    found = mentions.find(actor, room, body)
    # Spent here, in one atomic step of the limiter (a Lua script on Redis),
    # so that concurrent sends on several connections or processes can never
    # pass the limit together; and outside the transaction: with Redis this
    # is network I/O, and a gevent switch inside an SQLite write transaction
    # stalls the worker. Invalid sends, refused sends and replays of a stored
    # client_id were answered above and spend nothing; a send that fails on
    # the database after this point (``internal``) keeps its unit spent.
    # An @room also spends a unit of its own limit: both or neither.
    if found.room:
        mentions.spend(actor, found, sending=True)
    else:
        limits.hit("message", actor.id, actor.username)
    created_at = utcnow()
    try:
        # The room's next log position first: taking it locks the room's row
        # until the commit, so sends to one room take ids, positions and
        # commit in one order (a client catching up "after id N" or "after
        # position N" never misses one that committed late).
        position = changes.take_position(room.id)
        try:
            quoted = None if reply_to is None else _quote_for(room, reply_to)
        except NotFound:
            db.session.rollback()
            limits.refund("message", actor.id)
            raise
        # One INSERT ... RETURNING id, without the ORM's unit of work: the
        # reply is built from what was written, with no reload after commit.
        message_id = db.session.connection().execute(_INSERT_MESSAGE, {
            "room_id": room.id, "user_id": actor.id, "client_id": client_id, "body": body,
            "created_at": created_at, "deleted": False, "reply_to_id": reply_to,
            "mentions_room": found.room}).scalar_one()
        mentions.store(message_id, found)
        reply = {"id": message_id, "room": room.slug, "user": actor.to_public(), "body": body,
                 "created_at": isoformat(created_at), "edited_at": None,
                 "client_id": client_id, "reply_to": quoted, "reactions": [],
                 "mentions": list(found.user_ids), "mentions_room": found.room}
        changes.record(room.id, room.slug, "message", reply, message_id=message_id,
                       position=position)
        mentions.push_after_commit(room.slug, reply, found)
        db.session.commit()
    except IntegrityError:
        # The same client_id raced in on another connection: ack that one.
        db.session.rollback()
        existing = _own_message(actor, client_id)
        if existing is None:
            raise
        return _replay(existing, room)
    metrics.message_stored()
    return reply


# A message the caller cannot see answers exactly like an id that never
# existed: same code, field and words.
def _no_such_message() -> NotFound:
    return NotFound("no such message", field="id")


def _live_message(message_id: int) -> tuple[Message, Room]:
    row = db.session.execute(
        select(Message, Room).join(Room, Room.id == Message.room_id)
        .where(Message.id == message_id)
    ).first()
    if row is None or row[0].deleted:
        raise _no_such_message()
    return row[0], row[1]


def _message_for(actor: Actor, message_id: int, action: str) -> tuple[Message, Room]:
    """The live message ``message_id`` if ``actor`` may ``action`` ("edit", "delete") it.

    The one rule for changing a message, read at the moment of the change
    (rights end with membership, not with the connection):

    - edit: its author, while they can see the room (a private room's member);
    - delete: its author while they can see the room, the room's owner while
      a member, or an admin (always);
    - anyone else who can see the room gets ``forbidden``; who cannot,
      ``not_found`` exactly as for a missing id.
    """
    message, room = _live_message(message_id)
    member = _is_member(room.id, actor.id)
    sees = can_see(room, member)
    author = message.user_id == actor.id
    if action == "edit":
        if not sees:
            raise _no_such_message()
        if not author:
            raise Forbidden("only the author may edit a message", field="id")
        return message, room
    if (author and sees) or (member and room.owner_id == actor.id) or _is_admin(actor):
        return message, room
    if not sees:
        raise _no_such_message()
    raise Forbidden("only the author, the room owner or an admin may delete", field="id")


def edit(actor: Actor, message_id: int, body: str) -> dict:
    """The author changes a message's text; its mentions follow the new text.

    The ack is the message as the author reads it (with ``me`` in its
    reactions); the room gets it as every reader does (without). Members it
    now mentions, and not before, get ``mention`` after the commit; an
    ``@room`` it did not have spends the ``@room`` limit.
    """
    body = check_body(body)
    message, room = _message_for(actor, message_id, "edit")
    ref = RoomRef.of(room)
    check_writable(ref)
    # Read before the message is changed (a query would flush the change).
    before = mentions.stored([message.id]).get(message.id, [])
    found = mentions.find(actor, ref, body)
    had_room = bool(message.mentions_room)
    if found.room and not had_room:
        mentions.spend(actor, found, sending=False)
    message.body = body
    message.edited_at = utcnow()
    message.mentions_room = found.room
    mentions.replace(message.id, before, found)
    db.session.flush()
    reply = one_message(message, room.slug, actor.id)
    broadcast = {**reply, "reactions": as_broadcast(reply["reactions"])}
    changes.record(room.id, room.slug, "message:updated", broadcast, message_id=message.id)
    # An @room kept from before told everyone already.
    told = {user_id for user_id, _ in found.pushes} if had_room and found.room else set(before)
    mentions.push_after_commit(room.slug, broadcast, found, told)
    db.session.commit()
    return reply


def delete(actor: Actor, message_id: int, *, as_admin: bool = False) -> None:
    """Author, room owner or admin (``_message_for``); ``as_admin`` is the console's path.

    Its reactions go with it, and the replies that quote it quote it as
    deleted from now on, in history and in the log alike.
    """
    message, room = (_live_message(message_id) if as_admin
                     else _message_for(actor, message_id, "delete"))
    message.deleted = True
    message.deleted_at = utcnow()
    db.session.execute(delete_rows(Reaction).where(Reaction.message_id == message.id))
    # The log keeps no trace of the text: only that the message is gone.
    changes.forget_message(room.id, message.id)
    changes.unquote(room.id, message.id,
                    quote(message.id, deleted=True, body=None, author=None))
    changes.record(room.id, room.slug, "message:deleted", {"id": message.id, "room": room.slug},
                   message_id=message.id)
    db.session.commit()
