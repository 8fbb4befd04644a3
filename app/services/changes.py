"""The rooms' change log, and the outbox that publishes a transaction's changes after commit.

Every change a client can see (a message sent, edited or deleted; a reaction
added or removed; a room renamed, its topic changed, archived or reopened; a
member added or gone) is ``record``-ed by the service that makes it, inside
its transaction: the room's counter gives it the next position, a
``room_changes`` row keeps it, and the outgoing event waits in the session's outbox. After the commit, the
outbox is published once (Socket.IO rooms and the SSE hub, through
``app.events``); a rollback, or a session closed without a commit, discards
it. Services never emit: whatever else must only happen after the commit
(a push to a user's channel, an audit entry to the admins, a control action
on the bus) is queued with ``after_commit``.

Why a counter on the room row rather than a global sequence: taking the next
position is an ``UPDATE`` of that row, whose lock is held until the commit,
so two writers of one room take positions one after the other and commit in
that order. A later position can never become visible before an earlier one
(with a sequence it can, under concurrent writers on PostgreSQL), which is
what lets a client "continue after N" without missing anything. SQLite has
one writer anyway.

Outgoing webhooks are queued from here too (``webhooks.enqueue``), in the
same transaction, so a delivery exists exactly when its change does.

Catch-up (``after``) reads the log after a cursor. Retention (``prune``)
removes old entries and raises the room's floor; a cursor below the floor,
or past the room's newest position (a restored database), answers ``reset``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import bindparam, delete, event, func, insert, select, update
from sqlalchemy.orm import Session

from .. import events
from ..extensions import db
from ..models import Message, Room, RoomChange, utcnow

log = logging.getLogger(__name__)

_OUTBOX = "parley_outbox"

_rooms = Room.__table__
_changes = RoomChange.__table__
# Built once: the send path runs these for every message.
_NEXT_POSITION = (update(_rooms).where(_rooms.c.id == bindparam("room_id"))
                  .values(last_position=_rooms.c.last_position + 1)
                  .returning(_rooms.c.last_position))
_INSERT_CHANGE = insert(_changes)
_FORGET_MESSAGE = delete(_changes).where(_changes.c.room_id == bindparam("room_id"),
                                         _changes.c.message_id == bindparam("message_id"))


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded change, as published: ``data`` already carries its ``cursor``."""

    room_id: int
    slug: str
    position: int
    event: str
    data: dict


def _dumps(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# -- recording ------------------------------------------------------------------

def take_position(room_id: int) -> int:
    """The room's next log position, for a ``record`` later in this transaction.

    The ``UPDATE`` locks the room's row until the commit (see above).
    """
    return db.session.connection().execute(_NEXT_POSITION, {"room_id": room_id}).scalar_one()


def record(room_id: int, slug: str, name: str, payload: dict, *,
           message_id: int | None = None, position: int | None = None) -> int:
    """Log a change of a room in the current transaction; published after its commit.

    ``name`` and ``payload`` are the socket event and its payload as a joined
    connection receives it; the payload gains ``"cursor"``, the change's
    position (taken now unless given by ``take_position``), which is returned.
    """
    connection = db.session.connection()
    if position is None:
        position = connection.execute(_NEXT_POSITION, {"room_id": room_id}).scalar_one()
    data = {**payload, "cursor": position}
    connection.execute(_INSERT_CHANGE, {
        "room_id": room_id, "position": position, "event": name, "payload": _dumps(data),
        "message_id": message_id, "created_at": utcnow()})
    # Outgoing webhooks: their deliveries commit with the change (an outbox).
    webhooks.enqueue(connection, room_id, slug, position, name, data)
    _outbox(db.session).append(Change(room_id, slug, position, name, data))
    return position


def forget_message(room_id: int, message_id: int) -> None:
    """Compaction: remove a message's entries, so the log never serves deleted text.

    Called in the deleting transaction, before its ``message:deleted`` is
    recorded (which stays, for clients that hold the message). Webhook
    deliveries of those entries drop the text too.
    """
    connection = db.session.connection()
    webhooks.forget_message(connection, room_id, message_id)
    connection.execute(_FORGET_MESSAGE, {"room_id": room_id, "message_id": message_id})


def unquote(room_id: int, message_id: int, stub: dict) -> None:
    """Compaction for replies: log entries of messages that quote ``message_id`` get
    ``stub`` (``"deleted": true``, no text) as their ``reply_to``.

    Called in the deleting transaction, as ``forget_message``: catch-up and
    the SSE feed then never serve the deleted text inside a reply either.
    Replies are found by ``messages.reply_to_id`` (indexed).
    """
    messages = Message.__table__
    connection = db.session.connection()
    rows = connection.execute(
        select(_changes.c.position, _changes.c.payload)
        .where(_changes.c.room_id == room_id,
               _changes.c.event.in_(("message", "message:updated")),
               _changes.c.message_id.in_(
                   select(messages.c.id).where(messages.c.reply_to_id == message_id)))).all()
    for position, payload in rows:
        data = json.loads(payload)
        data["reply_to"] = stub
        connection.execute(update(_changes).where(_changes.c.room_id == room_id,
                                                  _changes.c.position == position)
                           .values(payload=_dumps(data)))


def after_commit(action: Callable[[], object]) -> None:
    """Run ``action`` once the current transaction commits; never if it rolls back.

    ``action`` runs outside any transaction and must not use the session:
    build what it sends before the commit.
    """
    _outbox(db.session).append(action)


def _outbox(session) -> list:
    # session.info lives as long as the session; the listeners below empty
    # it at the end of every transaction.
    return session.info.setdefault(_OUTBOX, [])


@event.listens_for(Session, "after_commit")
def _publish(session) -> None:
    queued = session.info.pop(_OUTBOX, None)
    if not queued:
        return
    for item in queued:
        try:
            if isinstance(item, Change):
                events.change(item)
            else:
                item()
        except Exception:
            # One failed push (Redis away) must not stop the others: the
            # change is stored and catch-up will deliver it.
            log.exception("publishing after commit failed")


@event.listens_for(Session, "after_transaction_end")
def _discard(session, transaction) -> None:
    # After a commit the outbox is already gone; after a rollback, or a
    # session closed without committing, what it held never happened.
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_OUTBOX, None)


