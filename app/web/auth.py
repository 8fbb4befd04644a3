"""Sign-in, sign-up and sign-out (HTML forms, CSRF-protected)."""
from __future__ import annotations

import logging
import math
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, make_response, redirect, render_template,
                   request, session, url_for)
from flask_login import current_user, login_required, login_user, logout_user

from ..errors import DomainError, RateLimited, Unauthenticated
from ..extensions import login_manager
from ..schemas import Credentials, parse
from ..services import tokens, users
from ..services.ratelimit import limits

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(token: str):
    return users.load_session(token)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an absolute URL would be an open redirect."""
    if not target:
        return url_for("chat.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("chat.index")
    return target


def _sign_in(user) -> None:
    # A fresh session on every sign-in: nothing set before it (a planted
    # session, an old CSRF token) survives into the signed-in session.
    session.clear()
    users.start_session(user)
    login_user(user)
    session.permanent = True


def _sign_in_throttle(username: str) -> list[tuple[str, str, str]]:
    """The limits a sign-in attempt answers to: its account and its address.

    Only failures are counted, and a throttled attempt is refused before the
    password is even checked, so guessing stops while the account's owner,
    from another address and once the account's window passes, gets in.
    """
    address = request.remote_addr or ""
    account = username.strip().lower()
    return [("signin_user", account, username.strip()[:64]),
            ("signin_address", address, address)]


def _form_credentials() -> Credentials:
    return parse(Credentials, {"username": request.form.get("username", ""),
                               "password": request.form.get("password", "")})


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("auth/login.html", next=request.args.get("next", ""))
    next_url = request.form.get("next") or request.args.get("next")
    try:
        credentials = _form_credentials()
        throttle = _sign_in_throttle(credentials.username)
        for rule, key, target in throttle:
            limits.check(rule, key, target)
        try:
            user = users.authenticate(credentials.username, credentials.password)
        except Unauthenticated:
            for rule, key, target in throttle:
                limits.hit(rule, key, target)
            raise
    except RateLimited as exc:
        log.info("sign-in throttled")
        seconds = max(1, math.ceil(exc.retry_after))
        response = make_response(render_template(
            "auth/login.html", error=f"Too many failed sign-ins. Try again in {seconds} seconds.",
            next=next_url or "", username=request.form.get("username", "")[:64]), 429)
        response.headers["Retry-After"] = str(seconds)
        return response
    except DomainError as exc:
        log.info("sign-in refused: %s", exc.code)
        return render_template("auth/login.html", error=exc.message, next=next_url or "",
                               username=request.form.get("username", "")[:64]), 401
    _sign_in(user)
    log.info("user signed in id=%s", user.id)
    return redirect(_safe_next(next_url), code=303)


@bp.route("/register", methods=["GET", "POST"])
def register():
    if not current_app.config["REGISTRATION_OPEN"]:
        abort(404)
    if request.method == "GET":
        return render_template("auth/register.html")
    try:
        credentials = _form_credentials()
        user = users.create_user(credentials.username, credentials.password)
    except DomainError as exc:
        return render_template("auth/register.html", error=exc.message,
                               username=request.form.get("username", "")[:64]), exc.http_status
    _sign_in(user)
    return redirect(url_for("chat.index"), code=303)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    users.end_session(current_user.login_session.token)
    # Signing out also ends the user's API token sign-ins (issue 15).
    tokens.revoke_user_families(current_user.id)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"), code=303)
