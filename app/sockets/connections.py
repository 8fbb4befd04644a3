"""The live connections of this process, and what each has joined.

A connection keeps its ``Actor`` and the rooms it joined for its lifetime, so
sending and typing need no query to find the user or check membership.
Anything that revokes that knowledge (sign-out, a kick, leaving a room)
reaches every process through ``app.bus`` and lands here.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..services import Actor
from ..services.rooms import RoomRef


@dataclass(slots=True)
class Connection:
    sid: str
    actor: Actor
    session_token: str
    rooms: dict[str, RoomRef] = field(default_factory=dict)
    # The client's address as the app sees it (after ProxyFix), for the
    # per-address connection cap.
    address: str = ""


class Registry:
    def __init__(self):
        self._by_sid: dict[str, Connection] = {}
        self._by_user: dict[int, set[str]] = defaultdict(set)
        self._by_address: dict[str, int] = defaultdict(int)

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

    def sids(self) -> list[str]:
        return list(self._by_sid)

    def __len__(self) -> int:
        return len(self._by_sid)

    def user_count(self) -> int:
        return len(self._by_user)


registry = Registry()
