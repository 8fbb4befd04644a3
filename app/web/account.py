"""The signed-in user's own account: ``/account`` (display name, password)."""
from __future__ import annotations

import logging
import math

from flask import Blueprint, make_response, render_template, request
from flask_login import current_user, login_required

from ..errors import DomainError, Invalid, RateLimited
from ..schemas import DisplayNameChange, PasswordChange, parse
from ..services import users
from ..services.ratelimit import limits

log = logging.getLogger(__name__)
bp = Blueprint("account", __name__)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Change the password: the current one first; the user's other sessions end."""
    if request.method == "GET":
        return render_template("auth/account.html", me=current_user)
    # A wrong current password counts as a failed sign-in of the account:
    # a stolen session cookie must not become a way to guess the password.
    throttle = ("signin_user", current_user.username_key, current_user.username)
    try:
        limits.check(*throttle)
        form = parse(PasswordChange, {
            "current_password": request.form.get("current_password", ""),
            "new_password": request.form.get("new_password", "")})
        try:
            ended = users.change_password(current_user, form.current_password,
                                          form.new_password, current_user.login_session.token)
        except Invalid as exc:
            if exc.field == "current_password":
                limits.hit(*throttle)
            raise
    except RateLimited as exc:
        seconds = max(1, math.ceil(exc.retry_after or 1))
        response = make_response(render_template(
            "auth/account.html", me=current_user,
            error=f"Too many wrong passwords. Try again in {seconds} seconds."), 429)
        response.headers["Retry-After"] = str(seconds)
        return response
    except DomainError as exc:
        return render_template("auth/account.html", me=current_user, error=exc.message,
                               error_field=exc.field), exc.http_status
    log.info("password changed user=%s", current_user.id)
    return render_template("auth/account.html", me=current_user, changed=True, ended=ended)


@bp.route("/account/display-name", methods=["POST"])
@login_required
def display_name():
    """Set or clear (an empty field) the display name; everyone sharing a room sees it live."""
    try:
        form = parse(DisplayNameChange,
                     {"display_name": request.form.get("display_name", "")})
        users.set_display_name(current_user, form.display_name)
    except RateLimited as exc:
        seconds = max(1, math.ceil(exc.retry_after or 1))
        response = make_response(render_template(
            "auth/account.html", me=current_user, name_error=exc.message,
            name_value=request.form.get("display_name", "")), 429)
        response.headers["Retry-After"] = str(seconds)
        return response
    except DomainError as exc:
        return render_template("auth/account.html", me=current_user, name_error=exc.message,
                               name_value=request.form.get("display_name", "")), exc.http_status
    return render_template("auth/account.html", me=current_user, name_changed=True)
