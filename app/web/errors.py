"""HTTP error handlers: JSON for clients that ask for it, HTML otherwise."""
from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..errors import DomainError
from ..extensions import db

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > \
        request.accept_mimetypes["text/html"]


def _respond(status: int, code: str, message: str):
    if _wants_json():
        return jsonify({"ok": False, "error": {"code": code, "message": message}}), status
    return render_template("error.html", status=status, message=message), status


def register_errorhandlers(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return _respond(400, "invalid", "the form expired or was not sent from this site; "
                                        "reload the page and try again")

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return _respond(exc.http_status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is not None and exc.code < 400:  # routing redirects
            return exc
        return _respond(exc.code or 500, "error", exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, "internal", "internal error")
