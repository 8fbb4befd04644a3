"""The Socket.IO message queue on Redis, made to recover loudly.

python-socketio's Redis manager reconnects after Redis restarts, but events
published while Redis was away are gone, and connected clients would never
learn that they missed them. Every message is committed before it is
broadcast, so the cure is a catch-up: after the manager has to reconnect,
this process closes its ``/public`` connections; clients reconnect, join with
``since`` and receive what they missed from the database.
"""
from __future__ import annotations

import logging

import socketio as python_socketio

log = logging.getLogger(__name__)

# Wait for Redis to settle before sending every client back to reconnect, so
# a flapping Redis causes one wave of reconnects, not many.
RECOVERY_DELAY_SECONDS = 2.0


class RecoveringRedisManager(python_socketio.RedisManager):
    def __init__(self, url: str, *, channel: str, redis_options: dict, on_recover):
        super().__init__(url, channel=channel, write_only=False,
                         redis_options=dict(redis_options))
        self._connected_before = False
        self._recovery_pending = False
        self._on_recover = on_recover

    def _redis_connect(self):
        super()._redis_connect()
        if self._connected_before and not self._recovery_pending:
            self._recovery_pending = True
            self.server.start_background_task(self._recover)
        self._connected_before = True

    def _recover(self):
        self.server.sleep(RECOVERY_DELAY_SECONDS)
        self._recovery_pending = False
        log.warning("message queue reconnected to Redis: asking clients to catch up")
        try:
            self._on_recover()
        except Exception:
            log.exception("message queue recovery failed")
