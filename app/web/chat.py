"""The group chat page."""
import functools

from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required
from markupsafe import Markup

bp = Blueprint("chat", __name__)


@functools.cache
def _icon_sprite(static_folder: str) -> Markup:
    with open(f"{static_folder}/img/icons.svg", encoding="utf-8") as sprite:
        return Markup(sprite.read())


@bp.app_context_processor
def icons():
    """``icon_sprite()`` for base.html: the page's icons inline, one copy per page.

    Icons drawn later by scripts refer to it, so they need no request and
    still show while the server is unreachable.
    """
    return {"icon_sprite": lambda: _icon_sprite(current_app.static_folder)}


@bp.route("/")
@login_required
def index():
    # The page's script connects with the transports the server accepts: a
    # WebSocket-only server would refuse the client's default first step,
    # HTTP long-polling. None lets the client use its default.
    transports = (",".join(current_app.config["SOCKET_TRANSPORTS"])
                  if current_app.config["WEBSOCKET_ONLY"] else None)
    return render_template("chat/index.html", me=current_user, transports=transports)
