"""Group commit for ``message:send``: one writer per process, one transaction per batch.

A send is checked where it arrives (body, membership, archived room, rate
limit: ``messages.send``), then queued here; its greenlet waits. This
process's writer takes everything queued at that moment and writes it in ONE
transaction (statements compiled once from Core and run on the DBAPI cursor;
no ORM session), commits, publishes the
changes exactly as the change log's outbox does (``events.change``, the same
payloads, in queue order), and only then wakes each waiter with its outcome:
the ack is never sent before the commit. Sends that arrive while a batch is
being written wait for the next batch, which writes them together. At low
load a batch is one send, written as soon as it arrives.

The batch's transaction, in this order:

1. The next positions of every room in the batch are reserved, one
   ``UPDATE rooms SET last_position = last_position + n ... RETURNING`` per
   room, in room id order. On PostgreSQL that locks the rooms' rows until the
   commit (always in the same order, so two writers cannot deadlock); on
   SQLite the first write takes the database's write lock. A room archived
   meanwhile (by another process, whose notice has not arrived yet) updates
   no row: its sends are refused with ``forbidden``, as they would have been
   a moment earlier.
2. Each message, in queue order: ``INSERT ... ON CONFLICT (user_id,
   client_id) DO NOTHING RETURNING id``. The idempotency check is the unique
   constraint itself: a ``client_id`` already stored (earlier, in another
   process, or earlier in this very batch) inserts nothing, and its waiter
   answers the replay from the stored message after the commit, exactly as
   before (the same message, ``conflict`` for another room, ``not_found``
   when deleted).
3. The rows inserted take their room's reserved positions in queue order;
   a room whose conflicts left positions unused gets its counter set back to
   the last one used (the row is still locked), so positions stay dense.
4. The change-log rows, in one ``executemany``; then the commit.

On PostgreSQL a step 0 comes first: ``SELECT ... FOR UPDATE SKIP LOCKED``
of the batch's rooms. A room whose row another transaction holds (an edit,
a room change, the writer of another process) is left out of this batch: its
sends, and every later send to it, go to a lane of their own, a greenlet that
writes them in order as soon as the row is free, so one held row never stalls
the sends to every other room.

Ordering: within a room, ids (from the table's sequence or SQLite's
autoincrement) and positions are both taken in queue order inside one
transaction that holds the room's row from before its first insert to its
commit, so order by id, order by position and order of commit agree, as the
change log's docstring requires (a client catching up "after N" misses
nothing). Several processes are safe for the same reason: each has its own
writer, and on PostgreSQL the room row's lock serializes the writers of a
room (SQLite has one writer anyway). Edits, deletions and room changes still
take positions through ``changes.record`` in their own transactions, under the
same lock.

Failures: if the batch's transaction fails, it is rolled back and its sends
are written again one by one, so a row the database refuses (a constraint
the database holds that the checks before the queue do not know of) fails
alone; its waiter gets
the error (``internal``) and the others are acked. When a send fails in a
way that is not about its row (the database is down), the rest of the batch
fail with it without more tries: every waiter gets an error ack and nothing
is acked that was not committed.

Bounds: at most ``SEND_QUEUE_MAX`` sends wait per process; past that a send
is refused with ``rate_limited`` (``retry_after`` 1 s) instead of growing
memory. A batch holds at most ``SEND_BATCH_MAX`` sends. Shutdown
(``app.sockets.shutdown``) calls ``drain`` so that what was queued is written
before the process exits.
"""
from __future__ import annotations

import logging
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

from gevent import getcurrent, sleep, spawn
from gevent.event import AsyncResult
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError

from .. import events, metrics
from ..errors import Forbidden, RateLimited
from ..extensions import db
from ..models import Message, Room, RoomChange, isoformat, utcnow
from . import Actor
from .changes import Change, _dumps

log = logging.getLogger(__name__)

_messages = Message.__table__
_rooms = Room.__table__
_changes = RoomChange.__table__

# Built once per dialect (SQLAlchemy caches their compiled form).
_RESERVE = (update(_rooms)
            .where(_rooms.c.id == bindparam("room_id"), _rooms.c.archived.is_(False))
            .values(last_position=_rooms.c.last_position + bindparam("count"))
            .returning(_rooms.c.last_position))
