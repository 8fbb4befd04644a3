"""The one place that pushes events to clients, always after the commit.

A room's visible changes reach clients through ``change``, which the change
log's outbox (``app.services.changes``) calls once the transaction that
recorded them has committed: to the room's Socket.IO channel and to the SSE
feed's hub. Other pushes are queued on the same outbox by the services
(``changes.after_commit``), so nothing reaches a client that is not stored.
Control actions that must reach every server process (closing a session's
sockets, a member leaving a room) go through ``app.bus``.
"""
from __future__ import annotations

from . import bus, control, feed
from .extensions import socketio

PUBLIC = "/public"
ADMIN = "/admin"


def room_channel(slug: str) -> str:
    return f"room:{slug}"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def presence_channel(slug: str, batched: bool) -> str:
    """Who hears a room's presence: one ``presence`` per change (the contract's
    default), or ``presence:batch`` (connections that opted in at connect)."""
    return f"presence{'-batch' if batched else ''}:{slug}"


def change(item) -> None:
    """A recorded change (``changes.Change``) of a room, now committed: to its joined
    connections, and to this process's SSE streams and every other's."""
    socketio.emit(item.event, item.data, namespace=PUBLIC, to=room_channel(item.slug))
    feed.hub.notify(item.room_id, item.position)


def streams_recheck() -> None:
    """Sessions ended or users were banned: every SSE stream re-checks its reader."""
    feed.hub.recheck()


def presence(slug: str, user: dict, online: bool) -> None:
    """A member came online in a room or went offline: ``presence`` now to the
    connections that did not opt into batches, and into this process's next
    ``presence:batch`` for those that did."""
    socketio.emit("presence", {"room": slug, "user": user, "online": online},
                  namespace=PUBLIC, to=presence_channel(slug, False))
    presence_batches.add(slug, user, online)


class PresenceBatches:
    """This process's presence changes, coalesced per room into ``presence:batch``.

    A change waits at most ``window`` seconds (``PRESENCE_BATCH_SECONDS``);
    a member's last state in the window wins, so a room filling with n
    members costs each receiver one event per window, not n. One flusher
    greenlet runs while changes are pending and ends when none are. The
    batch goes through ``socketio.emit`` (the message queue with Redis), so
    every process's opted-in connections get it once.
    """

    def __init__(self):
        self.window = 0.25
        self._pending: dict[str, dict[int, tuple[dict, bool]]] = {}
        self._flushing = False

    def clear(self) -> None:
        self._pending = {}

    def add(self, slug: str, user: dict, online: bool) -> None:
        self._pending.setdefault(slug, {})[user["id"]] = (user, online)
        if not self._flushing:
            self._flushing = True
            socketio.start_background_task(self._run)

    def _run(self) -> None:
        try:
            while self._pending:
                socketio.sleep(self.window)
                self.flush()
        finally:
            self._flushing = False

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for slug, changes in pending.items():
            emit_presence_batch(slug, changes.values())


def emit_presence_batch(slug: str, changes) -> None:
    """``presence:batch`` ``{"room", "online": [User], "offline": [User]}``."""
    online, offline = [], []
    for user, is_online in changes:
        (online if is_online else offline).append(user)
    socketio.emit("presence:batch", {"room": slug, "online": online, "offline": offline},
                  namespace=PUBLIC, to=presence_channel(slug, True))


presence_batches = PresenceBatches()


def typing(slug: str, user: dict, is_typing: bool, skip_sids: list[str]) -> None:
    socketio.emit("typing", {"room": slug, "user": user, "typing": is_typing},
                  namespace=PUBLIC, to=room_channel(slug), skip_sid=skip_sids)


def room_added(user_id: int, room: dict) -> None:
    """Tell a user's connections that they became a member of ``room``."""
    socketio.emit("room:added", {"room": room}, namespace=PUBLIC, to=user_channel(user_id))


def mention(user_ids: list[int], slug: str, message: dict) -> None:
    """Tell each mentioned user's connections, joined to the room or not."""
    payload = {"room": slug, "message": message}
    for user_id in user_ids:
        socketio.emit("mention", payload, namespace=PUBLIC, to=user_channel(user_id))


