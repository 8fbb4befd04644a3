"""A python-socketio chat client that behaves as the contract asks clients to.

It keeps the last message id it saw per room and, after every reconnect,
joins its rooms again with ``since`` and pages on with ``message:history``
``after`` until ``has_more`` is false. Messages are kept by id, so a message
delivered twice (live and in a catch-up page) counts once, and a test can
assert that nothing is missing and nothing is doubled.
"""
from __future__ import annotations

import threading
import uuid

import socketio

from .server import cookie_header, sign_in, wait_until

NS = "/public"


class ChatClient:
    def __init__(self, base_url: str, username: str, *, transports=("websocket",),
                 http=None, headers: dict | None = None, auth: dict | None = None):
        self.base_url = base_url
        self.auth = auth
        self.username = username
        self.http = http or sign_in(base_url, username)
        self.transports = list(transports)
        self.rooms: set[str] = set()
        self.messages: dict[int, dict] = {}      # id -> message, across rooms
        self.deliveries: list[int] = []          # ids in arrival order, duplicates kept
        self.events: list[tuple[str, object]] = []
        self.connects = 0
        self.disconnects = 0
        self._lock = threading.Lock()
        self._headers = headers or {}
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2,
                                   reconnection_delay_max=1.0, randomization_factor=0.2)
        self.sio.on("connect", self._on_connect, namespace=NS)
        self.sio.on("disconnect", self._on_disconnect, namespace=NS)
        self.sio.on("message", self._on_message, namespace=NS)
        self.sio.on("*", self._on_any, namespace=NS)

    # -- connection --

    def connect(self) -> "ChatClient":
        headers = {"Cookie": cookie_header(self.http), **self._headers}
        self.sio.connect(self.base_url, namespaces=[NS], headers=headers,
                         transports=self.transports, wait_timeout=10, auth=self.auth)
        return self

    def close(self) -> None:
        self.sio.disconnect()

    def _on_connect(self):
        self.connects += 1
        if self.connects > 1:
            # Catch up from a background thread: calls cannot wait for their
            # acks inside the client's event handler.
            threading.Thread(target=self._rejoin_all, daemon=True).start()

    def _on_disconnect(self, *args):
        self.disconnects += 1

    def _on_message(self, message):
        self._keep(message)

    def _on_any(self, event, *args):
        self.events.append((event, args[0] if len(args) == 1 else args))

    def _keep(self, message: dict) -> None:
        with self._lock:
            self.deliveries.append(message["id"])
            self.messages.setdefault(message["id"], message)

    # -- contract calls --

    def call(self, event: str, payload: dict | None = None, timeout: float = 10) -> dict:
        return self.sio.call(event, payload if payload is not None else {}, namespace=NS,
                             timeout=timeout)

    def last_id(self, room: str) -> int:
        ids = [m["id"] for m in self.messages.values() if m["room"] == room]
        return max(ids, default=0)

    def join(self, room: str) -> dict:
        since = self.last_id(room) if room in self.rooms else None
        payload = {"room": room} if since is None else {"room": room, "since": since}
        ack = self.call("room:join", payload)
        assert ack["ok"], ack
        self.rooms.add(room)
        for message in ack["messages"]:
            self._keep(message)
        has_more = ack["has_more"] and since is not None
        while has_more:
            page = self.call("message:history", {"room": room, "after": self.last_id(room),
                                                 "limit": 500})
            assert page["ok"], page
            for message in page["messages"]:
                self._keep(message)
            has_more = page["has_more"]
        return ack

    def _rejoin_all(self) -> None:
        for room in sorted(self.rooms):
            try:
                self.join(room)
            except Exception:  # the next reconnect will try again
                pass

    def send(self, room: str, body: str, client_id: str | None = None) -> dict:
        ack = self.call("message:send", {"room": room, "body": body,
                                         "client_id": client_id or uuid.uuid4().hex})
        if ack.get("ok"):
            self._keep(ack["message"])
        return ack

    def bodies(self, room: str) -> list[str]:
        return [m["body"] for _, m in sorted(self.messages.items()) if m["room"] == room]

    def wait_for_bodies(self, room: str, expected: list[str], timeout: float = 20) -> None:
        wait_until(lambda: set(expected) <= set(self.bodies(room)), timeout,
                   message=f"{self.username} never saw all of {len(expected)} messages in {room}")
