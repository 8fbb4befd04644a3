"""This process's live connections, who is online where, and the control messages that act on them.

One owner for the realtime state of a server process (``live``):

- the live connections of ``/public`` (``live.public``) and ``/admin``
  (``live.admins``): each keeps its ``Actor`` and the rooms it joined for its
  lifetime, so sending and typing need no query;
- presence (``live.presence``): counts per process, shared through Redis when
  configured (``app.services.presence``), and the grace timers that turn a
  member offline a few seconds after their last connection closes;
- the handlers of the control messages (``app.control``) that other
  processes send to act on this process's connections;
- the typing throttle (``app.services.typists``);
- the admin console's stats push.

Lifecycle: ``use_presence`` at start-up (``cluster.configure``), ``reset``
between tests, ``settle`` to wait for pending grace timers.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app

from .. import bus, control, events
from ..errors import RateLimited
from ..extensions import db, socketio
from . import Actor
from .presence import MemoryPresence
from .ratelimit import report
from .rooms import RoomRef
from .typists import TypingThrottle

log = logging.getLogger(__name__)

# A refused connection has no window to wait out: a live one must close first.
# Socket.IO clients retry with backoff; this tells them not to hurry.
CONNECTION_CAP_RETRY_AFTER = 10.0

# Every few seconds: often enough for a live chart, rarely enough that the
# figures' queries (a count of messages, a few index look-ups) cost nothing.
STATS_PUSH_SECONDS = 2.0

# This process's admin connections: the stats push goes to them only, since
# every process pushes its own (a broadcast would reach each admin once per
# process).
LOCAL_ADMINS = f"admins@{bus.PROCESS_ID}"


@dataclass(slots=True)
class Connection:
    sid: str
    actor: Actor
    session_token: str
    rooms: dict[str, RoomRef] = field(default_factory=dict)
    # The client's address as the app sees it (after ProxyFix), for the
    # per-address connection cap.
    address: str = ""
    # Presence as ``presence:batch`` (opted in at connect) instead of ``presence``.
    batched_presence: bool = False


class Registry:
    """Connections by id, by user and by address (one namespace's)."""

    def __init__(self):
        self._by_sid: dict[str, Connection] = {}
        self._by_user: dict[int, set[str]] = defaultdict(set)
        self._by_address: dict[str, int] = defaultdict(int)

    def clear(self) -> None:
        self._by_sid.clear()
        self._by_user.clear()
        self._by_address.clear()

    def add(self, connection: Connection) -> None:
        self._by_sid[connection.sid] = connection
        self._by_user[connection.actor.id].add(connection.sid)
        self._by_address[connection.address] += 1

    def remove(self, sid: str) -> Connection | None:
        connection = self._by_sid.pop(sid, None)
        if connection is not None:
            sids = self._by_user.get(connection.actor.id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_user[connection.actor.id]
            self._by_address[connection.address] -= 1
            if self._by_address[connection.address] <= 0:
                del self._by_address[connection.address]
        return connection

    def get(self, sid: str) -> Connection | None:
        return self._by_sid.get(sid)

    def of_user(self, user_id: int) -> list[Connection]:
        return [self._by_sid[sid] for sid in self._by_user.get(user_id, ())]

    def count_of_user(self, user_id: int) -> int:
        return len(self._by_user.get(user_id, ()))

    def count_of_address(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def of_session(self, token: str) -> list[Connection]:
        return [c for c in self._by_sid.values() if c.session_token == token]

    def all(self) -> list[Connection]:
        return list(self._by_sid.values())

    def sids(self) -> list[str]:
        return list(self._by_sid)

    def __len__(self) -> int:
        return len(self._by_sid)

    def user_count(self) -> int:
        return len(self._by_user)


class Live:
    """The realtime state of this process (see the module's docstring)."""

    def __init__(self):
        self.public = Registry()
        self.admins = Registry()
        self.presence: MemoryPresence = MemoryPresence()
        # Offline pushes still waiting out their grace period (see ``settle``).
        self._pending_offline: set[object] = set()
        self.typing = TypingThrottle()
        self.stats_push = StatsPush(self)

    # -- lifecycle ----------------------------------------------------------

    def use_presence(self, backend: MemoryPresence) -> None:
        """Share presence through ``backend`` (Redis) from now on."""
        self.presence = backend

    def reset(self) -> None:
        """Forget every connection and count (tests start each from empty)."""
        self.public.clear()
        self.admins.clear()
        self.presence = MemoryPresence()
        self._pending_offline.clear()
        events.presence_batches.clear()
        from .rooms import members_cache

        members_cache.clear()
        from ..sockets.sessioncache import cache

        cache.clear()
        self.typing = TypingThrottle()
        self.stats_push.running = False

    def settle(self, timeout: float) -> None:
        """Wait until every pending offline push has been sent (or ``timeout``).

        The tests call this between tests so that one test's offline pushes
        never reach the next test's clients.
        """
        socketio.sleep(0)  # let timers just started register themselves
        deadline = time.monotonic() + timeout
        while self._pending_offline and time.monotonic() < deadline:
            socketio.sleep(0.01)

    # -- /public ------------------------------------------------------------

    def check_caps(self, user_id: int, username: str, address: str) -> None:
        """Refuse a connection past the per-user or per-address cap (this process's count)."""
        cfg = current_app.config
        for rule, limit, count, key in (
            ("connect_user", cfg["MAX_CONNECTIONS_PER_USER"],
             self.public.count_of_user(user_id), username),
            ("connect_address", cfg["MAX_CONNECTIONS_PER_ADDRESS"],
             self.public.count_of_address(address), address),
        ):
            if limit and count >= limit:
                log.info("connection refused: %s cap of %s reached", rule, limit)
                report(rule, key, f"{count} live connections; the cap is {limit}")
                raise RateLimited(
                    f"too many connections (at most {limit}); close one and retry",
                    retry_after=CONNECTION_CAP_RETRY_AFTER)

    def connected(self, connection: Connection) -> None:
        """A ``/public`` connection was accepted."""
        self.public.add(connection)
        self.presence.connected(connection.actor.id)

    def disconnected(self, sid: str) -> None:
        """A ``/public`` connection closed: offline in each joined room after the grace period."""
        connection = self.public.remove(sid)
        if connection is None:
            return
        self.presence.disconnected(connection.actor.id)
        app = current_app._get_current_object()
        grace = app.config["PRESENCE_GRACE_SECONDS"]
        for slug in connection.rooms:
            if self.presence.left(slug, connection.actor.id):
                socketio.start_background_task(self._offline_after_grace, app, slug,
                                               connection.actor, grace)

    def joined(self, connection: Connection, room: RoomRef) -> tuple[bool, bool]:
        """Count ``connection`` in ``room``: whether it is new there, and whether
        its member just came online in the room (on no process before).

        Presence ``online`` is pushed for the second only, so a repeated join
        or a second tab repeats nothing (n joins cost n pushes, not n²).
        """
        if room.slug in connection.rooms:
            return False, False
        connection.rooms[room.slug] = room
        was_online = self.presence.is_online(room.slug, connection.actor.id)
        first_here = self.presence.joined(room.slug, connection.actor.id)
        return True, first_here and not was_online

    def _offline_after_grace(self, app, slug: str, actor: Actor, grace: float) -> None:
        token = object()
        self._pending_offline.add(token)
        try:
            socketio.sleep(grace)
            if not self.presence.is_online(slug, actor.id):
                with app.app_context():
                    events.presence(slug, actor.to_public(), False)
        finally:
            self._pending_offline.discard(token)

    def drop_transports(self) -> None:
        """Cut every Engine.IO transport of this process, without a goodbye.

        After a message-queue outage, events broadcast while Redis was away
        never reached this process's clients. A namespace disconnect or an
        Engine.IO close packet tells clients the server meant it and they
        stay away, while a lost transport makes every client reconnect on
        its own and catch up with ``room:join`` ``since``.
        """
        for eio_socket in list(socketio.server.eio.sockets.values()):
            eio_socket.close(wait=False, abort=True)


class StatsPush:
    """This process's one background task pushing ``stats`` to its admins.

    It runs while at least one admin is connected here and ends after the
    last one leaves; the next admin to connect starts it again.
    """

    def __init__(self, state: Live):
        self.state = state
        self.running = False

    def ensure_running(self, app) -> None:
        if self.running:
            return
        self.running = True
        socketio.start_background_task(self._run, app)

    def _run(self, app) -> None:
        try:
            while len(self.state.admins):
                socketio.sleep(STATS_PUSH_SECONDS)
                self.push_once(app)
        finally:
            self.running = False

    def push_once(self, app) -> None:
        """Close consoles whose rights lapsed, then push the figures to the others."""
        from . import stats

        with app.app_context():
            try:
                close_lapsed_consoles()
                if len(self.state.admins):
                    events.stats(stats.snapshot(), LOCAL_ADMINS)
            except Exception:
                log.exception("stats push failed")
            finally:
                db.session.remove()


live = Live()


def close_lapsed_consoles() -> int:
    """Disconnect this process's consoles whose admin signed out, was demoted or banned.

    Demotion closes consoles at once through the bus; this sweep also covers
    rights taken away elsewhere (a sign-out, the database), so pushes stop
    within one stats period.
    """
    from .moderation import live_admin_sessions

    connections = live.admins.all()
    still = live_admin_sessions({c.session_token for c in connections})
    lapsed = [c for c in connections if c.session_token not in still]
    for connection in lapsed:
        socketio.server.disconnect(connection.sid, namespace=events.ADMIN)
    return len(lapsed)


# -- control messages: what other processes ask of this one's connections ------------

@bus.handler(control.CloseConnections)
def _close_connections(message: control.CloseConnections) -> int:
    """Sign-out, kick and ban: close the matching connections of this process.

    Returns how many it closed (``bus.gather`` adds the processes up).
    """
    from ..sockets.sessioncache import cache

    cache.forget(session=message.session, user_id=message.user_id)
    if message.session is not None:
        targets = live.public.of_session(message.session)
    else:
        targets = live.public.of_user(message.user_id)
    for connection in targets:
        if message.kicked:
            ban = {"banned": True, "until": message.ban_until} if message.banned else None
            events.kicked(connection.sid, message.reason, ban)
        socketio.server.disconnect(connection.sid, namespace=events.PUBLIC)
    return len(targets)


def _unsubscribe(connection, slug: str) -> None:
    """Take ``connection`` out of the room's channels: its changes and its presence."""
    for channel in (events.room_channel(slug),
                    events.presence_channel(slug, connection.batched_presence)):
        socketio.server.leave_room(connection.sid, channel, namespace=events.PUBLIC)


@bus.handler(control.ForgetRoom)
def _forget_room(message: control.ForgetRoom) -> None:
    """A member left a room: none of their connections here receive it any more."""
    user_id, slug = message.user_id, message.room
    for connection in live.public.of_user(user_id):
        if connection.rooms.pop(slug, None) is not None:
            _unsubscribe(connection, slug)
            if live.presence.left(slug, user_id) and not live.presence.is_online(slug, user_id):
                events.presence(slug, connection.actor.to_public(), False)


@bus.handler(control.RoomDeleted)
def _forget_deleted_room(message: control.RoomDeleted) -> int:
    """A room was deleted: every connection here that joined it forgets it.

    No presence push: there is no room left to tell. Returns how many
    connections had joined it.
    """
    slug = message.room
    forgot = 0
    for connection in live.public.all():
        if connection.rooms.pop(slug, None) is None:
            continue
        forgot += 1
        _unsubscribe(connection, slug)
        live.presence.left(slug, connection.actor.id)
    return forgot


@bus.handler(control.UserRenamed)
def _rename_actor(message: control.UserRenamed) -> None:
    """A display name changed: the user's connections here carry the new one,
    and the member lists this process keeps are read again."""
    from ..sockets.sessioncache import cache
    from .rooms import members_cache

    members_cache.clear()
    cache.forget(user_id=message.user_id)
    for registry in (live.public, live.admins):
        for connection in registry.of_user(message.user_id):
            connection.actor = dataclasses.replace(connection.actor,
                                                   display_name=message.display_name)


@bus.handler(control.RoomArchived)
def _update_cached_room(message: control.RoomArchived) -> None:
    """A room was archived or reopened: correct what this process's connections cached.

    ``/public`` connections keep the ``RoomRef`` of each room they joined so
    a send needs no query; its ``archived`` flag must follow the room.
    """
    for connection in live.public.all():
        cached = connection.rooms.get(message.room)
        if cached is not None and cached.archived != message.archived:
            connection.rooms[message.room] = dataclasses.replace(cached,
                                                                 archived=message.archived)


@bus.handler(control.CloseConsoles)
def _close_consoles(message: control.CloseConsoles) -> int:
    """A user lost admin rights: close their consoles in this process."""
    targets = live.admins.of_user(message.user_id)
    for connection in targets:
        socketio.server.disconnect(connection.sid, namespace=events.ADMIN)
    return len(targets)
