"""Messages: send (durable and idempotent), history, edit, delete."""
from __future__ import annotations

from flask import current_app
from gevent import Timeout
from sqlalchemy import bindparam, select

from .. import metrics
from ..errors import Conflict, Forbidden, Internal, Invalid, NotFound, RateLimited
from ..extensions import db
from ..models import Message, Room, User, isoformat, utcnow
from . import Actor, changes, send_queue
from .ratelimit import limits
from .rooms import RoomRef, _is_admin, _is_member, can_see, check_writable, member_room
from .text import is_blank


def message_to_public(message: Message, slug: str, user: dict) -> dict:
    return {
        "id": message.id,
        "room": slug,
        "user": user,
        "body": message.body,
        "created_at": isoformat(message.created_at),
        "edited_at": isoformat(message.edited_at),
        "client_id": message.client_id,
    }


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
         limit: int | None) -> tuple[list[dict], bool]:
    """One page of a room's live messages, ascending by id, and ``has_more``.

    ``after``: the first messages past that id (catch-up; more may follow).
    ``before`` or neither: the latest messages before it (older may remain).
    """
    limit = clamp_limit(limit)
    query = (select(Message, User.id, User.username, User.is_bot)
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
    return [message_to_public(m, room.slug, {"id": uid, "username": name, "bot": bot})
            for m, uid, name, bot in rows], has_more


def history(actor: Actor, slug: str, *, before: int | None = None,
            after: int | None = None, limit: int | None = None) -> tuple[list[dict], bool]:
    room = member_room(actor, slug)
    return page(room, before=before, after=after, limit=limit)


def history_reply(actor: Actor, slug: str, *, before: int | None = None,
                  after: int | None = None, cursor: int | None = None,
                  limit: int | None = None) -> dict:
    """The ``message:history`` ack: a page of messages, or of changes after ``cursor``.

    Either way it carries ``cursor``, the room's log position as of the page.
    """
    room = member_room(actor, slug)
    if cursor is not None:
        return catch_up(room, cursor, limit)
    # Read before the page: every change up to it is reflected in the page.
    position = changes.current_position(room.id)
    messages, has_more = page(room, before=before, after=after, limit=limit)
    return {"messages": messages, "has_more": has_more, "cursor": position}


def catch_up(room: Room | RoomRef, cursor: int, limit: int | None) -> dict:
    """Every change of ``room`` after ``cursor``, a page at a time.

    ``{"changes": [{"event", "data"}...], "has_more", "cursor", "messages": []}``;
    a cursor that cannot be caught up (older than the log keeps) answers
    ``"reset": true`` with the latest page of messages, from which the
    client rebuilds the room.
    """
    result = changes.after(room.id, cursor, clamp_limit(limit))
    if result.reset:
        messages, has_more = page(room, before=None, after=None, limit=limit)
        return {"reset": True, "changes": [], "messages": messages, "has_more": has_more,
                "cursor": result.cursor}
    return {"changes": result.changes, "messages": [], "has_more": result.has_more,
            "cursor": result.cursor}


# The replay check's statement, built once (SQLAlchemy then reuses its
# compiled form). New sends never run it: the writer's insert is the check
# (app/services/send_queue.py).
_messages = Message.__table__
_OWN_MESSAGE_ID = select(_messages.c.id).where(_messages.c.user_id == bindparam("user_id"),
                                                _messages.c.client_id == bindparam("client_id"))


def _own_message(actor: Actor, client_id: str) -> Message | None:
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
    return _existing_reply(message)


def _existing_reply(message: Message) -> dict:
    slug = db.session.execute(select(Room.slug).where(Room.id == message.room_id)).scalar_one()
    return message_to_public(message, slug, _author(message.user_id))


def _author(user_id: int) -> dict:
    return db.session.get(User, user_id).to_public()


def _stored_replay(actor: Actor, room: RoomRef, client_id: str) -> dict:
    existing = _own_message(actor, client_id)
    if existing is None:
        raise Internal("the message sent with this client_id could not be read")
    return _replay(existing, room)


def send(actor: Actor, room: RoomRef, body: str, client_id: str) -> dict:
    """Store a message and broadcast it; the same ``client_id`` acks the same message.

    The reply is returned only after the commit; the broadcast precedes it.
    ``room`` must come from ``member_room`` (or a connection that joined it).
    The write itself is this process's group commit (``send_queue``): this
    greenlet waits while the writer stores it with the sends queued beside it.
    """
    body = check_body(body)
    check_writable(room)
    # Spent here, in one atomic step of the limiter (a Lua script on Redis),
    # so that concurrent sends on several connections or processes can never
    # pass the limit together; and outside the transaction (with Redis this
    # is network I/O). Invalid and refused sends were answered above and
    # spend nothing; a replay of a stored client_id is known only once the
    # writer's insert found it, and gets its unit back. At the limit, a
    # client_id already stored is still answered as a replay (spending
    # nothing). A send that fails on the database after this point
    # (``internal``) keeps its unit spent.
    try:
        limits.hit("message", actor.id, actor.username)
    except RateLimited:
        if _own_message(actor, client_id) is None:
            raise
        return _stored_replay(actor, room, client_id)
    if db.session.registry.has() and db.session().in_transaction():
        # What the caller read (the room, on a connection that had not
        # joined it) gives its pooled connection back before the wait.
        db.session.commit()
    queue = send_queue.queue_of(current_app._get_current_object())
    try:
        outcome = queue.submit(send_queue.Send(actor, room.id, room.slug, body, client_id))
    except RateLimited:
        limits.refund("message", actor.id)
        raise
    except Timeout:
        # Not known to be stored: the client retries with its client_id.
        raise Internal("the message could not be stored in time") from None
    if outcome is send_queue.REPLAY:
        limits.refund("message", actor.id)
        return _stored_replay(actor, room, client_id)
    if outcome is send_queue.ARCHIVED:
        limits.refund("message", actor.id)
        raise send_queue.archived_error()
    metrics.message_stored()
    return outcome


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
    body = check_body(body)
    message, room = _message_for(actor, message_id, "edit")
    check_writable(RoomRef.of(room))
    message.body = body
    message.edited_at = utcnow()
    reply = message_to_public(message, room.slug, actor.to_public())
    changes.record(room.id, room.slug, "message:updated", reply, message_id=message.id)
    db.session.commit()
    return reply


def delete(actor: Actor, message_id: int, *, as_admin: bool = False) -> None:
    """Author, room owner or admin (``_message_for``); ``as_admin`` is the console's path."""
    message, room = (_live_message(message_id) if as_admin
                     else _message_for(actor, message_id, "delete"))
    message.deleted = True
    message.deleted_at = utcnow()
    # The log keeps no trace of the text: only that the message is gone.
    changes.forget_message(room.id, message.id)
    changes.record(room.id, room.slug, "message:deleted", {"id": message.id, "room": room.slug},
                   message_id=message.id)
    db.session.commit()
