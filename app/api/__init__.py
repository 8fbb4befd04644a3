"""REST API v1: the HTTP edge, as ``app/sockets/edge.py`` is the socket's.

Every route is declared with ``route``: its method, path, body and answer
schemas (pydantic, from ``app/schemas.py``) and status. The one wrapper
authenticates the caller, parses the body, calls the view (which only calls
services) and turns a ``DomainError`` into ``{"error": {...}}`` with the
matching status. The same declarations generate ``/api/v1/openapi.json``
(``app/api/spec.py``), so the document lists exactly the routes served.

Callers authenticate with ``Authorization: Bearer ACCESS_TOKEN``, or with the
web UI's session cookie plus its CSRF token in ``X-CSRFToken`` on writes.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from pydantic import BaseModel

from .. import metrics
from ..errors import DomainError, Forbidden, Invalid, RateLimited, TooLarge, Unauthenticated
from ..extensions import csrf, db
from ..schemas import parse
from ..services import Actor, tokens

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__)
# The API authenticates by bearer token or checks the CSRF header itself
# (``_caller``): Flask-WTF's form check must not refuse token clients.
csrf.exempt(bp)

INTERNAL = {"code": "internal", "message": "internal error"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Route:
    method: str
    path: str
    view: Callable
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    reply: type[BaseModel] | None = None
    status: int = 200
    auth: bool = True
    headers: dict[str, str] = field(default_factory=dict)  # request headers: name -> description
    tag: str = "chat"

    @property
    def name(self) -> str:
        return self.view.__name__


ROUTES: list[Route] = []


def route(method: str, path: str, *, summary: str, body=None, query=None, reply=None,
          status: int = 200, auth: bool = True, headers: dict | None = None, tag: str = "chat"):
    """Declare and register one API route; the view gets ``actor``, ``body``, ``query``."""
    def decorate(view):
        declared = Route(method, path, view, summary, body, query, reply, status, auth,
                         headers or {}, tag)
        ROUTES.append(declared)
        bp.add_url_rule(path, endpoint=view.__name__, methods=[method],
                        view_func=_serve(declared))
        return view
    return decorate


def _serve(declared: Route):
    @functools.wraps(declared.view)
    def serve(**url_values):
        started = time.perf_counter()
        code = "ok"
        try:
            kwargs = dict(url_values)
            if declared.auth:
                kwargs["actor"] = Actor.of(_caller())
            if declared.body is not None:
                kwargs["body"] = parse(declared.body, _json_body())
            if declared.query is not None:
                kwargs["query"] = parse(declared.query, request.args.to_dict())
            result = declared.view(**kwargs)
            if result is None:
                return "", 204
            response = jsonify(result)
            response.status_code = declared.status
            if declared.tag == "auth" and declared.method == "POST":
                response.headers["Cache-Control"] = "no-store"  # tokens (RFC 6749 5.1)
            return response
        except DomainError as exc:
            db.session.rollback()
            code = exc.code
            return error_response(exc)
        except CSRFError:
            db.session.rollback()
            code = "forbidden"
            return error_response(Forbidden(
                "a request with the session cookie needs the page's CSRF token in X-CSRFToken"))
        except Exception:
            db.session.rollback()
            code = "internal"
            log.exception("%s %s failed", request.method, declared.path)
            return jsonify({"error": INTERNAL}), 500
        finally:
            metrics.api_request(declared.name, code, time.perf_counter() - started)
    return serve


def error_response(exc: DomainError):
    error = exc.to_ack()["error"]
    response = jsonify({"error": error})
    response.status_code = exc.http_status
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, tokens.InvalidToken):
        # RFC 6750: tells the client to refresh its access token.
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    elif isinstance(exc, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="parley"'
    return response


def _json_body():
    limit = current_app.config["MAX_PAYLOAD_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"a request body is at most {limit} bytes")
    data = request.get_data(cache=False)
    if len(data) > limit:
        raise TooLarge(f"a request body is at most {limit} bytes")
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except ValueError:
        raise Invalid("the body must be JSON", field="payload") from None


def request_user():
    """The user behind this request: by bearer access token, or by session cookie.

    Raises ``InvalidToken`` for a malformed, expired or revoked token,
    ``Forbidden`` for a banned account, ``Unauthenticated`` for neither. Shared
    by the REST routes and the SSE feed (``app/web/feed.py``), so both doors
    admit exactly the same callers.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise tokens.InvalidToken("send Authorization: Bearer ACCESS_TOKEN")
        user, _claims = tokens.authenticate_access_token(token.strip())
        return user
    if current_user.is_authenticated:
        if current_user.is_banned():
            raise Forbidden("this account is banned")
        return current_user._get_current_object()
    raise Unauthenticated("sign in: send Authorization: Bearer ACCESS_TOKEN "
                          "(POST /api/v1/auth/token gives one)")


def _caller():
    """``request_user``, plus the CSRF check a cookie-authenticated write needs."""
    user = request_user()
    if request.headers.get("Authorization") is None and request.method not in SAFE_METHODS \
            and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    return user


def init_app(app) -> None:
    from . import routes, spec  # noqa: F401  (declare the routes)

    app.register_blueprint(bp)