_GIVE_BACK = (update(_rooms).where(_rooms.c.id == bindparam("room_id"))
              .values(last_position=bindparam("last")))
_INSERT_CHANGE = insert(_changes)
_LOCK_ROOMS = (select(_rooms.c.id).where(_rooms.c.id.in_(bindparam("ids", expanding=True)))
               .order_by(_rooms.c.id).with_for_update(skip_locked=True))


def _insert_message(dialect: str):
    if dialect == "postgresql":
        stmt = postgresql.insert(_messages).on_conflict_do_nothing(
            index_elements=["user_id", "client_id"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(_messages).on_conflict_do_nothing(
            index_elements=["user_id", "client_id"])
    else:
        # Another database: a replayed client_id fails the batch, and the
        # one-by-one pass answers it from the stored row.
        stmt = insert(_messages)
    return stmt.returning(_messages.c.id)


class _Raw:
    """A Core statement compiled once for this database, run on the DBAPI cursor.

    SQLAlchemy's execution machinery costs about ten times what SQLite itself
    spends on one of these small statements; the writer runs several per send.
    The values are bound with the column types' own bind processors, so what
    is stored is exactly what the Core statement would store.
    """

    def __init__(self, stmt, dialect, keys: list[str] | None = None):
        compiled = stmt.compile(dialect=dialect, column_keys=keys)
        self.sql = str(compiled)
        self.positional = dialect.positional
        names = list(compiled.positiontup) if self.positional else list(compiled.binds)
        self.order = [(name, compiled.binds[name].type._cached_bind_processor(dialect))
                      for name in names]

    def params(self, values: dict):
        bound = ((name, process(values[name]) if process else values[name])
                 for name, process in self.order)
        if self.positional:
            return tuple(value for _, value in bound)
        return dict(bound)

    def one(self, cursor, values: dict):
        """The first column of the statement's one row, or None."""
        cursor.execute(self.sql, self.params(values))
        row = cursor.fetchone()
        return None if row is None else row[0]

    def run(self, cursor, values: dict) -> None:
        cursor.execute(self.sql, self.params(values))

    def many(self, cursor, rows: list[dict]) -> None:
        cursor.executemany(self.sql, [self.params(values) for values in rows])


_MESSAGE_KEYS = ["room_id", "user_id", "client_id", "body", "created_at", "deleted"]
_CHANGE_KEYS = ["room_id", "position", "event", "payload", "message_id", "created_at"]


ARCHIVED = "archived"
REPLAY = "replay"
DEFER = "defer"  # the room's row was held: written by its lane


@dataclass(slots=True)
class Send:
    """One queued send and, once written, its outcome."""

    actor: Actor
    room_id: int
    slug: str
    body: str
    client_id: str
    created_at: object = field(default_factory=utcnow)
    result: AsyncResult = field(default_factory=AsyncResult)

    def params(self) -> dict:
        return {"room_id": self.room_id, "user_id": self.actor.id, "client_id": self.client_id,
                "body": self.body, "created_at": self.created_at, "deleted": False}


class _RowFailed(Exception):
    """A send the database refused (its row, not the database)."""


def _row_error(exc: Exception, errors=(IntegrityError, DataError)) -> bool:
    # What one row can cause: a constraint or a value the column refuses.
    return isinstance(exc, errors)


class SendQueue:
    """This process's (and app's) queue of sends waiting for the writer."""

    def __init__(self, app):
        self.app = app
        self.pending: deque[Send] = deque()
        self.writer = None
        # Rooms whose row another transaction held (PostgreSQL): their sends,
        # in order, each room written by a greenlet of its own.
        self.lanes: dict[int, deque[Send]] = {}
        self.waiting = 0
        self.max_queued = app.config["SEND_QUEUE_MAX"]
        self.max_batch = app.config["SEND_BATCH_MAX"]
        self.wait_seconds = app.config["SEND_WAIT_SECONDS"]
        with app.app_context():
            dialect = db.engine.dialect
        self.dialect = dialect.name
        self.insert_message = _Raw(_insert_message(self.dialect), dialect, _MESSAGE_KEYS)
        self.reserve = _Raw(_RESERVE, dialect)
        self.give_back = _Raw(_GIVE_BACK, dialect)
        self.insert_changes = _Raw(_INSERT_CHANGE, dialect, _CHANGE_KEYS)
        dbapi = dialect.dbapi
        # What one row can cause, as SQLAlchemy or the driver raises it.
        self.row_errors = (IntegrityError, DataError, dbapi.IntegrityError, dbapi.DataError)
        self.batches = 0
        self.written = 0
        _queues.add(self)

    # -- the waiting side -------------------------------------------------------
    def submit(self, send: Send):
        """Queue ``send``; wait for its outcome: the reply, ``REPLAY`` or ``ARCHIVED``.

        Raises ``RateLimited`` when the queue is full, and whatever the
        write raised (the edge answers ``internal``).
        """
        if self.waiting >= self.max_queued:
            raise RateLimited("the server is busy; try again", retry_after=1)
        self.waiting += 1
        try:
            self.pending.append(send)
            if self.writer is None:
                self.writer = spawn(self._run)
            return send.result.get(timeout=self.wait_seconds)
        finally:
            self.waiting -= 1

    def busy(self) -> bool:
        return bool(self.pending or self.writer is not None or self.lanes)

    def drain(self, timeout: float) -> bool:
        """Wait until every queued send is written (or ``timeout``); whether it was."""
        deadline = time.monotonic() + timeout
        while self.busy() and time.monotonic() < deadline:
            sleep(0.02)
        return not self.busy()

    # -- the writer ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            with self.app.app_context():
                while True:
                    if not self.pending:
                        # No switch between this check and the next line (a
                        # send queued from then on spawns a new writer); the
                        # context's teardown after it may switch.
                        self.writer = None
                        return
                    batch = []
                    for _ in range(min(self.max_batch, len(self.pending))):
                        send = self.pending.popleft()
                        lane = self.lanes.get(send.room_id)
                        if lane is not None:
                            lane.append(send)  # behind that room's earlier sends
                        else:
                            batch.append(send)
                    if batch:
                        self._guarded(batch, wait=False)
        finally:
            if self.writer is getcurrent():
                self.writer = None

    def _lane(self, room_id: int) -> None:
        """The sends of one room whose row another transaction holds, in order."""
        lane = self.lanes[room_id]
        try:
            with self.app.app_context():
                while True:
                    if not lane:
                        # As in _run: later sends to the room go to the main
                        # writer again from this line on.
                        del self.lanes[room_id]
                        return
                    self._guarded([lane.popleft() for _ in range(min(self.max_batch, len(lane)))],
                                  wait=True)
        finally:
            if self.lanes.get(room_id) is lane:
                del self.lanes[room_id]
                self._fail(list(lane), RuntimeError("the room's writer stopped"))

    def _defer(self, sends: list[Send]) -> None:
        for send in sends:
            lane = self.lanes.get(send.room_id)
            if lane is None:
                lane = self.lanes[send.room_id] = deque()
                spawn(self._lane, send.room_id)
            lane.append(send)

    def _guarded(self, batch: list[Send], *, wait: bool) -> None:
        try:
            self._write(batch, wait=wait)
        except Exception as exc:
            # A bug here must not leave a waiter waiting out its timeout.
            log.exception("the send writer failed")
            self._fail([send for send in batch if not send.result.ready()], exc)

    def _write(self, batch: list[Send], *, wait: bool) -> None:
        self.batches += 1
        try:
            outcomes, published = self._transaction(batch, wait)
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch, exc)
                return
            log.info("a batch of %d sends failed (%s); writing them one by one",
                     len(batch), exc.__class__.__name__)
            for index, send in enumerate(batch):
                try:
                    outcomes, published = self._transaction([send], wait)
                except Exception as exc:
                    self._fail([send], exc)
                    if not _row_error(exc, self.row_errors):
                        # The database, not this row: the rest would fail too.
                        self._fail(batch[index + 1:], exc)
                        return
                    continue
                self._publish(published)
                self._resolve([send], outcomes)
            return
        self._publish(published)
        self._resolve(batch, outcomes)

    def _transaction(self, batch: list[Send], wait: bool) -> tuple[list, list[Change]]:
        counts: dict[int, int] = {}
        for send in batch:
            counts[send.room_id] = counts.get(send.room_id, 0) + 1
        outcomes: list = [None] * len(batch)
        published: list[Change] = []
        with db.engine.begin() as connection:
            if self.dialect == "postgresql" and not wait:
                # 0. the rooms' rows, skipping those another transaction
                # holds (an edit, a room change, another process's writer):
                # their sends wait in a lane of their own, in order, and the
                # other rooms' sends are not held up behind that lock.
                held = set(connection.execute(_LOCK_ROOMS, {"ids": sorted(counts)}).scalars())
                for index, send in enumerate(batch):
                    if send.room_id not in held:
                        outcomes[index] = DEFER
                counts = {room_id: n for room_id, n in counts.items() if room_id in held}
            # 1. positions, rooms in id order (the lock order of every writer)
            base: dict[int, int] = {}
            cursor = connection.connection.cursor()
            for room_id in sorted(counts):
                last = self.reserve.one(cursor, {"room_id": room_id, "count": counts[room_id]})
                if last is not None:
                    base[room_id] = last - counts[room_id]
            used = dict.fromkeys(base, 0)
            # 2. the messages, in queue order
            rows = []
            now = utcnow()
            for index, send in enumerate(batch):
                if outcomes[index] is DEFER:
                    continue
                if send.room_id not in base:
                    outcomes[index] = ARCHIVED
                    continue
                message_id = self.insert_message.one(cursor, send.params())
                if message_id is None:
                    outcomes[index] = REPLAY
                    continue
                # 3. the room's next reserved position
                used[send.room_id] += 1
                position = base[send.room_id] + used[send.room_id]
                reply = {"id": message_id, "room": send.slug, "user": send.actor.to_public(),
                         "body": send.body, "created_at": isoformat(send.created_at),
                         "edited_at": None, "client_id": send.client_id}
                data = {**reply, "cursor": position}
                rows.append({"room_id": send.room_id, "position": position, "event": "message",
                             "payload": _dumps(data), "message_id": message_id,
                             "created_at": now})
                published.append(Change(send.room_id, send.slug, position, "message", data))
                outcomes[index] = reply
            for room_id, first in base.items():
                if used[room_id] < counts[room_id]:
                    self.give_back.run(cursor, {"room_id": room_id,
                                                "last": first + used[room_id]})
            # 4. the log, then the commit (leaving the block)
            if rows:
                self.insert_changes.many(cursor, rows)
            cursor.close()
        self.written += len(rows)
        if rows:
            metrics.send_transaction()
        return outcomes, published

    def _publish(self, published: list[Change]) -> None:
        for item in published:
            try:
                events.change(item)
            except Exception:
                # As the outbox: the change is stored; catch-up delivers it.
                log.exception("publishing after commit failed")

    def _resolve(self, batch: list[Send], outcomes: list) -> None:
        deferred = []
        for send, outcome in zip(batch, outcomes):
            if outcome is DEFER:
                deferred.append(send)
            else:
                send.result.set(outcome)
        if deferred:
            self._defer(deferred)

    def _fail(self, sends: list[Send], exc: Exception) -> None:
        if sends:
            log.error("%d send(s) not stored: %s: %s", len(sends), exc.__class__.__name__, exc)
        for send in sends:
            send.result.set_exception(_RowFailed(str(exc)) if _row_error(exc, self.row_errors) else exc)


# Every queue of this process (one per app; tests make many apps).
_queues: "weakref.WeakSet[SendQueue]" = weakref.WeakSet()


def queue_of(app) -> SendQueue:
    queue = app.extensions.get("parley_send_queue")
    if queue is None:
        queue = app.extensions["parley_send_queue"] = SendQueue(app)
    return queue


def drain(timeout: float) -> bool:
    """Shutdown: write everything queued in this process (every app's queue)."""
    deadline = time.monotonic() + timeout
    return all([queue.drain(max(0.0, deadline - time.monotonic())) for queue in list(_queues)])


def archived_error() -> Forbidden:
    return Forbidden("this room is archived and read-only", field="room")
