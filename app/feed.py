"""The SSE feed's hub: wakes this process's open event streams when their room changes.

A stream (``app.web.feed``) holds no database connection while it waits: it
sleeps on its ``Stream`` until the hub says its room has a new position (or
the heartbeat is due), then reads the log in a short session. The change
log's publisher calls ``notify`` after every commit; with Redis, the hub
also publishes a small notification that every other process's hub relays
to its own streams, so a change committed through one process reaches
streams held by another. That publish runs in a background greenlet, off
the send path, and coalesces: under load one notification names every room
that changed since the last. ``recheck`` wakes every stream to check that its reader may
still read (a session ended, a user banned).
"""
from __future__ import annotations

import json
import logging
import threading
import time

from . import bus

log = logging.getLogger(__name__)

CHANNEL = "parley-feed"


class Stream:
    """One open SSE response, waiting for its room."""

    __slots__ = ("room_id", "_wake", "recheck")

    def __init__(self, room_id: int):
        self.room_id = room_id
        # threading.Event is gevent's under the monkey-patched server: a
        # waiting stream costs a parked greenlet, no thread and no socket.
        self._wake = threading.Event()
        self.recheck = False

    def wake(self, *, recheck: bool = False) -> None:
        self.recheck = self.recheck or recheck
        self._wake.set()

    def wait(self, timeout: float) -> bool:
        """True when woken (a change or a recheck) before ``timeout`` seconds."""
        woken = self._wake.wait(timeout)
        self._wake.clear()
        return woken


class Hub:
    def __init__(self):
        self._lock = threading.Lock()
        self._streams: dict[int, set[Stream]] = {}
        self._redis = None
        self._listener = None
        # What the relay greenlet publishes next.
        self._changed_rooms: set[int] = set()
        self._recheck_all = False
        self._relay_due = threading.Event()

    def reset(self) -> None:
        """Forget every stream and stop relaying (tests start each from empty)."""
        with self._lock:
            self._streams = {}
        self._redis = None

    def __len__(self) -> int:
        with self._lock:
            return sum(len(streams) for streams in self._streams.values())

    def subscribe(self, room_id: int) -> Stream:
        stream = Stream(room_id)
        with self._lock:
            self._streams.setdefault(room_id, set()).add(stream)
        return stream

    def unsubscribe(self, stream: Stream) -> None:
        with self._lock:
            streams = self._streams.get(stream.room_id)
            if streams is not None:
                streams.discard(stream)
                if not streams:
                    del self._streams[stream.room_id]

    def notify(self, room_id: int, position: int) -> None:
        """Room ``room_id`` committed ``position``: wake its streams, here and elsewhere."""
        self._wake_room(room_id)
        if self._redis is not None:
            self._changed_rooms.add(room_id)
            self._relay_due.set()

    def recheck(self) -> None:
        self._wake_all()
        if self._redis is not None:
            self._recheck_all = True
            self._relay_due.set()

    def _wake_room(self, room_id: int) -> None:
        with self._lock:
            streams = list(self._streams.get(room_id, ()))
        for stream in streams:
            stream.wake()

    def _wake_all(self) -> None:
        with self._lock:
            streams = [s for room in self._streams.values() for s in room]
        for stream in streams:
            stream.wake(recheck=True)

    # -- across processes --

    def _relay_loop(self) -> None:
        while self._redis is not None:
            self._relay_due.wait()
            self._relay_due.clear()
            rooms, self._changed_rooms = self._changed_rooms, set()
            recheck, self._recheck_all = self._recheck_all, False
            message = {"from": bus.PROCESS_ID, "rooms": sorted(rooms)}
            if recheck:
                message["recheck"] = True
            try:
                self._redis.publish(CHANNEL, json.dumps(message))
            except Exception:
                # Redis away: local streams were woken; remote ones read
                # their rooms at their next heartbeat.
                log.warning("feed: could not relay a notification", exc_info=True)
                time.sleep(1)

    def start(self, redis_client, listen_client, spawn) -> None:
        """Relay this process's notifications to the others, and theirs to its streams."""
        self._redis, self._listener = redis_client, listen_client
        spawn(self._relay_loop)
        spawn(self._listen)

    def _listen(self) -> None:
        while self._listener is not None:
            try:
                pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                # After a lost subscription, notifications may have been
                # missed: every stream reads its room again.
                self._wake_all()
                for item in pubsub.listen():
                    self._on_message(json.loads(item["data"]))
            except Exception:
                log.warning("feed: lost Redis; resubscribing in 1 s", exc_info=True)
                time.sleep(1)

    def _on_message(self, message: dict) -> None:
        if message.get("from") == bus.PROCESS_ID:
            return
        if message.get("recheck"):
            self._wake_all()
        for room_id in message.get("rooms", ()):
            self._wake_room(int(room_id))


hub = Hub()
