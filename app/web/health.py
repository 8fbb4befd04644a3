"""``/healthz`` for load balancers and process managers."""
from flask import Blueprint, current_app, jsonify

from ..database import schema_state
from ..extensions import db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """200 when the database (with a schema this code can serve from) and
    Redis, if configured, answer; 503 naming the failing part.

    ``schema`` is Parley's addition to the contract: ``ok``, ``ahead`` (newer
    code migrated it: still served), or ``missing`` / ``behind`` /
    ``unversioned`` (then ``db`` is ``error``), ``unknown`` when the database
    does not answer.
    """
    report = {"status": "ok", "db": "ok", "redis": "disabled", "schema": "unknown"}
    try:
        with db.engine.connect() as connection:
            state = schema_state(connection, current_app.extensions["migrate"].directory)
        report["schema"] = state.status
        if not state.serves:
            report["db"] = "error"
    except Exception:
        report["db"] = "error"
    redis_client = current_app.extensions.get("parley_redis")
    if redis_client is not None:
        try:
            redis_client.ping()
            report["redis"] = "ok"
        except Exception:
            report["redis"] = "error"
    if "error" in report.values():
        report["status"] = "error"
        return jsonify(report), 503
    return jsonify(report)
