"""Carries the control messages of ``app.control`` to every server process.

A socket lives in one process, so closing a session's sockets or dropping a
room from a member's connections has to run where those sockets are.
``publish`` runs a message's handler here and, when Redis is configured, in
every other process too. ``gather`` does the same and adds up what each
process's handler returned (for example, how many connections it closed).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from typing import Callable

from . import control

log = logging.getLogger(__name__)

_handlers: dict[type, Callable[[object], object]] = {}
_redis = None
_listen_redis = None
_channel = "parley-control"
# Identifies this process on the bus, so it does not act twice on its own message.
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
_REPLY_KEY = "parley:reply:"


def handler(message_type: type):
    """Register this process's handler for one message class of ``app.control``."""
    if message_type not in control.MESSAGES.values():
        raise TypeError(f"{message_type!r} is not declared in app.control")

    def register(fn: Callable[[object], object]):
        _handlers[message_type] = fn
        return fn
    return register


def publish(message, *, reply_to: str | None = None) -> object:
    """Handle ``message`` here and in every other process; returns the local result."""
    result = _dispatch(message)
    if _redis is not None:
        try:
            _redis.publish(_channel, json.dumps(
                {"from": PROCESS_ID, "message": control.encode(message), "reply_to": reply_to}))
        except Exception:  # Redis down: the local part is done; say so
            log.warning("control bus: could not publish %s", type(message).__name__,
                        exc_info=True)
    return result


def gather(message, *, peers: int, timeout: float = 1.5) -> int:
    """``publish`` and add up the numbers every process's handler returned.

    ``peers`` is how many other processes are expected to answer; the wait
    ends when they all have or ``timeout`` passes (a dead one never will).
    """
    if _redis is None or peers <= 0:
        return int(publish(message) or 0)
    reply_key = _REPLY_KEY + uuid.uuid4().hex
    total = int(publish(message, reply_to=reply_key) or 0)
    deadline = time.monotonic() + timeout
    answered = 0
    while answered < peers:
        left = deadline - time.monotonic()
        if left <= 0:
            log.warning("control bus: %d of %d peers answered %s", answered, peers,
                        type(message).__name__)
            break
        item = _redis.blpop([reply_key], timeout=max(left, 0.05))
        if item is None:
            continue
        total += int(item[1])
        answered += 1
    _redis.delete(reply_key)
    return total


def _dispatch(message) -> object:
    fn = _handlers.get(type(message))
    if fn is None:
        log.warning("control bus: no handler for %s", type(message).__name__)
        return None
    try:
        return fn(message)
    except Exception:
        log.exception("control bus: %s failed", type(message).__name__)
        return None


def start(redis_client, listen_client, channel: str, spawn) -> None:
    """Listen for other processes' actions; ``spawn`` runs the loop in the background.

    ``listen_client`` has no read timeout (a quiet channel is not an error);
    TCP keepalive notices a dead Redis instead.
    """
    global _redis, _listen_redis, _channel
    _redis, _listen_redis, _channel = redis_client, listen_client, channel
    spawn(_listen)


def _listen() -> None:
    while True:
        try:
            pubsub = _listen_redis.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(_channel)
            for item in pubsub.listen():
                _on_message(json.loads(item["data"]))
        except Exception:
            log.warning("control bus: lost Redis; resubscribing in 1 s", exc_info=True)
            time.sleep(1)


def _on_message(message: dict) -> None:
    if message.get("from") == PROCESS_ID:
        return
    decoded = control.decode(message.get("message") or {})
    if decoded is None:  # a newer process's message type, during a rolling upgrade
        log.warning("control bus: unknown message %r", (message.get("message") or {}).get("type"))
        return
    result = _dispatch(decoded)
    if message.get("reply_to"):
        pipe = _redis.pipeline()
        pipe.rpush(message["reply_to"], int(result or 0))
        pipe.expire(message["reply_to"], 30)
        pipe.execute()
