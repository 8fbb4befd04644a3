"""The moderators' audit log: what admins did and what the server noticed.

An entry is written in the transaction of the action it describes
(``record``) and pushed to the connected admins after that commit, so the
console's live feed never shows what the log does not hold, and a rolled
back action leaves no entry. What the server notices on its own (``notice``)
is its own transaction.
"""
from __future__ import annotations

import logging

from flask import current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from .. import events
from ..extensions import db
from . import changes
from ..models import AuditEntry

log = logging.getLogger(__name__)

AUDIT_DEFAULT_LIMIT = 100
AUDIT_MAX_LIMIT = 500

# "Repeatedly" for failed sign-ins: 5 in 10 minutes is more than a user who
# mistyped a password a few times produces, and few enough that a guessing
# attack shows up within its first minute.
FAILED_SIGN_IN_THRESHOLD = 5
FAILED_SIGN_IN_WINDOW = "10 minutes"
# The window itself is counted up to this many failures; beyond it the count
# stays at the cap and nothing more is written.
_FAILURE_COUNT_CAP = 10_000


def _fit(text: str, column) -> str:
    limit = column.type.length
    return text if len(text) <= limit else text[: limit - 1] + "…"


def record(actor: str, action: str, target: str = "", detail: str = "") -> dict:
    """Add an entry to the current transaction; it reaches the admins after the commit.

    The caller commits (with the action itself). ``actor`` and ``target``
    are usernames or room slugs as text (``actor`` is ``"server"`` for what
    the server noticed on its own). Returns the entry as it will be pushed.
    """
    entry = AuditEntry(actor=_fit(actor, AuditEntry.actor), action=_fit(action, AuditEntry.action),
                       target=_fit(target, AuditEntry.target),
                       detail=_fit(detail, AuditEntry.detail))
    db.session.add(entry)
    db.session.flush()  # the entry's id and time, for the push
    public = entry.to_public()
    log.info("audit %s id=%s", action, entry.id)
    changes.after_commit(lambda: events.audit(public))
    return public


def notice(actor: str, action: str, target: str = "", detail: str = "") -> dict:
    """``record`` what the server noticed on its own, and commit it: it is the whole action."""
    public = record(actor, action, target, detail)
    db.session.commit()
    return public


def history(*, before: int | None = None, limit: int | None = None) -> tuple[list[dict], bool]:
    """The newest entries before ``before`` (all when absent), ascending by id, and ``has_more``."""
    limit = min(limit or AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = db.session.execute(query).scalars().all()
    has_more = len(rows) > limit
    return [entry.to_public() for entry in reversed(rows[:limit])], has_more


# -- failed sign-ins ----------------------------------------------------------

def _failure_window():
    """Counter of failed sign-ins per username, on the rate limits' storage.

    Memory for one process, Redis when configured, so the count is the same
    whichever process served each attempt. One per app (the tests build many).
    """
    state = current_app.extensions.get("parley_failed_sign_ins")
    if state is None:
        url = current_app.config.get("REDIS_URL")
        # In memory, the rate limits' own storage: limits' MemoryStorage can
        # yield to another greenlet between a hit and the count read after
        # it, so concurrent failures could skip the 10th and never report it.
        from .ratelimit import ProcessMemory

        limiter = MovingWindowRateLimiter(storage_from_string(url) if url else ProcessMemory())
        item = parse(f"{_FAILURE_COUNT_CAP} per {FAILED_SIGN_IN_WINDOW}")
        state = current_app.extensions["parley_failed_sign_ins"] = (limiter, item)
    return state


def failed_sign_in(username: str) -> None:
    """Count a failed sign-in for ``username``; audit when failures pile up.

    An entry is written at the 5th failure within the window, then at the
    10th, 20th, 40th...: a guessing attack is reported, and still cannot
    flood the log with one entry per attempt.
    """
    key = username.strip().lower()
    limiter, item = _failure_window()
    try:
        limiter.hit(item, "sign-in-failed", key)
        stats = limiter.get_window_stats(item, "sign-in-failed", key)
    except Exception:
        # Storage (Redis) unreachable: the sign-in answer matters more than
        # the count; say so in the log and go on.
        log.warning("failed sign-in counter unavailable", exc_info=True)
        return
    failures = item.amount - stats.remaining
    if failures < FAILED_SIGN_IN_THRESHOLD:
        return
    ratio = failures // FAILED_SIGN_IN_THRESHOLD
    if failures % FAILED_SIGN_IN_THRESHOLD == 0 and ratio & (ratio - 1) == 0:
        notice("server", "sign-in:failed", username.strip(),
               f"{failures} failed sign-ins within {FAILED_SIGN_IN_WINDOW}")
