"""Accounts and sign-in sessions."""
from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from datetime import timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import select

from .. import events
from ..errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from ..extensions import db
from ..models import LoginSession, Membership, Room, User, isoformat, utcnow
from . import audit, changes, invites
from .ratelimit import limits
from .text import is_blank
from .threads import offload

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,32}$")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024

# Verified against when the username is unknown, so that a failed sign-in
# takes as long for a missing user as for a wrong password.
_dummy_hash: str | None = None


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(time_cost=cfg["PASSWORD_TIME_COST"],
                          memory_cost=cfg["PASSWORD_MEMORY_COST"])


def check_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_RE.fullmatch(username):
        raise Invalid("a username is 2 to 32 letters, digits, '.', '_' or '-'",
                      field="username")
    return username


def check_password(password: str) -> str:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise Invalid(f"a password is {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters",
                      field="password")
    return password


def find_user(username: str) -> User | None:
    return db.session.execute(
        select(User).where(User.username_key == username.strip().lower())
    ).scalar_one_or_none()


def get_user(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise NotFound(f"no user named {username!r}", field="user")
    return user


def create_user(username: str, password: str, *, is_admin: bool = False,
                invite: str | None = None) -> User:
    """A new account; with ``invite``, that code is spent in the same transaction."""
    username = check_username(username)
    password = check_password(password)
    if invite is not None:
        invite = invites.check_code(invite)
    if find_user(username) is not None:
        raise Conflict("that username is taken", field="username")
    hashed = offload(_hasher().hash, password)
    user = User(username=username, username_key=username.lower(),
                password_hash=hashed, is_admin=is_admin)
    db.session.add(user)
    try:
        db.session.flush()  # the user's id, for the invite's used_by and the memberships
        if invite is not None:
            invites.spend(invite, user)
        # A new user lands in the instance's default rooms, in the same
        # transaction: an account never exists without them.
        from .rooms import join_default_rooms  # rooms imports this module

        join_default_rooms(user.id)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    log.info("user created id=%s admin=%s invited=%s", user.id, is_admin, invite is not None)
    return user


# Direction controls (embeddings, overrides, isolates, marks): in a name
# shown next to a username they could reorder what the reader sees.
_DIRECTION_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                "\u2066\u2067\u2068\u2069")


def check_display_name(display_name: str | None) -> str | None:
    """A display name as stored: trimmed; ``None`` (cleared) for empty text.

    One line of at most ``DISPLAY_NAME_MAX_LENGTH`` characters, with at
    least one visible character (the rule of ``text.is_blank``), and no
    control or direction-control characters. Not unique: the UI always shows
    the username beside it.
    """
    if display_name is None:
        return None
    name = display_name.strip()
    if not name:
        return None
    limit = current_app.config["DISPLAY_NAME_MAX_LENGTH"]
    if len(name) > limit:
        raise Invalid(f"a display name is at most {limit} characters", field="display_name")
    if is_blank(name):
        raise Invalid("a display name needs at least one visible character",
                      field="display_name")
    if any(char in _DIRECTION_CONTROLS or unicodedata.category(char) == "Cc" for char in name):
        raise Invalid("a display name is one line, without control characters",
                      field="display_name")
    return name


def set_display_name(user: User, display_name: str | None) -> dict:
    """The one way a display name changes (or is cleared, with ``None`` or "").

    A change spends a unit of ``DISPLAY_NAME_RATE_LIMIT`` (setting the same
    name again costs nothing and tells no one). After the commit the user's
    connections carry the new name, and ``user:updated`` reaches every
    connection joined to a room the user is in. Returns the user's User object.
    """
    name = check_display_name(display_name)
    if name == user.display_name:
        return user.to_public()
    limits.hit("display_name", user.id, user.username)
    user.display_name = name
    slugs = list(db.session.execute(
        select(Room.slug).join(Membership, Membership.room_id == Room.id)
        .where(Membership.user_id == user.id)).scalars())
    public = user.to_public()
    changes.after_commit(lambda: events.user_updated(public, slugs))
    db.session.commit()
    log.info("display name %s user=%s", "set" if name else "cleared", user.id)
    return public


USER_SEARCH_DEFAULT_LIMIT = 10
USER_SEARCH_MAX_LIMIT = 20


def search(prefix: str, limit: int | None = None) -> list[dict]:
    """Users whose name starts with ``prefix`` (any case), by name: for autocompletion.

    Only what any member already sees of a user (the User object), so it
    reveals nothing new; it is rate limited as a read.
    """
    prefix = prefix.strip().lower()
    if not prefix:
        return []
    limit = min(limit or USER_SEARCH_DEFAULT_LIMIT, USER_SEARCH_MAX_LIMIT)
    rows = db.session.execute(
        select(User).where(User.username_key.startswith(prefix, autoescape=True))
        .order_by(User.username_key).limit(limit)).scalars()
    return [user.to_public() for user in rows]


def ban_notice(user: User) -> dict:
    """What a banned user is told (sign-in page, connect refusal, ``kicked``): until when, and why."""
    until = isoformat(user.banned_until) if user.banned_until else None
    return {"banned": True, "until": until, "reason": user.ban_reason or ""}


def ban_message(user: User) -> str:
    """``ban_notice`` as one sentence, for pages and errors that carry only a message."""
    if user.banned_until is None:
        text = "this account is banned until an admin lifts the ban"
    else:
        until = user.banned_until
        if until.tzinfo is None:
            until = until.replace(tzinfo=timezone.utc)
        text = f"this account is banned until {until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    return f"{text}: {user.ban_reason}" if user.ban_reason else text


