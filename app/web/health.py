"""``/healthz`` for load balancers and process managers."""
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from ..extensions import db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """200 when the database (and Redis, if configured) answer; 503 naming the failing part."""
    report = {"status": "ok", "db": "ok", "redis": "disabled"}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()
        report["db"] = "error"
    finally:
        db.session.remove()
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
