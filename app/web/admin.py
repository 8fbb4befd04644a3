"""The admin console page; everything it shows comes over the ``/admin`` namespace."""
from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user, login_required

bp = Blueprint("admin", __name__)


@bp.route("/admin")
@login_required
def index():
    """Signed out: redirect to sign-in (``login_required``); signed in without rights: 403."""
    if not current_user.is_admin:
        abort(403, description="the admin console is for admins only")
    # As the chat page: a WebSocket-only server needs the client told so.
    transports = (",".join(current_app.config["SOCKET_TRANSPORTS"])
                  if current_app.config["WEBSOCKET_ONLY"] else None)
    from ..services import webhooks

    return render_template("admin/index.html", me=current_user, transports=transports,
                           webhook_events=webhooks.EVENTS,
                           webhook_url_max=webhooks.URL_MAX_LENGTH)
