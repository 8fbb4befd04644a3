"""A real webhook receiver on loopback: ``http.server`` in a thread, recording each POST."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from requests.structures import CaseInsensitiveDict


@dataclass
class Received:
    path: str
    headers: CaseInsensitiveDict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def delivery(self) -> str:
        return self.headers["x-parley-delivery"]


@dataclass
class Receiver:
    """``answer(request_number, received)`` gives the status (default 200), or
    ``("redirect", url)``, or ``"hang"`` (never answer until ``release``)."""

    answer: object = None
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up (timed out, or was killed)

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(self.path, CaseInsensitiveDict(self.headers.items()),
                               self.rfile.read(length))
                with receiver._lock:
                    receiver.requests.append(got)
                    number = len(receiver.requests)
                reply = receiver.answer(number, got) if receiver.answer else 200
                if reply == "hang":
                    receiver._release.wait(120)
                    reply = 200
                if isinstance(reply, tuple):
                    self.send_response(302)
                    self.send_header("Location", reply[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(reply)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def release(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def got(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def events(self) -> list[tuple[str, str, int]]:
        """``(event, room, cursor)`` of each request, in arrival order."""
        return [(r.json["event"], r.json["room"], r.json["cursor"]) for r in self.got()]
