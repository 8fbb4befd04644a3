"""Emitting to Parley's clients from outside the server (cron, Celery, scripts).

A background job does not run the Socket.IO server; it publishes to the same
Redis message queue that the server processes listen on, and they deliver.
It needs ``REDIS_URL`` (the servers' Redis) and nothing else: no database and
no app instance (``create_app`` is never called), so a job can import it
without starting a server.

    from app.external import announce
    announce("Maintenance at 22:00 UTC", redis_url="redis://redis.internal:6379/0")

Announcements sent this way are not written to the audit log; use
``flask --app wsgi announce`` (which is) when the job can run the app's CLI.
"""
from __future__ import annotations

import os

from flask_socketio import SocketIO

from .events import PUBLIC, room_channel
from .models import isoformat, utcnow

# Flask-SocketIO's channel: the servers listen on it (python-socketio's own
# default, "socketio", would reach nobody).
CHANNEL = "flask-socketio"
MAX_BODY = 4000


def _emitter(redis_url: str | None) -> SocketIO:
    url = redis_url or os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("emitting from outside the server needs REDIS_URL")
    return SocketIO(message_queue=url, channel=CHANNEL)


def announce(body: str, room: str | None = None, *, redis_url: str | None = None) -> dict:
    """Send ``announcement`` to every ``/public`` client, or to one room's."""
    if not isinstance(body, str) or not body.strip() or len(body) > MAX_BODY:
        raise ValueError(f"an announcement is 1 to {MAX_BODY} characters")
    payload = {"body": body, "created_at": isoformat(utcnow()), "room": room}
    _emitter(redis_url).emit("announcement", payload, namespace=PUBLIC,
                             to=room_channel(room) if room else None)
    return payload
