"""The OpenAPI document lists every API route the app serves, and only those."""
from __future__ import annotations

import re

from app.api.spec import openapi_path

UNDOCUMENTED = {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/", "/api/v1/<path:rest>"}


def served(app) -> set[tuple[str, str]]:
    pairs = set()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule.startswith("/.well-known/")):
            continue
        if rule.rule in UNDOCUMENTED:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            pairs.add((openapi_path(rule.rule), method.lower()))
    return pairs


def test_every_served_api_route_is_in_openapi_json_and_nothing_else(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method) for path, methods in spec["paths"].items() for method in methods}
    assert documented == served(app)
    # The routes, by name.
    for path, method in [("/api/v1/auth/token", "post"), ("/api/v1/auth/refresh", "post"),
                         ("/.well-known/jwks.json", "get"), ("/api/v1/rooms", "get"),
                         ("/api/v1/rooms", "post"), ("/api/v1/rooms/{slug}", "get"),
                         ("/api/v1/rooms/{slug}/members", "get"),
                         ("/api/v1/rooms/{slug}/messages", "get"),
                         ("/api/v1/rooms/{slug}/messages", "post"),
                         ("/api/v1/messages/{message_id}", "patch"),
                         ("/api/v1/messages/{message_id}", "delete"),
                         ("/api/v1/rooms/{slug}/read", "post"), ("/api/v1/dms", "post")]:
        assert (path, method) in documented


def test_every_schema_reference_resolves(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', client.get(
        "/api/v1/openapi.json").get_data(as_text=True)))
    assert refs and refs <= set(spec["components"]["schemas"])


def test_the_reference_page_shows_every_operation(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, methods in spec["paths"].items():
        for method in methods:
            assert f"{method.upper()} {path}" in page
