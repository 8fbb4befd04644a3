"""Tokens, token sockets, bots and metrics through the Flask and Flask-SocketIO test clients.

The same rules run against a real gunicorn worker in tests/e2e/test_api.py;
these are the fast, exhaustive cases.
"""
from __future__ import annotations

import stat

import jwt
import pytest
from sqlalchemy import select

from app import metrics
from app.extensions import socketio
from app.models import RefreshToken
from app.services import Actor, bots, tokens
from tests.conftest import call, in_db
from tests.support.server import wait_until

PASSWORD = "correct-horse"


def pair_for(client, username: str) -> dict:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bearer(pair) -> dict:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def token_socket(app, token, namespace="/public"):
    return socketio.test_client(app, namespace=namespace, auth={"token": token})


@pytest.fixture
def alice(auth, client):
    auth.create("alice")
    return pair_for(client, "alice")


def test_the_key_file_is_generated_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "jwt.pem"
    first = tokens.load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.load_or_create_key_file(path) == first


def test_a_configured_private_key_signs_and_the_jwks_publishes_its_public_half(app, client, alice):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    app.config["JWT_PRIVATE_KEY"] = pem
    app.extensions.pop("parley_jwt", None)
    jwk = client.get("/.well-known/jwks.json").get_json()["keys"][0]
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"} and jwk["alg"] == "EdDSA"
    pair = pair_for(client, "alice")
    assert jwt.get_unverified_header(pair["access_token"])["kid"] == jwk["kid"]
    jwt.decode(pair["access_token"], jwt.PyJWK(jwk).key, algorithms=["EdDSA"])
    # Tokens signed by the previous key no longer verify.
    assert client.get("/api/v1/me", headers=bearer(alice)).status_code == 401


def test_refresh_tokens_are_stored_only_as_their_digest(app, alice):
    stored = in_db(app, select(RefreshToken.token_hash))
    assert len(stored) == 1 and alice["refresh_token"] not in stored[0][0]
    assert len(stored[0][0]) == 64


def test_an_expired_access_token_is_refused_with_invalid_token(app, client, alice):
    app.config["ACCESS_TOKEN_TTL_SECONDS"] = 1
    short = pair_for(client, "alice")

    def refused():
        response = client.get("/api/v1/me", headers=bearer(short))
        return response if response.status_code == 401 else None

    response = wait_until(refused, 5, message="the token never expired")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "expired" in response.get_json()["error"]["message"]


def test_an_access_token_lifetime_over_15_minutes_is_refused_at_start(monkeypatch, tmp_path):
    from app import create_app

    monkeypatch.setenv("PARLEY_ENV", "testing")
    with pytest.raises(RuntimeError, match="15 minutes"):
        create_app({"ACCESS_TOKEN_TTL_SECONDS": 901,
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}"})


def test_failed_bot_key_and_refresh_requests_are_throttled_per_address(app, client):
    app.config["TOKEN_ADDRESS_RATE_LIMIT"] = "2 per minute"
    from app.services.ratelimit import limits

    limits.init_app(app)
    for _ in range(2):
        assert client.post("/api/v1/auth/refresh",
                           json={"refresh_token": "nope"}).status_code == 401
    throttled = client.post("/api/v1/auth/token", json={"bot_key": "pbk_guess"})
    assert throttled.status_code == 429
    assert throttled.get_json()["error"]["code"] == "rate_limited"
    assert int(throttled.headers["Retry-After"]) >= 1


def test_a_password_grant_spends_the_sign_in_forms_failure_budget(app, auth, client):
    app.config["SIGNIN_USER_RATE_LIMIT"] = "2 per minute"
    from app.services.ratelimit import limits

    limits.init_app(app)
    auth.create("bob")
    for _ in range(2):
        client.post("/api/v1/auth/token", json={"username": "bob", "password": "wrong-password"})
    # The web form now refuses bob too: one budget for both doors.
    assert client.post("/login", data={"username": "bob", "password": PASSWORD}).status_code == 429


# -- token sockets --------------------------------------------------------------

def test_a_token_socket_gets_the_users_identity_and_rules(app, client, alice):
    sock = token_socket(app, alice["access_token"])
    assert sock.is_connected("/public")
    created = call(sock, "room:create", {"name": "Tokens"})
    assert created["ok"] and created["room"]["owner_id"] is not None


@pytest.mark.parametrize("token", ["", "x" * 5000, 42, None, "a.b.c"])
def test_a_malformed_token_is_refused_at_connect(app, token):
    assert not token_socket(app, token).is_connected("/public")


def test_a_token_of_a_revoked_family_is_refused_at_connect(app, client, alice):
    client.post("/api/v1/auth/refresh", json={"refresh_token": alice["refresh_token"]})
    client.post("/api/v1/auth/refresh", json={"refresh_token": alice["refresh_token"]})  # reuse
    assert not token_socket(app, alice["access_token"]).is_connected("/public")


def test_admin_namespace_takes_an_admin_token_and_refuses_a_users(app, auth, client, alice):
    auth.create("root", admin=True)
    admin = token_socket(app, pair_for(client, "root")["access_token"], "/admin")
    assert admin.is_connected("/admin")
    assert call(admin, "stats", namespace="/admin")["ok"] is True
    assert not token_socket(app, alice["access_token"], "/admin").is_connected("/admin")


def test_the_connection_cap_counts_token_sockets(app, alice):
    app.config["MAX_CONNECTIONS_PER_USER"] = 1
    assert token_socket(app, alice["access_token"]).is_connected("/public")
    assert not token_socket(app, alice["access_token"]).is_connected("/public")


# -- bots ----------------------------------------------------------------------------------

@pytest.fixture
def console(auth):
    auth.create("root", admin=True)
    return auth.socket("root", namespace="/admin")


def acall(sock, event, payload=None):
    return call(sock, event, payload, namespace="/admin")


def test_the_console_creates_lists_rotates_and_revokes_bots(app, client, console):
    created = acall(console, "bot:create", {"name": "deploybot"})
    assert created["ok"] and created["key"].startswith("pbk_")
    assert created["bot"]["bot"] is True and created["bot"]["key_active"] is True
    listed = acall(console, "bots:list", {})["bots"]
    assert [b["username"] for b in listed] == ["deploybot"]
    assert created["key"] not in str(listed)
    first = client.post("/api/v1/auth/token", json={"bot_key": created["key"]}).get_json()

    rotated = acall(console, "bot:rotate", {"bot": "deploybot"})
    assert rotated["ok"] and rotated["key"] != created["key"]
    assert client.post("/api/v1/auth/token", json={"bot_key": created["key"]}).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(first)).status_code == 401
    second = client.post("/api/v1/auth/token", json={"bot_key": rotated["key"]}).get_json()
    assert client.get("/api/v1/me", headers=bearer(second)).get_json()["bot"] is True

    revoked = acall(console, "bot:revoke", {"bot": "deploybot"})
    assert revoked["ok"] and revoked["bot"]["key_active"] is False
    assert client.post("/api/v1/auth/token", json={"bot_key": rotated["key"]}).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 401


