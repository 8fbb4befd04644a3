"""This process among its peers: heartbeat, live workers, shared Redis client.

Without ``REDIS_URL`` the cluster is this one process. With it, every server
process beats every 2 s: it stamps its id in a sorted set and writes its
connection count to a hash. A process that missed three beats is gone
(crashed or stopped): the next beat of any other process removes it, and its
presence sets expire on their own.
"""
from __future__ import annotations

import logging
import socket
import time

from .. import bus, feed
from .presence import RedisPresence

log = logging.getLogger(__name__)

# Beat every 2 s and expire after 6 s: stats are at most one beat stale, and a
# crashed worker drops out of `workers` within 6 s.
HEARTBEAT_SECONDS = 2
WORKER_TTL_SECONDS = 6
# A sorted set of process ids by last beat, and a hash of their connection counts.
_WORKERS = "parley:workers"
_CONNECTIONS = "parley:connections"

# For connections that block on a subscription: no read timeout (a quiet
# channel is normal), but TCP keepalive probes after 10 s of silence, so a
# Redis that vanished without closing the socket is noticed in about 25 s
# instead of the kernel's default two hours.
LISTEN_OPTIONS = {
    "socket_keepalive": True,
    "socket_keepalive_options": {
        getattr(socket, name): value
        for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
        if hasattr(socket, name)
    },
    "health_check_interval": 15,
}

_redis = None
_started = False
_connection_count = lambda: 0  # noqa: E731 - set by start()


def redis_client():
    """The shared Redis client, or None in single-process mode."""
    return _redis


def configure(app) -> None:
    """Bind to Redis when configured (no I/O, no background work yet)."""
    global _redis
    url = app.config.get("REDIS_URL")
    if not url:
        _redis = None
        return
    import redis

    # Commands time out rather than hang a request on a dead Redis.
    _redis = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5,
                                  **LISTEN_OPTIONS)
    app.extensions["parley_redis"] = _redis
    from .connections import live

    live.use_presence(RedisPresence(_redis, bus.PROCESS_ID, live_processes))


def start(app, connection_count) -> None:
    """Start this process's background work once: heartbeat and control bus."""
    global _started, _connection_count
    if _started:
        return
    _started = True
    _connection_count = connection_count
    from . import changes
    from ..extensions import socketio as _socketio

    _socketio.start_background_task(changes.prune_loop, app)
    if _redis is None:
        return
    from ..extensions import socketio

    import redis

    listener = redis.Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=3,
                                    **LISTEN_OPTIONS)
    bus.start(_redis, listener, "parley-control", socketio.start_background_task)
    feed.hub.start(_redis, redis.Redis.from_url(app.config["REDIS_URL"],
                                                socket_connect_timeout=3, **LISTEN_OPTIONS),
                   socketio.start_background_task)
    socketio.start_background_task(_heartbeat_loop)
    log.info("cluster member %s started", bus.PROCESS_ID)


def _beat() -> None:
    now = time.time()
    pipe = _redis.pipeline(transaction=False)
    pipe.zadd(_WORKERS, {bus.PROCESS_ID: now})
    pipe.hset(_CONNECTIONS, bus.PROCESS_ID, _connection_count())
    pipe.zrangebyscore(_WORKERS, "-inf", now - WORKER_TTL_SECONDS)
    gone = pipe.execute()[-1]
    if gone:  # processes that stopped beating: crashed or stopped
        pipe = _redis.pipeline(transaction=False)
        pipe.zrem(_WORKERS, *gone)
        pipe.hdel(_CONNECTIONS, *gone)
        pipe.execute()
    from .connections import live

    live.presence.heartbeat()


def _heartbeat_loop() -> None:
    from ..extensions import socketio

    while True:
        try:
            _beat()
        except Exception:
            log.warning("heartbeat: Redis unavailable", exc_info=True)
        socketio.sleep(HEARTBEAT_SECONDS)


def workers() -> list[dict]:
    """One ``{"id", "connections"}`` per live server process."""
    local = _connection_count()
    if _redis is None:
        return [{"id": bus.PROCESS_ID, "connections": local}]
    ids = live_processes(fresh=True)
    counts = dict(zip(ids, _redis.hmget(_CONNECTIONS, ids)))
    counts[bus.PROCESS_ID] = local  # ours is exact, not a beat old
    return [{"id": pid, "connections": int(counts[pid] or 0)} for pid in ids]


_live_cache: tuple[float, list[str]] = (0.0, [])


def live_processes(fresh: bool = False) -> list[str]:
    """Ids of the processes that beat within ``WORKER_TTL_SECONDS``.

    Presence reads ask on every join, so the answer is kept for a second.
    """
    global _live_cache
    if _redis is None:
        return [bus.PROCESS_ID]
    now = time.time()
    if not fresh and now - _live_cache[0] < 1.0:
        return _live_cache[1]
    ids = {pid.decode() for pid in
           _redis.zrangebyscore(_WORKERS, now - WORKER_TTL_SECONDS, "+inf")}
    ids.add(bus.PROCESS_ID)
    _live_cache = (now, sorted(ids))
    return _live_cache[1]
