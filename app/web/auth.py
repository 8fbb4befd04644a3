"""Sign-in, sign-up and sign-out (HTML forms, CSRF-protected)."""
from __future__ import annotations

import logging
import math
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, make_response, redirect, render_template,
                   request, session, url_for)
from flask_login import current_user, login_required, login_user, logout_user

from ..errors import DomainError, RateLimited
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
        user = users.authenticate_throttled(credentials.username, credentials.password,
                                            request.remote_addr or "")
    except RateLimited as exc:
        log.info("sign-in throttled")
        return _throttled("auth/login.html", "Too many failed sign-ins.", exc,
                          next=next_url or "", username=request.form.get("username", "")[:64])
    except DomainError as exc:
        log.info("sign-in refused: %s", exc.code)
        return render_template("auth/login.html", error=exc.message, next=next_url or "",
                               username=request.form.get("username", "")[:64]), 401
    _sign_in(user)
    log.info("user signed in id=%s", user.id)
    return redirect(_safe_next(next_url), code=303)


def _throttled(template: str, message: str, exc: RateLimited, **context):
    """The form again, with HTTP 429 and ``Retry-After``."""
    seconds = max(1, math.ceil(exc.retry_after))
    response = make_response(render_template(
        template, error=f"{message} Try again in {seconds} seconds.", **context), 429)
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Self sign-up; with ``REGISTRATION_OPEN=invite`` it takes a single-use invite code.

    Every attempt spends a unit of the per-address sign-up limit before any
    work (refused ones too: the form cannot be used to probe usernames or
    guess codes faster than it makes accounts).
    """
    mode = current_app.config["REGISTRATION_OPEN"]
    if not mode:
        abort(404)
    invite_only = mode == "invite"
    if request.method == "GET":
        return render_template("auth/register.html", invite_only=invite_only,
                               invite=request.args.get("invite", "")[:64])
    context = {"invite_only": invite_only, "username": request.form.get("username", "")[:64],
               "invite": request.form.get("invite", "")[:64]}
    try:
        address = request.remote_addr or ""
        limits.reserve([("signup_address", address, address)])
        credentials = _form_credentials()
        user = users.create_user(credentials.username, credentials.password,
                                 invite=request.form.get("invite", "") if invite_only else None)
    except RateLimited as exc:
        log.info("sign-up throttled")
        return _throttled("auth/register.html", "Too many sign-ups from this address.", exc,
                          **context)
    except DomainError as exc:
        return render_template("auth/register.html", error=exc.message, **context), exc.http_status
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
