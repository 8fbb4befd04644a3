"""Group commit for ``message:send``: one writer per process, one transaction per batch.

A send is checked where it arrives (body, membership, archived room, its
mentions read with ``mentions.find``, the rate limits spent, an ``@room``'s
too: ``messages.send``), then queued here; its greenlet waits. This
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
2. Each message, in queue order. A reply first reads its original (room,
   deleted, text, author), now that the room's row is held: a deletion of
   the original committed before (and is seen), or waits for this commit
   and then finds the reply to unquote. An original that is not a live
   message of the same room fails that send alone (``NO_ORIGINAL``:
   ``not_found`` on ``reply_to``, the message unit refunded, as
   ``messages.send`` did), unless its ``client_id`` is already stored,
   which is answered as the replay (as before: the replay was checked
   first). Then ``INSERT ... ON CONFLICT (user_id, client_id) DO NOTHING
   RETURNING id`` (with ``reply_to_id`` and ``mentions_room``; the search
   index's trigger fires on it as on any insert). The idempotency check is
   the unique constraint itself: a ``client_id`` already stored (earlier,
   in another process, or earlier in this very batch) inserts nothing, and
   its waiter answers the replay from the stored message after the commit,
   exactly as before (the same message, ``conflict`` for another room,
   ``not_found`` when deleted).
3. The rows inserted take their room's reserved positions in queue order;
   a room whose conflicts or bad originals left positions unused gets its
   counter set back to the last one used (the row is still locked), so
   positions stay dense. The ack and the change carry what ``messages.send``
   built: ``reply_to`` (the quote), ``reactions: []``, ``mentions`` and
   ``mentions_room``, the author with ``display_name``.
4. The mentions by name (``message_mentions`` rows, one ``executemany``),
   the change-log rows (one ``executemany``), then each change's outgoing
   webhook deliveries through ``webhooks.enqueue`` on this connection, as
   ``changes.record`` queues them (the active webhooks matching a room are
   read once per room and batch, ``FOR KEY SHARE`` on PostgreSQL as there);
   then the commit.

After the commit, in queue order: each change published, each mention
pushed (``mentions.push``, as ``push_after_commit`` would), and the webhook
dispatcher woken if deliveries were queued.

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
from ..models import Message, MessageMention, Room, RoomChange, User, isoformat, utcnow
from . import Actor, mentions, webhooks
from .changes import Change, _dumps
from .mentions import Found

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
_INSERT_MENTION = insert(MessageMention.__table__)
_users = User.__table__
# What a reply quotes (read under the room's lock, as ``messages.send`` did).
_ORIGINAL = (select(_messages.c.room_id, _messages.c.deleted, _messages.c.body,
                    _users.c.id, _users.c.username, _users.c.is_bot, _users.c.display_name)
             .join(_users, _users.c.id == _messages.c.user_id)
             .where(_messages.c.id == bindparam("id")))
_OWN_MESSAGE = select(_messages.c.id).where(_messages.c.user_id == bindparam("user_id"),
                                            _messages.c.client_id == bindparam("client_id"))
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
        self.executed = 0
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

    def execute(self, cursor, values: dict) -> None:
        # Counted (``SendQueue.statements``): SQLAlchemy's events never see these.
        self.executed += 1
        cursor.execute(self.sql, self.params(values))

    def one(self, cursor, values: dict):
        """The first column of the statement's one row, or None."""
        self.execute(cursor, values)
        row = cursor.fetchone()
        return None if row is None else row[0]

    def row(self, cursor, values: dict):
        """The statement's first row, or None."""
        self.execute(cursor, values)
        return cursor.fetchone()

    def rows(self, cursor, values: dict) -> list:
        self.execute(cursor, values)
        return cursor.fetchall()

    def run(self, cursor, values: dict) -> None:
        self.execute(cursor, values)

    def many(self, cursor, rows: list[dict]) -> None:
        self.executed += 1
        cursor.executemany(self.sql, [self.params(values) for values in rows])


_MESSAGE_KEYS = ["room_id", "user_id", "client_id", "body", "created_at", "deleted",
                 "reply_to_id", "mentions_room"]
_CHANGE_KEYS = ["room_id", "position", "event", "payload", "message_id", "created_at"]
_MENTION_KEYS = ["message_id", "user_id"]


ARCHIVED = "archived"
REPLAY = "replay"
DEFER = "defer"  # the room's row was held: written by its lane
NO_ORIGINAL = "no_original"  # reply_to names no live message of the room


@dataclass(slots=True)
class Send:
    """One queued send and, once written, its outcome."""

    actor: Actor
    room_id: int
    slug: str
    body: str
    client_id: str
    reply_to: int | None = None
    found: Found = mentions.NONE
    created_at: object = field(default_factory=utcnow)
    result: AsyncResult = field(default_factory=AsyncResult)

    def params(self) -> dict:
        return {"room_id": self.room_id, "user_id": self.actor.id, "client_id": self.client_id,
                "body": self.body, "created_at": self.created_at, "deleted": False,
                "reply_to_id": self.reply_to, "mentions_room": self.found.room}


