"""The control messages that server processes send each other, declared.

A socket lives in one process, so an action on sockets (closing a session's
connections, dropping a room from a member's connections) has to run in every
process that may hold them. Each such action is one dataclass here: its fields
are the whole message, and ``app.bus`` carries it by its class name. Who
handles a message is declared next to the state it acts on
(``app.services.connections``), with ``bus.handler(MessageClass)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True, slots=True)
class CloseConnections:
    """Close ``/public`` connections: one sign-in session's, or every one of a user.

    Sent by sign-out (``session``), kick and ban (``user_id``, ``kicked``:
    each connection gets ``kicked`` ``{"reason"}`` first; a ban adds
    ``banned`` and ``ban_until``, an ISO time or None for "until lifted").
    Handlers answer how many connections they closed.
    """

    reason: str
    session: str | None = None
    user_id: int | None = None
    kicked: bool = False
    banned: bool = False
    ban_until: str | None = None


@dataclass(frozen=True, slots=True)
class ForgetRoom:
    """A member left a room: none of their connections receive it any more."""

    user_id: int
    room: str


@dataclass(frozen=True, slots=True)
class RoomDeleted:
    """A room was deleted: every connection that joined it forgets it."""

    room: str


@dataclass(frozen=True, slots=True)
class UserRenamed:
    """A user changed their display name: their connections' ``Actor`` follows,
    so what they send from now on carries the new name."""

    user_id: int
    display_name: str | None


@dataclass(frozen=True, slots=True)
class RoomArchived:
    """A room turned read-only (or writable): connections correct the room they cached."""

    room: str
    archived: bool


@dataclass(frozen=True, slots=True)
class CloseConsoles:
    """A user lost admin rights: close their ``/admin`` connections."""

    user_id: int


MESSAGES: dict[str, type] = {cls.__name__: cls for cls in (
    CloseConnections, ForgetRoom, RoomDeleted, UserRenamed, RoomArchived, CloseConsoles)}


def encode(message) -> dict:
    return {"type": type(message).__name__, "fields": asdict(message)}


def decode(data: dict):
    """The message ``encode`` made, or ``None`` for a type this version does not know.

    Unknown fields are dropped, so a newer process may add a field without
    breaking an older one during a rolling upgrade.
    """
    cls = MESSAGES.get(data.get("type"))
    if cls is None:
        return None
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (data.get("fields") or {}).items() if k in known})
