"""API tokens: short-lived signed access tokens, rotating refresh tokens.

An access token is a JWT (EdDSA over Ed25519, PyJWT) with the claims ``sub``
(the user id, as text), ``iat``, ``exp``, ``jti`` (its own id) and ``sid``
(its token family). Anyone can verify it with the public key published at
``/.well-known/jwks.json``; Parley itself also checks on every use that the
family is still live (one primary-key query joining the family, its login
session and the user; not cached, so a revocation takes effect at the next
request on every process).

A refresh token is 256 random bits, shown once and stored as its SHA-256. It
is single use: ``refresh`` retires it and answers a new pair in the same
family. Presenting a retired one again means two parties hold the family's
tokens (one of them a thief), so the whole family is revoked.

A family is backed by a ``LoginSession``: ending a user's sessions (a ban)
ends their token families too, and closing a session's sockets closes the
sockets that authenticated with its access tokens.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app
from sqlalchemy import select, update

from .. import events
from ..errors import Forbidden, Unauthenticated
from ..extensions import db
from ..models import BotKey, LoginSession, RefreshToken, TokenFamily, User, utcnow
from . import audit, users
from .ratelimit import limits

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
KEY_FILE = "jwt_ed25519.pem"
# A JWT longer than this is not one of ours: refuse it before decoding.
MAX_TOKEN_LENGTH = 2048
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti", "sid"]


class InvalidToken(Unauthenticated):
    """An access token that is malformed, expired, or of a revoked family.

    The HTTP edge answers 401 with ``WWW-Authenticate: Bearer
    error="invalid_token"`` (RFC 6750), which tells a client to refresh.
    """


# -- the signing key --------------------------------------------------------------

@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    kid: str
    jwk: dict

    @property
    def public(self):
        return self.private.public_key()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_key_from(private: Ed25519PrivateKey) -> SigningKey:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    # RFC 7638 thumbprint: the key's id changes exactly when the key does.
    kid = _b64url(hashlib.sha256(
        json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())
    return SigningKey(private, kid, {**members, "kid": kid, "alg": ALGORITHM, "use": "sig"})


def load_or_create_key_file(path: Path) -> bytes:
    """The PEM at ``path``, generated there first (mode 0600) if missing.

    ``O_EXCL`` makes the creation atomic: when several workers start at once,
    one writes the key and the others read that one.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    log.info("generated a JWT signing key in %s", path.name)
    return pem


def signing_key() -> SigningKey:
    """This app's key: ``JWT_PRIVATE_KEY`` (PEM), ``JWT_PRIVATE_KEY_FILE``, or instance/."""
    app = current_app._get_current_object()
    key = app.extensions.get("parley_jwt")
    if key is not None:
        return key
    cfg = app.config
    if cfg.get("JWT_PRIVATE_KEY"):
        pem = cfg["JWT_PRIVATE_KEY"].encode()
    elif cfg.get("JWT_PRIVATE_KEY_FILE"):
        pem = Path(cfg["JWT_PRIVATE_KEY_FILE"]).read_bytes()
    else:
        pem = load_or_create_key_file(Path(app.instance_path) / KEY_FILE)
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise RuntimeError("the JWT signing key must be an Ed25519 private key (PEM)")
    key = app.extensions["parley_jwt"] = _signing_key_from(private)
    return key


def jwks() -> dict:
    """The public keys that verify Parley's access tokens (RFC 7517)."""
    return {"keys": [signing_key().jwk]}


# -- access tokens ------------------------------------------------------------------

def issue_access_token(user_id: int, family_id: str) -> tuple[str, int]:
    """A signed access token for ``user_id`` in ``family_id``, and its lifetime in seconds."""
    ttl = current_app.config["ACCESS_TOKEN_TTL_SECONDS"]
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + ttl,
              "jti": secrets.token_urlsafe(12), "sid": family_id}
    key = signing_key()
    return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid}), ttl


