"""Invite codes: sign-up by invitation (``REGISTRATION_OPEN=invite``).

An admin makes a code (CLI ``create-invite`` or the console's
``invite:create``); it lets one account be created before it expires
(``INVITE_TTL_HOURS``). Spending it is one conditional UPDATE in the new
account's transaction, so two sign-ups racing with one code make one account.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from ..errors import Forbidden, Invalid
from ..extensions import db
from ..models import Invite, User, isoformat, utcnow
from . import audit

log = logging.getLogger(__name__)

# Codes are typed or pasted by hand: generous enough to be unguessable
# (96 random bits, and sign-up attempts are rate limited per address).
CODE_BYTES = 12
CODE_MAX_LENGTH = 64

REFUSED = "this invite code is unknown, used or expired"


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def create_invite(created_by: str, hours: float | None = None) -> dict:
    """A new code, shown this once: ``{"code", "expires_at"}``. Audited (not the code)."""
    hours = current_app.config["INVITE_TTL_HOURS"] if hours is None else hours
    if not 0 < hours <= 24 * 365:
        raise Invalid("an invite lasts more than 0 hours and at most a year", field="hours")
    code = secrets.token_urlsafe(CODE_BYTES)
    expires_at = utcnow() + timedelta(hours=hours)
    db.session.add(Invite(code_hash=_hash(code), created_by=created_by[:80],
                          expires_at=expires_at))
    audit.record(created_by, "invite:create", "", f"expires {isoformat(expires_at)}")
    db.session.commit()  # the invite and its entry together
    return {"code": code, "expires_at": isoformat(expires_at)}


def check_code(code: str | None) -> str:
    code = (code or "").strip()
    if not code:
        raise Forbidden("sign-up is by invitation: enter your invite code", field="invite")
    if len(code) > CODE_MAX_LENGTH:
        raise Forbidden(REFUSED, field="invite")
    return code


def spend(code: str, user: User) -> None:
    """Mark ``code`` used by ``user`` in the session's transaction, or raise ``Forbidden``.

    The caller commits (with the new account) or rolls back (and the code
    stays unused).
    """
    now = utcnow()
    result = db.session.execute(
        update(Invite)
        .where(Invite.code_hash == _hash(code), Invite.used_at.is_(None),
               Invite.expires_at > now)
        .values(used_at=now, used_by_id=user.id))
    if result.rowcount != 1:
        raise Forbidden(REFUSED, field="invite")