# -- reading ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CatchUp:
    """The changes of a room after a cursor: ``{"event", "data"}`` each, in order.

    ``cursor`` is where to continue from; ``reset`` says the cursor could
    not be caught up (pruned, or unknown to this database): reload the room.
    """

    changes: list[dict]
    has_more: bool
    cursor: int
    reset: bool = False


def current_position(room_id: int) -> int:
    """The position of the room's latest committed change (0 before any)."""
    return db.session.execute(
        select(_rooms.c.last_position).where(_rooms.c.id == room_id)).scalar_one()


def after(room_id: int, cursor: int, limit: int) -> CatchUp:
    """Up to ``limit`` changes after ``cursor``, oldest first.

    The room's counter is read before the log: every position at or below
    it had committed with its entry, so when nothing more follows, the
    counter itself is a cursor that skips nothing.
    """
    newest, floor = db.session.execute(
        select(_rooms.c.last_position, _rooms.c.floor_position)
        .where(_rooms.c.id == room_id)).one()
    if cursor < floor or cursor > newest:
        return CatchUp([], False, newest, reset=True)
    rows = db.session.execute(
        select(_changes.c.position, _changes.c.event, _changes.c.payload)
        .where(_changes.c.room_id == room_id, _changes.c.position > cursor)
        .order_by(_changes.c.position).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    changes = [{"event": name, "data": json.loads(payload)} for _, name, payload in rows]
    last = rows[-1].position if rows else cursor
    return CatchUp(changes, has_more, last if has_more else max(last, newest))


def entries_after(room_id: int, cursor: int,
                  limit: int) -> tuple[list[tuple[int, str, str]], int, int] | None:
    """For the SSE feed: up to ``limit`` raw entries after ``cursor``
    (``(position, event, payload text)``), the room's newest position and its floor;
    ``None`` once the room has been deleted.

    The counter is read first, as in ``after``.
    """
    counters = db.session.execute(
        select(_rooms.c.last_position, _rooms.c.floor_position)
        .where(_rooms.c.id == room_id)).first()
    if counters is None:
        return None
    newest, floor = counters
    rows = db.session.execute(
        select(_changes.c.position, _changes.c.event, _changes.c.payload)
        .where(_changes.c.room_id == room_id, _changes.c.position > cursor)
        .order_by(_changes.c.position).limit(limit)).all()
    return [tuple(row) for row in rows], newest, floor


# -- retention ----------------------------------------------------------------------

def prune(now=None) -> int:
    """Drop entries older than the retention window, room by room; how many went.

    An entry is kept while it is among its room's newest
    ``CHANGE_LOG_RETENTION_ENTRIES`` or younger than
    ``CHANGE_LOG_RETENTION_DAYS``: whichever keeps more. The room's floor
    becomes the newest position removed. Each room is its own short
    transaction, so writers wait for at most one room's delete.
    """
    cfg = current_app.config
    keep_entries = cfg["CHANGE_LOG_RETENTION_ENTRIES"]
    cutoff = (now or utcnow()) - timedelta(days=cfg["CHANGE_LOG_RETENTION_DAYS"])
    removed = 0
    room_ids = db.session.execute(
        select(_rooms.c.id).where(_rooms.c.last_position > keep_entries)).scalars().all()
    db.session.commit()
    for room_id in room_ids:
        try:
            removed += _prune_room(room_id, keep_entries, cutoff)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("pruning the change log of room %s failed", room_id)
    return removed


def _prune_room(room_id: int, keep_entries: int, cutoff) -> int:
    newest, floor = db.session.execute(
        select(_rooms.c.last_position, _rooms.c.floor_position)
        .where(_rooms.c.id == room_id)).one()
    old = db.session.execute(
        select(func.max(_changes.c.position))
        .where(_changes.c.room_id == room_id, _changes.c.created_at < cutoff)).scalar()
    upto = min(newest - keep_entries, old or 0)
    if upto <= floor:
        return 0
    result = db.session.execute(delete(_changes).where(_changes.c.room_id == room_id,
                                                       _changes.c.position <= upto))
    db.session.execute(update(_rooms).where(_rooms.c.id == room_id,
                                            _rooms.c.floor_position < upto)
                       .values(floor_position=upto))
    log.info("change log of room %s pruned up to %s", room_id, upto)
    return result.rowcount or 0


def prune_loop(app) -> None:
    """Prune every ``CHANGE_LOG_PRUNE_SECONDS``, for the life of the process.

    Each process runs one; they may overlap harmlessly (a delete of what is
    already gone removes nothing).
    """
    from ..extensions import socketio

    while True:
        socketio.sleep(app.config["CHANGE_LOG_PRUNE_SECONDS"])
        with app.app_context():
            try:
                prune()
            except Exception:
                log.exception("pruning the change log failed")
            finally:
                db.session.remove()


# Last: app.services.webhooks imports this module (after_commit).
from . import webhooks  # noqa: E402
