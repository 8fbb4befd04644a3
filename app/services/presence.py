"""Who is online in which room.

A member is online in a room while at least one of their connections has
joined it. Each process counts its own connections per (room, user), so a
second tab can come and go without turning the member offline.
``MemoryPresence`` serves a single process; ``RedisPresence`` adds a Redis set
per (room, process) so every process sees the members online anywhere. Each
process refreshes the expiry of its sets on its heartbeat, so the sets of a
crashed process vanish instead of leaving ghosts.
"""
from __future__ import annotations

import logging
from collections import defaultdict

log = logging.getLogger(__name__)

# How long a process's presence sets outlive its last heartbeat (see
# cluster.HEARTBEAT_SECONDS): three missed beats mean the process is gone.
PRESENCE_TTL_SECONDS = 10


class MemoryPresence:
    def __init__(self):
        self._rooms: dict[str, dict[int, int]] = defaultdict(dict)
        self._users: dict[int, int] = {}

    # -- connections (for users_online) --

    def connected(self, user_id: int) -> None:
        self._users[user_id] = self._users.get(user_id, 0) + 1

    def disconnected(self, user_id: int) -> None:
        count = self._users.get(user_id, 0) - 1
        if count > 0:
            self._users[user_id] = count
        else:
            self._users.pop(user_id, None)

    def users_online(self) -> int:
        return len(self._users)

    def is_user_online(self, user_id: int) -> bool:
        return user_id in self._users

    # -- rooms --

    def joined(self, slug: str, user_id: int) -> bool:
        """Count one connection in; True when it is the member's first here."""
        members = self._rooms[slug]
        members[user_id] = members.get(user_id, 0) + 1
        return members[user_id] == 1

    def left(self, slug: str, user_id: int) -> bool:
        """Count one connection out; True when it was the member's last one here."""
        members = self._rooms.get(slug)
        if not members or user_id not in members:
            return False
        members[user_id] -= 1
        if members[user_id] > 0:
            return False
        del members[user_id]
        if not members:
            del self._rooms[slug]
        return True

    def is_online(self, slug: str, user_id: int) -> bool:
        return user_id in self._rooms.get(slug, ())

    def online(self, slug: str) -> set[int]:
        return set(self._rooms.get(slug, ()))

    def heartbeat(self) -> None:
        """Nothing to refresh in memory."""


class RedisPresence(MemoryPresence):
    """Local counts as above, published as Redis sets shared by every process.

    Redis is never the only copy of this process's part: every heartbeat
    rewrites its sets from the local counts, so after Redis restarts (empty)
    or a write was lost, the shared view heals within one beat. While Redis
    is unreachable, reads fall back to what this process knows.
    """

    def __init__(self, redis, process_id: str, live_processes):
        super().__init__()
        self._redis = redis
        self._process = process_id
        self._live = live_processes  # callable: ids of processes alive now

    def _room_key(self, slug: str, process: str) -> str:
        return f"parley:presence:{slug}:{process}"

    def _users_key(self, process: str) -> str:
        return f"parley:online:{process}"

    def _write(self, op: str, key: str, user_id: int) -> None:
        try:
            pipe = self._redis.pipeline(transaction=False)
            getattr(pipe, op)(key, user_id)
            pipe.expire(key, PRESENCE_TTL_SECONDS)
            pipe.execute()
        except Exception:
            log.warning("presence: Redis unavailable; the next heartbeat resyncs", exc_info=True)

    def connected(self, user_id: int) -> None:
        super().connected(user_id)
        if self._users[user_id] == 1:
            self._write("sadd", self._users_key(self._process), user_id)

    def disconnected(self, user_id: int) -> None:
        super().disconnected(user_id)
        if user_id not in self._users:
            self._write("srem", self._users_key(self._process), user_id)

    def joined(self, slug: str, user_id: int) -> bool:
        first = super().joined(slug, user_id)
        if first:
            self._write("sadd", self._room_key(slug, self._process), user_id)
        return first

    def left(self, slug: str, user_id: int) -> bool:
        last = super().left(slug, user_id)
        if last:
            self._write("srem", self._room_key(slug, self._process), user_id)
        return last

    def users_online(self) -> int:
        try:
            return len(self._redis.sunion([self._users_key(p) for p in self._live()]))
        except Exception:
            return super().users_online()

    def is_user_online(self, user_id: int) -> bool:
        try:
            return any(self._redis.sismember(self._users_key(p), user_id) for p in self._live())
        except Exception:
            return super().is_user_online(user_id)

    def is_online(self, slug: str, user_id: int) -> bool:
        try:
            return any(self._redis.sismember(self._room_key(slug, p), user_id)
                       for p in self._live())
        except Exception:
            return super().is_online(slug, user_id)

    def online(self, slug: str) -> set[int]:
        try:
            keys = [self._room_key(slug, p) for p in self._live()]
            return {int(uid) for uid in self._redis.sunion(keys)}
        except Exception:
            return super().online(slug)

    def heartbeat(self) -> None:
        """Rewrite this process's sets from the local counts, atomically per set."""
        pipe = self._redis.pipeline(transaction=True)
        sets = {self._room_key(slug, self._process): members
                for slug, members in self._rooms.items()}
        sets[self._users_key(self._process)] = self._users
        for key, members in sets.items():
            pipe.delete(key)
            if members:
                pipe.sadd(key, *members)
                pipe.expire(key, PRESENCE_TTL_SECONDS)
        pipe.execute()