@dataclass(frozen=True, slots=True)
class _Push:
    """After the commit: ``mention`` to the members a new message mentions."""

    slug: str
    message: dict
    found: Found

    def __call__(self) -> None:
        mentions.push(self.slug, self.message, self.found)


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
        self.insert_mentions = _Raw(_INSERT_MENTION, dialect, _MENTION_KEYS)
        self.original = _Raw(_ORIGINAL, dialect)
        self.own_message = _Raw(_OWN_MESSAGE, dialect)
        self.webhooks = _Raw(webhooks._MATCHING, dialect)
        dbapi = dialect.dbapi
        # What one row can cause, as SQLAlchemy or the driver raises it.
        self.row_errors = (IntegrityError, DataError, dbapi.IntegrityError, dbapi.DataError)
        self.batches = 0
        self.written = 0
        _queues.add(self)

    @property
    def statements(self) -> int:
        """How many statements the writer ran on the DBAPI cursor (an executemany counts
        one): with SQLAlchemy's own count, what a send costs."""
        return sum(raw.executed for raw in vars(self).values() if isinstance(raw, _Raw))

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
            mentioned: list[dict] = []
            now = utcnow()
            for index, send in enumerate(batch):
                if outcomes[index] is DEFER:
                    continue
                if send.room_id not in base:
                    outcomes[index] = ARCHIVED
                    continue
                quoted = None
                if send.reply_to is not None:
                    # Under the room's lock (step 1): a deletion of the
                    # original committed before (and is seen here), or waits
                    # for this commit and then finds the reply to unquote.
                    quoted = self._quote(cursor, send)
                    if quoted is None:
                        # A stored client_id is answered as its replay, as
                        # before (the replay was checked before reply_to).
                        stored = self.own_message.one(cursor, {"user_id": send.actor.id,
                                                               "client_id": send.client_id})
                        outcomes[index] = NO_ORIGINAL if stored is None else REPLAY
                        continue
                message_id = self.insert_message.one(cursor, send.params())
                if message_id is None:
                    outcomes[index] = REPLAY
                    continue
                # 3. the room's next reserved position
                used[send.room_id] += 1
                position = base[send.room_id] + used[send.room_id]
                found = send.found
                reply = {"id": message_id, "room": send.slug, "user": send.actor.to_public(),
                         "body": send.body, "created_at": isoformat(send.created_at),
                         "edited_at": None, "client_id": send.client_id, "reply_to": quoted,
                         "reactions": [], "mentions": list(found.user_ids),
                         "mentions_room": found.room}
                data = {**reply, "cursor": position}
                rows.append({"room_id": send.room_id, "position": position, "event": "message",
                             "payload": _dumps(data), "message_id": message_id,
                             "created_at": now})
                mentioned.extend({"message_id": message_id, "user_id": user_id}
                                 for user_id in found.user_ids)
                change = Change(send.room_id, send.slug, position, "message", data)
                published.append(change)
                if found.pushes:
                    published.append(_Push(send.slug, reply, found))
                outcomes[index] = reply
            for room_id, first in base.items():
                if used[room_id] < counts[room_id]:
                    self.give_back.run(cursor, {"room_id": room_id,
                                                "last": first + used[room_id]})
            # 4. the mentions by name, the log, the webhooks' deliveries,
            # then the commit (leaving the block)
            if mentioned:
                self.insert_mentions.many(cursor, mentioned)
            if rows:
                self.insert_changes.many(cursor, rows)
                if self._enqueue_webhooks(connection, cursor, published):
                    published.append(webhooks.wake)
            cursor.close()
        self.written += len(rows)
        if rows:
            metrics.send_transaction()
        return outcomes, published

    def _quote(self, cursor, send: Send) -> dict | None:
        """What ``send`` quotes: its original if a live message of its room, else None."""
        from .messages import author, quote

        row = self.original.row(cursor, {"id": send.reply_to})
        if row is None:
            return None
        room_id, deleted, body, user_id, username, is_bot, display_name = row
        if room_id != send.room_id or deleted:
            return None
        return quote(send.reply_to, deleted=False, body=body,
                     author=author(user_id, username, bool(is_bot), display_name))

    def _enqueue_webhooks(self, connection, cursor, published: list) -> bool:
        """Each new message's outgoing webhook deliveries, as ``changes.record`` queues
        them (``webhooks.enqueue``); the active webhooks are read once per room."""
        queued = False
        candidates: dict[int, list] = {}
        for item in published:
            if not isinstance(item, Change):
                continue
            room = candidates.get(item.room_id)
            if room is None:
                room = candidates[item.room_id] = [
                    tuple(row) for row in self.webhooks.rows(cursor, {"room_id": item.room_id})]
            if room:
                queued |= webhooks.enqueue(connection, item.room_id, item.slug, item.position,
                                           item.event, item.data, candidates=room,
                                           wake_after_commit=False)
        return queued

    def _publish(self, published: list) -> None:
        for item in published:
            try:
                if isinstance(item, Change):
                    events.change(item)
                else:
                    item()
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
