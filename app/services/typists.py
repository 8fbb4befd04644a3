"""Which ``typing`` notices reach a room: a person types, a script floods.

A notice fans out to every connection in the room, so the server passes on
only changes of state, and at most one ``typing: true`` per user and room
every ``TYPING_INTERVAL_SECONDS``: the web client's refresh every 3 s gets
through, a client sending thousands a second reaches the room twice in that
time (a "true" and its "false"). Counted per user, whatever their
connections, in this process; in a cluster each process counts its own.
The process's one throttle belongs to ``connections.live`` (``live.typing``).
"""
from __future__ import annotations

import threading
import time


class TypingThrottle:
    # Entries idle this long are dropped: by then every client has let the
    # notice expire on its own (the web client after 6 s).
    FORGET_AFTER_SECONDS = 60.0

    def __init__(self):
        # (user id, room slug) -> (typing passed on last, when a "true" was last passed on)
        self._typists: dict[tuple[int, str], tuple[bool, float]] = {}
        self._guard = threading.Lock()
        self._swept = time.monotonic()

    def passes(self, user_id: int, slug: str, typing: bool, interval: float) -> bool:
        """Whether this notice reaches the room (and is remembered as the user's state)."""
        now = time.monotonic()
        key = (user_id, slug)
        with self._guard:
            self._sweep(now)
            shown, last_true = self._typists.get(key, (False, float("-inf")))
            if typing:
                if now - last_true < interval:
                    return False
                self._typists[key] = (True, now)
                return True
            if not shown:
                return False
            self._typists[key] = (False, last_true)
            return True

    def _sweep(self, now: float) -> None:
        if now - self._swept < self.FORGET_AFTER_SECONDS:
            return
        self._swept = now
        for key, (_, last_true) in list(self._typists.items()):
            if now - last_true > self.FORGET_AFTER_SECONDS:
                del self._typists[key]