@pytest.mark.parametrize("payload, field", [({"name": "x"}, "username"),
                                            ({"name": "root"}, "name"),
                                            ({}, "name")])
def test_bot_create_refuses_bad_names(console, payload, field):
    ack = acall(console, "bot:create", payload)
    assert ack["ok"] is False and ack["error"]["field"] == field


def test_rotating_a_user_who_is_not_a_bot_is_not_found(console):
    ack = acall(console, "bot:rotate", {"bot": "root"})
    assert ack["error"]["code"] == "not_found"


def test_a_bot_cannot_sign_in_to_the_web_ui(app, client):
    with app.app_context():
        _bot, key = bots.create_bot(Actor(0, "test"), "webbot")
    for password in ("", key, "!bot"):
        response = client.post("/login", data={"username": "webbot", "password": password})
        assert response.status_code == 401
        assert client.post("/api/v1/auth/token", json={
            "username": "webbot", "password": password or "x"}).status_code == 401


# ``flask create-bot`` runs Alembic (in a process of its own): tests/e2e/test_api.py.


# -- metrics ------------------------------------------------------------------------------------

@pytest.fixture
def metrics_on(app):
    app.config["METRICS_ENABLED"] = True
    metrics._enabled = True
    yield app
    metrics._enabled = False


def test_metrics_are_off_by_default(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_answer_the_scrape_token_or_an_allowed_address(metrics_on, client):
    app = metrics_on
    app.config.update(METRICS_TOKEN="s3cret", METRICS_ALLOWED_ADDRESSES="10.0.0.0/8")
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and b"parley_socket_events_total" in ok.data
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_socket_events_and_refusals_are_counted(metrics_on, auth, client):
    from prometheus_client import REGISTRY

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0

    sock = auth.socket("alice")
    before = value("parley_socket_events_total", namespace="/public", event="room:join",
                   code="not_found")
    call(sock, "room:join", {"room": "nowhere"})
    assert value("parley_socket_events_total", namespace="/public", event="room:join",
                 code="not_found") == before + 1
    stored = value("parley_messages_stored_total")
    call(sock, "room:create", {"name": "Counted"})
    call(sock, "room:join", {"room": "counted"})
    call(sock, "message:send", {"room": "counted", "body": "hi", "client_id": "m1"})
    call(sock, "message:send", {"room": "counted", "body": "hi", "client_id": "m1"})  # replay
    assert value("parley_messages_stored_total") == stored + 1
    assert value("parley_message_send_ack_seconds_count", door="socket") >= 2
