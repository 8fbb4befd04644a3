"""Who a cookie connection is, without a database read on every connect.

A reconnect storm brings every client back within seconds, each with the
same session cookie it connected with before; looking each one up again
(the session row and its user) serializes them behind the database. So
``/public`` remembers, per session cookie, the signed-in user it found, for
``SESSION_CACHE_SECONDS`` (0 turns it off):

- only users allowed in: a banned user, an anonymous cookie or a token
  connection is never remembered, and ``/admin`` always reads the database
  (its rights must be current);
- keyed by the exact cookie value Flask signed, so nothing is remembered
  that the server did not verify first; bounded in size (oldest out);
- forgotten at once, on every process, when the session ends or the user
  is kicked or banned: sign-out, a password change and a ban all end
  sessions through ``control.CloseConnections`` on the bus, whose handler
  (``connections._close_connections``) calls ``forget``. A connection that
  slips in between the end of a session and the bus message reaching its
  process is in the registry under that session, so the same handler closes
  it;
- an answer read from the database while a ``forget`` happened is not
  stored (``epoch``), so a lookup racing a sign-out cannot re-insert it;
- and every hit still reads the session row's ``revoked_at`` (one indexed
  Core statement, no ORM): a session ended by a process that is not on the
  bus (``flask reset-password`` on a server without Redis) is refused at
  once all the same. A ban ends the user's sessions, so it is caught too.
  What the cache saves is the ORM's load of the session and its user, the
  Flask-Login loader and its session-protection hash.

What is remembered is a ``CachedUser``: what admitting a ``/public``
connection reads of its user (id, username, bot, session token, display
name: a new one forgets the user's entries, ``control.UserRenamed``).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from flask import current_app, request, session
from flask_login import current_user
from sqlalchemy import bindparam, select

from ..extensions import db
from ..models import LoginSession

# Distinct sign-in sessions remembered per process (a few hundred bytes each).
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class CachedSession:
    token: str


@dataclass(frozen=True, slots=True)
class CachedUser:
    """A signed-in, not banned user as ``/public`` admits them (duck-types ``User``)."""

    id: int
    username: str
    is_bot: bool
    login_session: CachedSession
    display_name: str | None = None
    is_authenticated: ClassVar[bool] = True

    def is_banned(self, now=None) -> bool:
        return False  # a ban forgets the entry before it could be read


class SessionCache:
    def __init__(self):
        self._entries: OrderedDict[str, tuple[float, CachedUser]] = OrderedDict()
        # The same cookies' decoded Flask sessions (``decoded_session``).
        self._sessions: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        self.epoch = 0
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        self._entries.clear()
        self._sessions.clear()
        self.epoch += 1

    def session_of(self, cookie: str) -> dict | None:
        entry = self._sessions.get(cookie)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put_session(self, cookie: str, data: dict, ttl: float) -> None:
        self._sessions[cookie] = (time.monotonic() + ttl, data)
        self._sessions.move_to_end(cookie)
        while len(self._sessions) > MAX_ENTRIES:
            self._sessions.popitem(last=False)

    def get(self, cookie: str) -> CachedUser | None:
        entry = self._entries.get(cookie)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[cookie]
            return None
        return entry[1]

    def put(self, cookie: str, user: CachedUser, ttl: float, epoch: int) -> None:
        if epoch != self.epoch:
            return  # something was forgotten while this was read
        self._entries[cookie] = (time.monotonic() + ttl, user)
        self._entries.move_to_end(cookie)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def forget(self, *, session: str | None = None, user_id: int | None = None) -> int:
        """Drop the entries of one session token, or of every session of a user."""
        self.epoch += 1
        doomed = [cookie for cookie, (_, user) in self._entries.items()
                  if (session is not None and user.login_session.token == session)
                  or (user_id is not None and user.id == user_id)]
        for cookie in doomed:
            del self._entries[cookie]
        if session is not None:
            for cookie in [c for c, (_, data) in self._sessions.items()
                           if data.get("_user_id") == session]:
                del self._sessions[cookie]
        return len(doomed)

    def __len__(self) -> int:
        return len(self._entries)


cache = SessionCache()

_login_sessions = LoginSession.__table__
_REVOKED_AT = select(_login_sessions.c.revoked_at).where(
    _login_sessions.c.token == bindparam("token"))


def decoded_session(app, request, open_session):
    """A socket connect's Flask session: the decoded copy of a cookie seen before.

    ``ConnectionSessionInterface`` calls this for a connection's first event
    (the connect): the exact cookie value was verified (HMAC) and decoded
    once, within ``SESSION_CACHE_SECONDS``; each connection gets its own copy.
    HTTP requests never come here.
    """
    ttl = app.config["SESSION_CACHE_SECONDS"]
    cookie = request.cookies.get(app.config["SESSION_COOKIE_NAME"]) if ttl > 0 else None
    if not cookie:
        return open_session(app, request)
    data = cache.session_of(cookie)
    if data is None:
        opened = open_session(app, request)
        if opened is None or opened.new or not opened.get("_user_id"):
            return opened
        cache.put_session(cookie, dict(opened), ttl)
        return opened
    return app.session_interface.session_class(data)


def cookie_user():
    """The connecting cookie's user: remembered, or Flask-Login's ``current_user``."""
    ttl = current_app.config["SESSION_CACHE_SECONDS"]
    cookie = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"]) if ttl > 0 else None
    if not cookie:
        return current_user
    found = cache.get(cookie)
    if found is not None:
        row = db.session.connection().execute(
            _REVOKED_AT, {"token": found.login_session.token}).first()
        if row is not None and row.revoked_at is None:
            cache.hits += 1
            return found
        cache.forget(session=found.login_session.token)
    cache.misses += 1
    epoch = cache.epoch
    user = current_user._get_current_object()
    # Only a user the session cookie itself names (not a remember-me cookie).
    if (user.is_authenticated and not user.is_banned()
            and session.get("_user_id") == user.login_session.token):
        cache.put(cookie, CachedUser(user.id, user.username, bool(user.is_bot),
                                     CachedSession(user.login_session.token),
                                     user.display_name), ttl, epoch)
    return user