def notify_level(user_id: int, reply: dict) -> None:
    """A user chose a notification level for a room: their other tabs follow."""
    socketio.emit("room:notify", reply, namespace=PUBLIC, to=user_channel(user_id))


def kicked(sid: str, reason: str, ban: dict | None = None) -> None:
    """Tell one connection why it is being closed, just before it is.

    A ban adds ``"banned": true`` and ``"until"`` (null: until lifted).
    """
    socketio.emit("kicked", {"reason": reason or "", **(ban or {})}, namespace=PUBLIC, to=sid)


def announcement(announcement: dict) -> None:
    """``announcement`` to every ``/public`` client, or to its room's joined connections."""
    to = room_channel(announcement["room"]) if announcement["room"] else None
    socketio.emit("announcement", announcement, namespace=PUBLIC, to=to)


def session_ended(token: str) -> None:
    bus.publish(control.CloseConnections(reason="signed out", session=token))
    feed.hub.recheck()


def user_disconnect(user_id: int, reason: str, *, kicked: bool, ban: dict | None = None) -> int:
    """Close every ``/public`` connection of a user, on every process.

    With ``kicked`` each gets ``kicked`` ``{"reason"}`` first, plus
    ``{"banned": true, "until"}`` given a ``ban``. Returns how many
    connections were closed in all.
    """
    from .services.cluster import live_processes

    feed.hub.recheck()
    ban_fields = {"banned": True, "ban_until": ban["until"]} if ban is not None else {}
    return bus.gather(control.CloseConnections(reason=reason, user_id=user_id, kicked=kicked,
                                               **ban_fields),
                      peers=len(live_processes()) - 1)


def member_left(user_id: int, slug: str) -> None:
    bus.publish(control.ForgetRoom(user_id=user_id, room=slug))


def member_removed(user_id: int, slug: str, by: dict) -> None:
    """A member was removed from a room: their connections stop receiving it
    (every process), then each gets ``room:removed`` ``{"room", "by"}``."""
    bus.publish(control.ForgetRoom(user_id=user_id, room=slug))
    socketio.emit("room:removed", {"room": slug, "by": by}, namespace=PUBLIC,
                  to=user_channel(user_id))


def room_deleted(room_id: int, slug: str, private: bool, member_ids: list[int],
                 by: dict) -> None:
    """A room was deleted: every process drops it from its connections, then
    ``room:deleted`` ``{"room", "by"}`` reaches every ``/public`` client for a
    public room (each lists it), a private room's members only; its SSE streams end."""
    bus.publish(control.RoomDeleted(room=slug))
    to = [user_channel(user_id) for user_id in member_ids] if private else None
    if to != []:
        socketio.emit("room:deleted", {"room": slug, "by": by}, namespace=PUBLIC, to=to)
    feed.hub.notify(room_id, 0)


def user_updated(user: dict, slugs: list[str]) -> None:
    """A user changed their display name: their connections carry it from now
    on (every process), and ``user:updated`` ``{"user"}`` reaches the connections
    joined to a room they are in, and their own, once each."""
    bus.publish(control.UserRenamed(user_id=user["id"], display_name=user["display_name"]))
    socketio.emit("user:updated", {"user": user}, namespace=PUBLIC,
                  to=[user_channel(user["id"]), *(room_channel(slug) for slug in slugs)])


def audit(entry: dict) -> None:
    socketio.emit("audit", entry, namespace=ADMIN)


def room_archived(slug: str, archived: bool) -> None:
    """A room became read-only (or writable again).

    Every process updates the room as its connections cached it, so their
    next send is refused (or allowed) without a query. (Its joined
    connections get ``room:archived`` from the change log.)
    """
    bus.publish(control.RoomArchived(room=slug, archived=archived))


def admin_disconnect(user_id: int) -> int:
    """Close a user's ``/admin`` connections on every process (they were demoted)."""
    return int(bus.publish(control.CloseConsoles(user_id=user_id)) or 0)


def stats(figures: dict, to: str) -> None:
    """Push the dashboard's figures to one process's admin connections (``to``)."""
    socketio.emit("stats", figures, namespace=ADMIN, to=to)
