"""A small Parley bot: answers "!ping" with "pong" in the rooms it joins.

    PARLEY_URL=http://127.0.0.1:8000 PARLEY_BOT_KEY=pbk_... python examples/bot.py general

It signs in with its bot key (``POST /api/v1/auth/token``), connects to
``/public`` with ``auth={"token": ACCESS_TOKEN}`` and joins its rooms. When
the server says ``token:expired`` (and disconnects), or the connection drops,
it refreshes the token (``POST /api/v1/auth/refresh``; signing in again if
the refresh token is refused) and reconnects, joining with ``since`` so that
no message is missed. Replies use ``client_id = "pong-<message id>"``: a ping
seen twice (live and in a catch-up page) is answered once.

Needs python-socketio (requirements.txt) with websocket-client and requests
(requirements-dev.txt).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

import requests
import socketio

log = logging.getLogger("parley-bot")
NS = "/public"


class Tokens:
    """The bot's access and refresh tokens, renewed on demand."""

    def __init__(self, url: str, bot_key: str):
        self.url, self.bot_key = url, bot_key
        self.access = self.refresh_token = None

    def sign_in(self) -> None:
        self._take(requests.post(f"{self.url}/api/v1/auth/token",
                                 json={"bot_key": self.bot_key}, timeout=10))

    def refresh(self) -> None:
        response = requests.post(f"{self.url}/api/v1/auth/refresh",
                                 json={"refresh_token": self.refresh_token}, timeout=10)
        if response.status_code == 401:  # refresh token expired or revoked
            log.info("refresh refused; signing in again")
            return self.sign_in()
        self._take(response)

    def _take(self, response: requests.Response) -> None:
        response.raise_for_status()
        pair = response.json()
        self.access, self.refresh_token = pair["access_token"], pair["refresh_token"]


class PingBot:
    def __init__(self, url: str, bot_key: str, rooms: list[str]):
        self.url, self.rooms = url, rooms
        self.tokens = Tokens(url, bot_key)
        self.last_seen: dict[str, int] = {}
        self.me = None
        self.expired = threading.Event()
        self.closed = threading.Event()
        self.sio = socketio.Client(reconnection=False)  # reconnects with a fresh token below
        self.sio.on("message", self.on_message, namespace=NS)
        self.sio.on("token:expired", self.on_expired, namespace=NS)
        self.sio.on("disconnect", lambda *reason: self.closed.set(), namespace=NS)

    def on_message(self, message: dict) -> None:
        self.last_seen[message["room"]] = max(self.last_seen.get(message["room"], 0),
                                              message["id"])
        if message["user"]["id"] != self.me and message["body"].strip() == "!ping":
            # Not call(): a handler must not wait for an ack.
            self.sio.emit("message:send", {"room": message["room"], "body": "pong",
                                           "client_id": f"pong-{message['id']}"}, namespace=NS)

    def on_expired(self, data: dict) -> None:
        log.info("token expired; refreshing and reconnecting")
        self.expired.set()

    def run_once(self) -> None:
        """One connection: connect, join, and serve until it closes."""
        self.expired.clear()
        self.closed.clear()
        self.sio.connect(self.url, namespaces=[NS], auth={"token": self.tokens.access},
                         transports=["websocket"], wait_timeout=10)
        for room in self.rooms:
            since = self.last_seen.get(room)
            ack = self.sio.call("room:join", {"room": room, "since": since}, namespace=NS)
            if not ack["ok"]:
                log.error("cannot join %s: %s", room, ack["error"]["message"])
                continue
            if since is not None:  # a reconnect: answer what arrived meanwhile
                for message in ack["messages"]:
                    self.on_message(message)
        log.info("connected and joined %s", ", ".join(self.rooms))
        self.closed.wait()
        self.sio.disconnect()

    def run(self) -> None:
        self.tokens.sign_in()
        self.me = requests.get(f"{self.url}/api/v1/me", timeout=10, headers={
            "Authorization": f"Bearer {self.tokens.access}"}).json()["id"]
        while True:
            try:
                self.run_once()
            except socketio.exceptions.ConnectionError as exc:
                log.info("could not connect (%s)", exc)
                time.sleep(1)
            # Expired, refused or dropped: a fresh access token either way.
            self.tokens.refresh()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    url = os.environ.get("PARLEY_URL", "http://127.0.0.1:8000").rstrip("/")
    bot_key = os.environ["PARLEY_BOT_KEY"]
    rooms = sys.argv[1:] or ["general"]
    PingBot(url, bot_key, rooms).run()


if __name__ == "__main__":
    main()
