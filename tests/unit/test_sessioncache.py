"""The session cache's own rules (app/sockets/sessioncache.py): bounded,
expiring, forgetting by session and by user, and never re-inserting what a
lookup read while something was forgotten."""
from __future__ import annotations

import time

from app.sockets import sessioncache
from app.sockets.sessioncache import CachedSession, CachedUser, SessionCache


def user(user_id: int, token: str) -> CachedUser:
    return CachedUser(user_id, f"u{user_id}", False, CachedSession(token))


def test_an_entry_is_found_until_it_expires():
    cache = SessionCache()
    cache.put("cookie", user(1, "t1"), 0.05, cache.epoch)
    assert cache.get("cookie") == user(1, "t1")
    time.sleep(0.06)
    assert cache.get("cookie") is None


def test_forgetting_a_session_or_a_user_drops_exactly_their_entries():
    cache = SessionCache()
    for cookie, (uid, token) in {"a": (1, "t1"), "b": (1, "t2"), "c": (2, "t3")}.items():
        cache.put(cookie, user(uid, token), 60, cache.epoch)
        cache.put_session(cookie, {"_user_id": token}, 60)
    assert cache.forget(session="t2") == 1
    assert cache.get("b") is None and cache.session_of("b") is None
    assert cache.get("a") is not None
    assert cache.forget(user_id=1) == 1
    assert cache.get("a") is None and cache.get("c") is not None


def test_a_lookup_that_raced_a_forget_is_not_stored():
    cache = SessionCache()
    epoch = cache.epoch  # read from the database from here...
    cache.forget(session="t1")  # ...while the session ends elsewhere
    cache.put("cookie", user(1, "t1"), 60, epoch)
    assert cache.get("cookie") is None


def test_the_cache_keeps_at_most_max_entries(monkeypatch):
    monkeypatch.setattr(sessioncache, "MAX_ENTRIES", 3)
    cache = SessionCache()
    for i in range(5):
        cache.put(f"c{i}", user(i, f"t{i}"), 60, cache.epoch)
    assert len(cache) == 3 and cache.get("c0") is None and cache.get("c4") is not None


def test_a_cached_user_is_signed_in_and_not_banned():
    cached = user(7, "t7")
    assert cached.is_authenticated is True and cached.is_banned() is False