def authenticate(username: str, password: str) -> User:
    """The user with these credentials, or ``Unauthenticated``/``Forbidden``."""
    global _dummy_hash
    hasher = _hasher()
    well_formed = USERNAME_RE.fullmatch(username.strip()) is not None
    user = find_user(username) if well_formed else None
    if user is None:
        if _dummy_hash is None:
            _dummy_hash = hasher.hash("parley-dummy-password")
        _verify(hasher, _dummy_hash, password)
        if well_formed:
            audit.failed_sign_in(username)
        raise Unauthenticated("wrong username or password")
    if not _verify(hasher, user.password_hash, password):
        audit.failed_sign_in(username)
        raise Unauthenticated("wrong username or password")
    if user.is_banned():
        raise Forbidden(ban_message(user))
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = offload(hasher.hash, password)
        db.session.commit()
    return user


def sign_in_throttle(username: str, address: str) -> list[tuple[str, str, str]]:
    """The limits a sign-in attempt answers to: its account and its address."""
    return [("signin_user", username.strip().lower(), username.strip()[:64]),
            ("signin_address", address, address)]


def authenticate_throttled(username: str, password: str, address: str) -> User:
    """``authenticate`` behind the sign-in throttle: every door that takes a password.

    Each attempt reserves a unit of both limits before the password is
    checked, so N concurrent guesses spend N units and only as many as the
    limit are ever verified. A right password gives its units back: only
    failures stay counted, so the account's owner is not locked out by their
    own sign-ins. Once a limit is spent every attempt is refused unchecked
    (``RateLimited``), the right password too, until the window moves.
    ``/login`` and ``POST /api/v1/auth/token`` share the buckets: a guesser
    gains nothing by switching doors.
    """
    from .ratelimit import limits

    throttle = sign_in_throttle(username, address)
    limits.reserve(throttle)
    try:
        user = authenticate(username, password)
    except Unauthenticated:
        raise  # a failure: its units stay spent
    except BaseException:
        # The password was right (a banned account) or the check never ran
        # (an error): this attempt was no failed guess.
        limits.refund_all(throttle)
        raise
    limits.refund_all(throttle)
    return user


def _verify(hasher: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return offload(hasher.verify, hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def start_session(user: User) -> LoginSession:
    login_session = LoginSession(user_id=user.id)
    db.session.add(login_session)
    db.session.commit()
    user.login_session = login_session
    return login_session


def load_session(token: str) -> User | None:
    """The signed-in user of a live session token, for Flask-Login."""
    if not token:
        return None
    login_session = db.session.get(LoginSession, token)
    if login_session is None or login_session.revoked_at is not None:
        return None
    user = login_session.user
    user.login_session = login_session
    return user


def end_session(token: str) -> None:
    """Sign out: the token stops working and its live sockets are closed."""
    login_session = db.session.get(LoginSession, token)
    if login_session is None or login_session.revoked_at is not None:
        return
    login_session.revoked_at = utcnow()
    changes.after_commit(lambda: events.session_ended(token))
    db.session.commit()


def set_password(user: User, password: str, *, keep_session: str | None = None) -> int:
    """The one way a password changes (self-service, console, CLI).

    The rules are ``check_password``'s. Every sign-in session of the user
    but ``keep_session`` ends, and their live sockets close on every
    process. Returns how many sessions ended.
    """
    ended = _set_password(user, password, keep_session=keep_session)
    db.session.commit()
    return ended


def _set_password(user: User, password: str, *, keep_session: str | None = None) -> int:
    """``set_password`` in the caller's transaction (the caller commits)."""
    password = check_password(password)
    user.password_hash = offload(_hasher().hash, password)
    ended = [login_session.token for login_session in db.session.execute(
        select(LoginSession).where(LoginSession.user_id == user.id,
                                   LoginSession.revoked_at.is_(None))).scalars()
             if login_session.token != keep_session]
    now = utcnow()
    for token in ended:
        db.session.get(LoginSession, token).revoked_at = now
        changes.after_commit(lambda token=token: events.session_ended(token))
    log.info("password set user=%s sessions_ended=%s", user.id, len(ended))
    return len(ended)


def change_password(user: User, current_password: str, new_password: str,
                    keep_session: str) -> int:
    """The user's own change: the current password first; this session stays signed in."""
    if not _verify(_hasher(), user.password_hash, current_password):
        raise Invalid("the current password is wrong", field="current_password")
    if current_password == new_password:
        raise Invalid("the new password is the current one", field="new_password")
    return set_password(user, new_password, keep_session=keep_session)


def reset_password(actor_name: str, username: str, password: str | None = None) -> str:
    """An admin's (or the operator's) reset of someone's forgotten password.

    Without ``password`` a one-time temporary one is made up and returned
    (shown once to whoever reset it, to hand over). Every session of the user
    ends. Audited.
    """
    target = get_user(username)
    password = password if password is not None else secrets.token_urlsafe(12)
    ended = _set_password(target, password)
    audit.record(actor_name, "user:reset-password", target.username,
                 f"{ended} session{'s' if ended != 1 else ''} ended")
    db.session.commit()  # the password, the ended sessions and the entry together
    return password


def end_all_sessions(user: User) -> None:
    now = utcnow()
    for login_session in db.session.execute(
        select(LoginSession).where(LoginSession.user_id == user.id,
                                   LoginSession.revoked_at.is_(None))
    ).scalars():
        login_session.revoked_at = now
    db.session.commit()
