"""Bot accounts: users that sign in with a key, for API tokens only.

A bot is a ``User`` with ``is_bot`` and a password hash that never verifies
(so ``/login`` and password grants refuse it). Its key is shown once, when
created or rotated, and stored as its SHA-256 (``BotKey``). Rotating or
revoking the key also ends every token sign-in of the bot: tokens obtained
with the old key stop working at their next use.
"""
from __future__ import annotations

import hashlib
import logging
import secrets

from sqlalchemy import select

from ..errors import Conflict, NotFound
from ..extensions import db
from ..models import BotKey, User, isoformat, utcnow
from . import Actor, audit, tokens, users

log = logging.getLogger(__name__)

KEY_PREFIX = "pbk_"  # recognisable in a leaked-secret scan
# Not an argon2 hash: verifying against it fails, so no password signs a bot in.
NO_PASSWORD = "!bot"


def _new_key() -> tuple[str, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


def bot_to_admin(user: User, key: BotKey | None) -> dict:
    return {**user.to_public(), "created_at": isoformat(user.created_at),
            "key_active": key is not None,
            "key_created_at": isoformat(key.created_at) if key else None,
            "is_admin": user.is_admin, "banned": user.is_banned()}


def _bot(name: str) -> User:
    user = users.find_user(name)
    if user is None or not user.is_bot:
        raise NotFound(f"no bot named {name!r}", field="bot")
    return user


def create_bot(actor: Actor, name: str, *, is_admin: bool = False) -> tuple[dict, str]:
    """A new bot and its key (shown this once)."""
    name = users.check_username(name)
    if users.find_user(name) is not None:
        raise Conflict("that username is taken", field="name")
    key, digest = _new_key()
    user = User(username=name, username_key=name.lower(), password_hash=NO_PASSWORD,
                is_admin=is_admin, is_bot=True)
    db.session.add(user)
    db.session.flush()
    stored = BotKey(user_id=user.id, key_hash=digest)
    db.session.add(stored)
    audit.record(actor.username, "bot:create", user.username)
    db.session.commit()  # the bot, its key and the entry together
    log.info("bot created id=%s admin=%s", user.id, is_admin)
    return bot_to_admin(user, stored), key


def list_bots() -> list[dict]:
    rows = db.session.execute(
        select(User, BotKey).outerjoin(BotKey, BotKey.user_id == User.id)
        .where(User.is_bot.is_(True)).order_by(User.username_key)).all()
    return [bot_to_admin(user, key) for user, key in rows]


def rotate_key(actor: Actor, name: str) -> tuple[dict, str]:
    """A new key for the bot; the old one and every token from it stop working."""
    user = _bot(name)
    key, digest = _new_key()
    stored = db.session.get(BotKey, user.id)
    if stored is None:
        stored = BotKey(user_id=user.id, key_hash=digest)
        db.session.add(stored)
    else:
        stored.key_hash = digest
        stored.created_at = utcnow()
    db.session.commit()
    tokens.revoke_user_families(user.id)
    # (audit.record joins the caller's transaction; these steps committed already)
    audit.notice(actor.username, "bot:rotate", user.username)
    return bot_to_admin(user, stored), key


def revoke_key(actor: Actor, name: str) -> dict:
    """The bot can no longer sign in; its tokens stop working. A rotation revives it."""
    user = _bot(name)
    stored = db.session.get(BotKey, user.id)
    if stored is not None:
        db.session.delete(stored)
        db.session.commit()
    tokens.revoke_user_families(user.id)
    audit.notice(actor.username, "bot:revoke", user.username)
    return bot_to_admin(user, None)
