"""A room's live feed as Server-Sent Events, beside the REST API v1 (``app/api``).

``GET /api/v1/rooms/<slug>/events`` streams the room's change log: one SSE
event per change, ``id:`` its position (the socket's ``cursor``), ``event:``
the socket event's name, ``data:`` the same JSON. A reconnecting client
sends ``Last-Event-ID`` (or ``?last_event_id=``) and resumes from the log.

A stream holds no database connection while it waits: it parks on the
feed hub (``app.feed``), woken after a commit in its room, and reads the log
in short sessions of its own. Every heartbeat, and whenever a session ended
or a user was banned somewhere, it checks that its reader may still read.
"""
from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, request

from .. import api, feed
from ..errors import DomainError, Invalid
from ..extensions import db
from ..services import Actor, changes, rooms

log = logging.getLogger(__name__)
bp = Blueprint("feed", __name__, url_prefix="/api/v1")

# Entries read per short session: a resuming client far behind gets its
# backlog in batches, each session returned to the pool before writing.
READ_BATCH = 200


def _last_event_id() -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw == "":
        raw = request.args.get("last_event_id")
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Invalid("Last-Event-ID must be an event id this feed sent", field="last_event_id")
    return int(raw)


@bp.errorhandler(DomainError)
def _refused(exc: DomainError):
    """Refusals answered as the REST API answers them (JSON, ``WWW-Authenticate``)."""
    return api.error_response(exc)


@bp.route("/rooms/<slug>/events")
def room_events(slug: str):
    """A room's changes as ``text/event-stream``, from now or after ``Last-Event-ID``.

    Signed-in users (session cookie) or bearer access tokens only (401
    otherwise); a private room for its members (404 for anyone else, its
    existence not revealed).
    """
    reader_user = api.request_user()
    actor = Actor.of(reader_user)
    room, _ = rooms.visible_room(actor, slug[:80])
    cursor = _last_event_id()
    # The stream lives as long as the sign-in session behind the cookie or
    # the token (a token's family belongs to one): revoking it ends the stream.
    reader = _Reader(current_app._get_current_object(), room.id, room.slug, actor.id,
                     reader_user.login_session.token, room.private)
    response = Response(reader.events(cursor), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    # nginx would otherwise buffer the stream (deploy/nginx turns buffering
    # off for every location too; this covers other configurations).
    response.headers["X-Accel-Buffering"] = "no"
    return response


class _Reader:
    """One open stream: what it reads, for whom, and how far it got."""

    def __init__(self, app, room_id: int, slug: str, user_id: int, token: str, private: bool):
        self.app, self.room_id, self.slug = app, room_id, slug
        self.user_id, self.token, self.private = user_id, token, private

    def events(self, cursor: int | None):
        cfg = self.app.config
        heartbeat = cfg["SSE_HEARTBEAT_SECONDS"]
        # Subscribed before the first read: a change committed from here on
        # wakes the stream, and the read below sees everything before it.
        stream = feed.hub.subscribe(self.room_id)
        try:
            yield f"retry: {cfg['SSE_RETRY_MS']}\n: room {self.slug}\n\n"
            if cursor is None:
                cursor = self._read(changes.current_position, self.room_id)
            while True:
                cursor, state, chunk = self._batch(cursor)
                if chunk:
                    yield chunk
                if state == "end":
                    return
                if state == "more":
                    continue
                if stream.wait(heartbeat):
                    if not stream.recheck:
                        continue
                    stream.recheck = False
                else:
                    yield ": heartbeat\n\n"
                if not self._read(rooms.may_follow, self.user_id, self.token, self.room_id):
                    log.info("feed of room %s ended for user %s", self.room_id, self.user_id)
                    return
        finally:
            feed.hub.unsubscribe(stream)

    def _read(self, fn, *args):
        """Run ``fn`` in a short session of its own: no connection is held between reads."""
        with self.app.app_context():
            try:
                return fn(*args)
            finally:
                db.session.remove()

    def _batch(self, cursor: int) -> tuple[int, str, str]:
        """One batch of the log after ``cursor`` as SSE text, and the cursor after it.

        The state says what follows: ``"more"`` to read, ``"idle"`` to wait,
        ``"end"`` (the reader left this private room, or the room was deleted).
        """
        entries = self._read(changes.entries_after, self.room_id, cursor, READ_BATCH)
        if entries is None:
            # The room was deleted (``room:delete``): say so, as the socket does, and end.
            return cursor, "end", (f"event: room:deleted\ndata: "
                                   f"{json.dumps({'room': self.slug})}\n\n")
        rows, newest, floor = entries
        if cursor < floor or cursor > newest:
            # What the client missed is no longer kept (or its id comes from
            # another database): it must reload the room.
            return newest, "idle", (f"id: {newest}\nevent: reset\ndata: "
                                    f"{json.dumps({'room': self.slug, 'cursor': newest})}\n\n")
        parts = []
        for position, name, payload in rows:
            parts.append(f"id: {position}\nevent: {name}\ndata: {payload}\n\n")
            cursor = position
            if name == "member:removed" and self.private and self._is_me(payload):
                return cursor, "end", "".join(parts)
        if len(rows) == READ_BATCH:
            return cursor, "more", "".join(parts)
        # The counter was read before the entries: every position up to it is seen.
        return max(cursor, newest), "idle", "".join(parts)

    def _is_me(self, payload: str) -> bool:
        return json.loads(payload).get("user", {}).get("id") == self.user_id
