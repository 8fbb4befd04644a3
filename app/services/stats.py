"""The figures of the admin dashboard.

Each figure is one function, so that where it comes from (this process, the
database, Redis) can change without touching the console. Connection counts
come from every live process's heartbeat (``cluster.workers``), so
``connections`` is by construction the sum of ``workers``.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from ..extensions import db
from ..models import Message, Room, utcnow
from . import cluster
from .connections import live

MINUTE = timedelta(seconds=60)


def workers() -> list[dict]:
    """One ``{"id", "connections"}`` per live server process (``/public`` connections)."""
    return cluster.workers()


def users_online() -> int:
    """Distinct users with at least one ``/public`` connection, on any process."""
    return live.presence.users_online()


def rooms() -> int:
    """Every room, direct messages included."""
    return db.session.execute(select(func.count()).select_from(Room)).scalar_one()


def messages_total() -> int:
    """Every message ever stored, deleted ones included (deletion is a flag)."""
    return db.session.execute(select(func.count()).select_from(Message)).scalar_one()


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def messages_last_minute(now: datetime | None = None) -> int:
    """Messages stored in the last 60 seconds.

    There is no index on ``created_at`` (it would cost every send a write
    for the sake of one figure), and counting by it would scan the table
    every few seconds. Ids grow with time, so the last minute is a range of
    ids: bisect the primary key for the first id at or after the cutoff
    (a few dozen index look-ups at most), then count that range.
    """
    cutoff = (now or utcnow()) - MINUTE
    newest = db.session.execute(
        select(Message.id, Message.created_at).order_by(Message.id.desc()).limit(1)).first()
    if newest is None or _aware(newest.created_at) < cutoff:
        return 0
    # The smallest ``low`` whose first message at or after it is recent.
    low, high = 1, newest.id
    while low < high:
        middle = (low + high) // 2
        probe = db.session.execute(
            select(Message.id, Message.created_at).where(Message.id >= middle)
            .order_by(Message.id).limit(1)).first()
        if _aware(probe.created_at) >= cutoff:
            high = middle
        else:
            low = probe.id + 1  # every id up to the probe's is older
    return db.session.execute(
        select(func.count()).select_from(Message).where(Message.id >= low)).scalar_one()


def snapshot() -> dict:
    """The ``stats`` event's figures (ack and push)."""
    per_worker = workers()
    return {
        "connections": sum(worker["connections"] for worker in per_worker),
        "users_online": users_online(),
        "rooms": rooms(),
        "messages_total": messages_total(),
        "messages_last_minute": messages_last_minute(),
        "workers": per_worker,
    }