def decode_access_token(token: object) -> dict:
    """The verified claims of ``token``, or ``InvalidToken`` (bad signature, expired...)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("invalid access token")
    try:
        return jwt.decode(token, signing_key().public, algorithms=[ALGORITHM],
                          options={"require": REQUIRED_CLAIMS})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the access token expired; refresh it") from None
    except jwt.PyJWTError:
        raise InvalidToken("invalid access token") from None


def authenticate_access_token(token: object) -> tuple[User, dict]:
    """The user an access token speaks for, and its claims.

    ``InvalidToken`` when the token does not verify, has expired, or its
    family was revoked; ``Forbidden`` for a banned user. The user comes with
    ``login_session`` set (the family's), as Flask-Login's loader gives it.
    """
    claims = decode_access_token(token)
    family = db.session.get(TokenFamily, claims["sid"]) if isinstance(claims["sid"], str) else None
    if (family is None or family.login_session.revoked_at is not None
            or str(family.user_id) != claims["sub"]):
        raise InvalidToken("this token's sign-in has ended; sign in again")
    user = family.login_session.user
    if user.is_banned():
        raise Forbidden("this account is banned")
    user.login_session = family.login_session
    return user, claims


# -- grants ------------------------------------------------------------------------------

def _digest(secret: str) -> str:
    # 256 random bits need no slow hash: a plain digest cannot be reversed
    # and lets the token be found by an index look-up.
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _new_pair(user_id: int, family_id: str) -> dict:
    """Add a refresh token to the session (the caller commits) and answer the pair."""
    refresh = secrets.token_urlsafe(32)
    db.session.add(RefreshToken(
        token_hash=_digest(refresh), family_id=family_id,
        expires_at=utcnow() + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"])))
    access, ttl = issue_access_token(user_id, family_id)
    return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
            "expires_in": ttl}


def _start_family(user: User) -> dict:
    login_session = LoginSession(user_id=user.id)
    db.session.add(login_session)
    db.session.flush()
    family = TokenFamily(user_id=user.id, session_token=login_session.token)
    db.session.add(family)
    db.session.flush()
    pair = _new_pair(user.id, family.id)
    db.session.commit()
    log.info("token family started user=%s family=%s", user.id, family.id)
    return pair


def grant_password(username: str, password: str, address: str) -> dict:
    """``POST /api/v1/auth/token`` with a username and password.

    Throttled exactly as ``/login``, by the same function and in the same
    buckets (``users.authenticate_throttled``).
    """
    user = users.authenticate_throttled(username, password, address)
    if user.is_bot:  # a bot's password hash never verifies; this says why
        raise Forbidden("a bot signs in with its key (bot_key)")
    return _start_family(user)


def grant_bot_key(bot_key: str, address: str) -> dict:
    """``POST /api/v1/auth/token`` with ``{"bot_key"}``."""
    limits.check("token_address", address)
    row = db.session.execute(
        select(User).join(BotKey, BotKey.user_id == User.id)
        .where(BotKey.key_hash == _digest(bot_key))).scalar_one_or_none()
    if row is None:
        limits.hit("token_address", address)
        raise Unauthenticated("unknown or revoked bot key")
    if row.is_banned():
        raise Forbidden("this account is banned")
    return _start_family(row)


def refresh(refresh_token: str, address: str) -> dict:
    """``POST /api/v1/auth/refresh``: retire ``refresh_token``, answer a new pair.

    A retired token presented again revokes its whole family.
    """
    limits.check("token_address", address)
    digest = _digest(refresh_token)
    stored = db.session.get(RefreshToken, digest)
    if stored is None:
        limits.hit("token_address", address)
        raise Unauthenticated("unknown refresh token")
    family = db.session.get(TokenFamily, stored.family_id)
    if family.login_session.revoked_at is not None:
        raise Unauthenticated("this sign-in has ended; sign in again")
    if stored.used_at is not None:
        _reused(family)
    if _aware(stored.expires_at) <= utcnow():
        raise Unauthenticated("the refresh token expired; sign in again")
    # Claimed by a conditional UPDATE: of two concurrent refreshes with one
    # token, exactly one wins and the other counts as a reuse.
    claimed = db.session.execute(
        update(RefreshToken).where(RefreshToken.token_hash == digest,
                                   RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())).rowcount
    if claimed != 1:
        db.session.rollback()
        _reused(db.session.get(TokenFamily, stored.family_id))
    user = family.login_session.user
    if user.is_banned():
        db.session.rollback()
        raise Forbidden("this account is banned")
    pair = _new_pair(user.id, family.id)
    db.session.commit()
    return pair


def _reused(family: TokenFamily):
    user = family.login_session.user
    revoke_family(family)
    log.warning("refresh token reused: family revoked user=%s family=%s", user.id, family.id)
    # Committed on its own: the request is refused (and rolled back) next.
    audit.notice("server", "token:reuse", user.username,
                 "a retired refresh token was presented again; its sign-in is revoked")
    raise Unauthenticated("this refresh token was already used; every token of its sign-in "
                          "is revoked: sign in again")


# -- revocation ----------------------------------------------------------------------------

def revoke_family(family: TokenFamily) -> None:
    """End one token sign-in: its tokens stop working, its sockets close."""
    if family.login_session.revoked_at is None:
        family.login_session.revoked_at = utcnow()
        db.session.commit()
        events.session_ended(family.session_token)


def revoke_user_families(user_id: int) -> int:
    """End every token sign-in of a user (sign-out, password change); how many.

    Their access tokens fail at the next use and their sockets are closed on
    every process (``/admin`` consoles at the next stats sweep).
    """
    tokens = db.session.execute(
        select(LoginSession.token).join(TokenFamily, TokenFamily.session_token == LoginSession.token)
        .where(TokenFamily.user_id == user_id, LoginSession.revoked_at.is_(None))).scalars().all()
    if not tokens:
        return 0
    db.session.execute(update(LoginSession).where(LoginSession.token.in_(tokens))
                       .values(revoked_at=utcnow()))
    db.session.commit()
    for token in tokens:
        events.session_ended(token)
    log.info("token families revoked user=%s count=%s", user_id, len(tokens))
    return len(tokens)
