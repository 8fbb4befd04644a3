"""``/api/v1/openapi.json`` (OpenAPI 3.1) and its reference page, from ``ROUTES``.

The document is built from the same declarations that register the routes and
the same pydantic models that parse the bodies, so it cannot list a route
that is not served or miss one that is (tests/unit/test_api_spec.py checks
the URL map against it anyway). Pydantic's JSON Schema is draft 2020-12,
which OpenAPI 3.1 uses as is.
"""
from __future__ import annotations

import functools
import re

from flask import jsonify, render_template
from pydantic.json_schema import models_json_schema

from .. import schemas
from ..errors import NotFound
from . import ROUTES, bp, error_response

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
ERRORS = {
    "400": "invalid: a field is missing or wrong (error.field names it)",
    "401": "unauthenticated: no token, or an expired or revoked one "
           "(WWW-Authenticate: Bearer error=\"invalid_token\": refresh it)",
    "403": "forbidden",
    "404": "not_found (private rooms one is not a member of answer this too)",
    "413": "too_large: the body is over the payload limit",
    "429": "rate_limited: wait Retry-After seconds",
}


def openapi_path(path: str) -> str:
    """``/api/v1/rooms/<slug>`` as OpenAPI writes it: ``/api/v1/rooms/{slug}``."""
    return _PARAM.sub(r"{\2}", path)


def _ref(model) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


# Served outside ``route`` (app/web/feed.py): a stream, not a JSON answer.
STREAMS = {"/api/v1/rooms/{slug}/events": {"get": {
    "operationId": "room_events", "tags": ["chat"],
    "summary": "The room's changes as Server-Sent Events, from now or after Last-Event-ID "
               "(docs/protocol.md).",
    "parameters": [
        {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "Last-Event-ID", "in": "header", "required": False,
         "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}},
        {"name": "last_event_id", "in": "query", "required": False,
         "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}],
    "responses": {"200": {"description": "text/event-stream: one event per change (id = its "
                                         "position, event = the socket event, data = its JSON)"},
                  "400": {"description": "a malformed Last-Event-ID"},
                  "401": {"description": "not signed in"},
                  "404": {"description": "no such room, or a private room of others"}},
    "security": [{"bearer": []}, {"session": []}]}}}


@functools.cache
def document() -> dict:
    models = {schemas.ErrorReply}
    for declared in ROUTES:
        models.update(m for m in (declared.body, declared.reply) if m is not None)
    _, defs = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                 ref_template=REF)
    paths: dict = {}
    for declared in ROUTES:
        operation: dict = {"operationId": declared.name, "summary": declared.summary,
                           "tags": [declared.tag], "parameters": []}
        for converter, name in _PARAM.findall(declared.path):
            operation["parameters"].append({
                "name": name, "in": "path", "required": True,
                "schema": {"type": "integer" if converter == "int" else "string"}})
        if declared.query is not None:
            query_schema = declared.query.model_json_schema()
            required = set(query_schema.get("required", ()))
            for name, prop in query_schema["properties"].items():
                operation["parameters"].append({"name": name, "in": "query",
                                                "required": name in required, "schema": prop})
        for name, description in declared.headers.items():
            operation["parameters"].append({"name": name, "in": "header", "required": False,
                                            "description": description,
                                            "schema": {"type": "string", "minLength": 1,
                                                       "maxLength": 64}})
        if declared.body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _ref(declared.body)}}}
        success: dict = {"description": "no content" if declared.status == 204 else "success"}
        if declared.reply is not None and declared.status != 204:
            success["content"] = {"application/json": {"schema": _ref(declared.reply)}}
        operation["responses"] = {str(declared.status): success, **{
            status: {"description": text,
                     "content": {"application/json": {"schema": _ref(schemas.ErrorReply)}}}
            for status, text in ERRORS.items()
            if declared.auth or status not in ("403",)}}
        operation["security"] = [{"bearer": []}, {"session": []}] if declared.auth else []
        paths.setdefault(openapi_path(declared.path), {})[declared.method.lower()] = operation
    paths.update(STREAMS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley REST API", "version": "1",
                 "description": "The chat's REST API. A walk-through: docs/api.md; the "
                                "realtime protocol: docs/protocol.md."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "an access token from POST /api/v1/auth/token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "the web UI's own calls; writes also need "
                                           "the page's CSRF token in X-CSRFToken"},
            },
        },
    }


@bp.route("/api/v1/openapi.json")
def openapi_json():
    return jsonify(document())


@bp.route("/api/v1/docs")
def reference():
    """The readable reference: every operation with its parameters and shapes."""
    spec = document()
    return render_template("api/reference.html", spec=spec,
                           operations=[(path, method.upper(), op)
                                       for path, methods in spec["paths"].items()
                                       for method, op in methods.items()])


@bp.route("/api/v1/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route("/api/v1/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str):
    """Any other path under /api/v1 answers in the API's error shape, not an HTML page."""
    return error_response(NotFound("no such API route; see /api/v1/openapi.json"))
