"""Rate limits, on the ``limits`` library: every abuse limit's rule in one place.

Storage is in memory for one process and Redis when ``REDIS_URL`` is set, so
a user's budget is shared by every process they are connected to.

Each refusal is also written to the audit log (pushed to the admins), at most
once per rule and key a minute: an attacker hammering a limit must not be able
to flood the audit table in its place.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

from limits import parse
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..errors import RateLimited

log = logging.getLogger(__name__)


# What each rule's refusal says, and the setting that holds the rule.
RULES = {
    "message": ("MESSAGE_RATE_LIMIT", "too many messages; slow down"),
    # Sign-ins reserve a unit of each before the password is checked and a
    # success gives it back: only failures stay counted, and concurrent
    # guesses cannot all pass a check made before any of them is counted.
    "signin_user": ("SIGNIN_USER_RATE_LIMIT",
                    "too many failed sign-ins for this account; try again later"),
    "signin_address": ("SIGNIN_ADDRESS_RATE_LIMIT",
                       "too many failed sign-ins from this address; try again later"),
    "mention_room": ("MENTION_ROOM_RATE_LIMIT",
                     "too many @room mentions; try again later"),
    "room_create": ("ROOM_CREATE_RATE_LIMIT", "too many rooms created; try again later"),
    "user_search": ("USER_SEARCH_RATE_LIMIT", "too many user look-ups; slow down"),
    "dm_open": ("DM_OPEN_RATE_LIMIT", "too many direct messages opened; try again later"),
    "display_name": ("DISPLAY_NAME_RATE_LIMIT",
                     "too many display-name changes; try again later"),
    # Every sign-up attempt counts, refused ones too: the form cannot be used
    # to probe names or guess invite codes faster than it creates accounts.
    "signup_address": ("SIGNUP_ADDRESS_RATE_LIMIT",
                       "too many sign-ups from this address; try again later"),
    "heavy_read": ("HEAVY_READ_RATE_LIMIT", "too many room joins and history pages; slow down"),
    "search": ("SEARCH_RATE_LIMIT", "too many searches; slow down"),
    "reaction": ("REACTION_RATE_LIMIT", "too many reactions; slow down"),
    # Failed bot-key and refresh-token requests (POST /api/v1/auth/*).
    "token_address": ("TOKEN_ADDRESS_RATE_LIMIT",
                      "too many failed token requests from this address; try again later"),
}
# One audit entry per rule and key a minute at most.
AUDIT_EVERY = parse("1 per minute")


class ProcessMemory(MemoryStorage):
    """``limits``' moving-window storage for one process, at O(1) per hit.

    ``MemoryStorage`` keeps its windows as lists and, after any hit, rescans
    every key on a 10 ms timer (creating a lock per key each time): with one
    key per active user that scan took a fifth of a worker's CPU under load
    (docs/performance.md). Here each key's hits are a deque trimmed as it is
    read, and idle keys are dropped in one sweep a minute. The strategy
    (``MovingWindowRateLimiter``) and its arithmetic stay the library's.
    """

    SWEEP_SECONDS = 60.0

    def __init__(self):
        super().__init__()
        self._windows: dict[str, tuple[float, deque]] = {}  # key -> (expiry, hit times)
        self._guard = threading.Lock()
        self._swept = time.time()

    def _current(self, key: str, expiry: float, now: float) -> deque | None:
        entry = self._windows.get(key)
        if entry is None:
            return None
        hits = entry[1]
        while hits and hits[0] < now - expiry:
            hits.popleft()
        return hits

    def _sweep(self, now: float) -> None:
        if now - self._swept < self.SWEEP_SECONDS:
            return
        self._swept = now
        for key, (expiry, hits) in list(self._windows.items()):
            if not hits or hits[-1] < now - expiry:
                del self._windows[key]

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        with self._guard:
            self._sweep(now)
            hits = self._current(key, expiry, now)
            if hits is None:
                hits = deque()
                self._windows[key] = (expiry, hits)
            if len(hits) + amount > limit:
                return False
            hits.extend([now] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._guard:
            hits = self._current(key, expiry, now)
            if not hits:
                return now, 0
            return hits[0], len(hits)

    def refund(self, key: str) -> None:
        """Give back the newest hit of ``key`` (see ``Limits.refund``)."""
        with self._guard:
            entry = self._windows.get(key)
            if entry and entry[1]:
                entry[1].pop()

    def clear(self, key: str) -> None:
        with self._guard:
            self._windows.pop(key, None)

    def reset(self) -> int:
        with self._guard:
            count = len(self._windows)
            self._windows.clear()
        return count


class Limits:
    def __init__(self):
        self._limiter = MovingWindowRateLimiter(ProcessMemory())
        self._rules: dict = {}

    def init_app(self, app) -> None:
        url = app.config.get("REDIS_URL")
        storage = storage_from_string(url) if url else ProcessMemory()
        self._limiter = MovingWindowRateLimiter(storage)
        self._rules = {rule: parse(app.config[setting]) for rule, (setting, _) in RULES.items()}

    def hit(self, rule: str, key: str | int, target: str | None = None) -> None:
        """Spend one unit of ``rule`` for ``key`` or raise ``RateLimited``.

        ``target`` names the key in the audit log (a username for a user id).
        """
        item = self._rules[rule]
        try:
            allowed = self._limiter.hit(item, rule, str(key))
        except Exception:
            # Storage (Redis) unreachable: fail open. Refusing every send
            # while Redis restarts would take the whole chat down with it.
            log.warning("rate limit storage unavailable; allowing %s", rule, exc_info=True)
            return
        if not allowed:
            self._refuse(rule, key, target)

    def reserve(self, spends: list[tuple[str, str | int, str | None]]) -> None:
        """Spend one unit of each ``(rule, key, target)``, all or none, or raise ``RateLimited``.

        Spent before slow work that an attacker could start many of at once
        (a password hash): a check before it and a hit after would let a
        burst of concurrent attempts all pass the check.
        """
        spent = []
        try:
            for rule, key, target in spends:
                self.hit(rule, key, target)
                spent.append((rule, key, target))
        except RateLimited:
            self.refund_all(spent)
            raise

    def refund_all(self, spends: list[tuple[str, str | int, str | None]]) -> None:
        for rule, key, _ in spends:
            self.refund(rule, key)

    def refund(self, rule: str, key: str | int) -> None:
        """Give back one unit of ``rule`` spent by ``hit`` for ``key``.

        For a reservation that turned out not to count (a sign-in with the
        right password). The newest hit of the window is removed: the count
        is the same as removing this one's, and the window lasts no less.
        Redis keeps a moving window as a list, newest first (``limits``'
        acquire script pushes on the left), so that is one LPOP.
        """
        storage_key = self._rules[rule].key_for(rule, str(key))
        storage = self._limiter.storage
        try:
            if isinstance(storage, ProcessMemory):
                storage.refund(storage_key)
            else:
                storage.get_connection().lpop(storage.prefixed_key(storage_key))
        except Exception:
            # Unrefunded, the unit simply expires with its window.
            log.warning("rate limit storage unavailable; no refund for %s", rule, exc_info=True)

    def check(self, rule: str, key: str | int, target: str | None = None) -> None:
        """Raise ``RateLimited`` if ``rule`` is spent for ``key``; spend nothing."""
        try:
            allowed = self._limiter.test(self._rules[rule], rule, str(key))
        except Exception:
            log.warning("rate limit storage unavailable; allowing %s", rule, exc_info=True)
            return
        if not allowed:
            self._refuse(rule, key, target)

    def _refuse(self, rule: str, key: str | int, target: str | None):
        try:
            stats = self._limiter.get_window_stats(self._rules[rule], rule, str(key))
            retry_after = stats.reset_time - time.time()
        except Exception:
            retry_after = 1.0
        report(rule, target or str(key), f"{RULES[rule][1]} (retry after {max(retry_after, 0):.0f} s)")
        raise RateLimited(RULES[rule][1], retry_after=retry_after)

    def reset(self) -> None:
        self._limiter.storage.reset()

    def first_this_minute(self, rule: str, key: str) -> bool:
        """True once per rule and key a minute: whether to audit this refusal."""
        try:
            return self._limiter.hit(AUDIT_EVERY, "audit", rule, key)
        except Exception:
            return False


def report(rule: str, key: str, detail: str) -> None:
    """Audit a limit hit (``rate-limit:<rule>``), throttled; never raises.

    Callers may be in the middle of refusing an attacker: a failure to write
    the entry (database busy) is logged and the refusal goes on.
    """
    from .. import metrics

    metrics.rate_limited(rule)
    if not limits.first_this_minute(rule, key):
        return
    from ..extensions import db
    from . import audit  # audit imports the models and events; imported late

    try:
        audit.notice("server", f"rate-limit:{rule}", key, detail)
    except Exception:
        db.session.rollback()
        log.warning("could not audit rate-limit:%s", rule, exc_info=True)


limits = Limits()
