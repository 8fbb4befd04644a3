"""A real Server-Sent Events client (httpx + httpx-sse) that reads in the background.

Tests wait on what arrived with deadlines instead of blocking on the stream.
"""
from __future__ import annotations

import threading

import httpx
from httpx_sse import connect_sse

from .server import cookie_header, wait_until


class Feed:
    """One open ``text/event-stream`` response, its events recorded as they arrive."""

    def __init__(self, url: str, http, *, last_event_id: str | None = None,
                 params: dict | None = None):
        headers = {"Cookie": cookie_header(http), "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.client = httpx.Client(headers=headers, timeout=httpx.Timeout(10, read=30))
        self.url, self.params = url, params
        self.events: list = []
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self.ended = threading.Event()
        self.opened = threading.Event()
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._read, daemon=True)

    def open(self) -> "Feed":
        self._thread.start()
        assert self.opened.wait(10), "the feed never answered"
        return self

    def _read(self) -> None:
        try:
            with connect_sse(self.client, "GET", self.url, params=self.params) as source:
                self.status = source.response.status_code
                self.headers = source.response.headers
                self.response = source.response
                self.opened.set()
                if self.status != 200:
                    return
                for sse in source.iter_sse():
                    if not sse.data and not sse.id:
                        # httpx-sse hands over a block with only "retry:" as
                        # an event; browsers dispatch nothing for it.
                        self.retry = sse.retry
                        continue
                    with self._lock:
                        self.events.append(sse)
        except (httpx.HTTPError, RuntimeError):
            if not self._closing:
                raise
        finally:
            self.opened.set()
            self.ended.set()

    def got(self, name: str | None = None) -> list:
        with self._lock:
            return [e for e in self.events if name is None or e.event == name]

    def wait_for_count(self, count: int, timeout: float = 15) -> list:
        wait_until(lambda: len(self.got()) >= count, timeout,
                   message=f"the feed got {len(self.got())} of {count} events")
        return self.got()

    def close(self) -> None:
        """Drop the connection (as a network failure would) and stop reading."""
        self._closing = True
        response = getattr(self, "response", None)
        if response is not None:
            response.close()
        self.client.close()
        self._thread.join(10)
