"""Tokens, the REST API, token sockets and bots, against a real gunicorn worker.

Two servers: the shared one (``server``, default token lifetime) and a
"strict" one of this module with 4-second access tokens, a tight send rate
and metrics on, for expiry, the shared rate limit, the example bot and the
scrape.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid

import jwt
import pytest
import requests
import socketio

from app import schemas
from tests.e2e.conftest import e2e_env, start_server, stop_server, unique
from tests.support.server import (ROOT, TEST_PASSWORD, cookie_header, flask_cli, sign_in,
                                  wait_until)

pytestmark = pytest.mark.e2e

NS = "/public"
STRICT_TTL = 4
STRICT_SENDS = 6
METRICS_TOKEN = "scrape-secret-for-tests"


# -- helpers --------------------------------------------------------------------

def token_pair(url: str, **grant) -> dict:
    response = requests.post(f"{url}/api/v1/auth/token", json=grant, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def password_pair(url: str, username: str) -> dict:
    return token_pair(url, username=username, password=TEST_PASSWORD)


def bearer(pair_or_token) -> dict:
    token = pair_or_token["access_token"] if isinstance(pair_or_token, dict) else pair_or_token
    return {"Authorization": f"Bearer {token}"}


def api(url: str, method: str, path: str, token=None, **kwargs) -> requests.Response:
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    return requests.request(method, f"{url}{path}", headers=headers, timeout=10, **kwargs)


def create_bot(env: dict, name: str) -> str:
    out = flask_cli(env, "create-bot", name)
    return re.search(r"^key: (\S+)$", out, re.M).group(1)


class TokenPeer:
    """A python-socketio client on ``/public`` that authenticates with a token, no cookie."""

    def __init__(self, url: str, token: str, *, headers: dict | None = None):
        self.url, self.token, self.headers = url, token, headers or {}
        self.received: list[tuple[str, object]] = []
        self.disconnected = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda event, *args: self.received.append((event, args[0] if args else None)),
                    namespace=NS)
        self.sio.on("disconnect", lambda *reason: self.disconnected.set(), namespace=NS)

    def connect(self, namespace: str = NS) -> "TokenPeer":
        self.sio.connect(self.url, namespaces=[namespace], auth={"token": self.token},
                         headers=self.headers, transports=["websocket"], wait_timeout=10)
        return self

    def call(self, event: str, payload: dict, namespace: str = NS) -> dict:
        return self.sio.call(event, payload, namespace=namespace, timeout=10)

    def got(self, event: str) -> list:
        return [payload for name, payload in self.received if name == event]

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def refused(url: str, token: str, namespace: str = NS) -> dict:
    """The ``connect_error`` data of a token connection the server refuses."""
    errors = []
    sio = socketio.Client(reconnection=False)
    sio.on("connect_error", lambda data=None: errors.append(data), namespace=namespace)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(url, namespaces=[namespace], auth={"token": token},
                    transports=["websocket"], wait_timeout=10)
    sio.disconnect()
    return wait_until(lambda: errors and errors[0], 5, message="no connect_error")["data"]


@pytest.fixture
def token_peers():
    made: list[TokenPeer] = []

    def connect(url, token, **kwargs) -> TokenPeer:
        peer = TokenPeer(url, token, **kwargs)
        made.append(peer)
        return peer.connect()

    yield connect
    for peer in made:
        peer.close()


@pytest.fixture(scope="module")
def people(sqlite_env):
    """Accounts of this module on the shared server: an admin and users to ban or sign out."""
    # Rooms are created by this module's own accounts: the shared accounts'
    # room-creation budget (10 an hour) belongs to the other e2e tests.
    names = {"admin": unique("tokadmin")[:32], "banned": unique("mallet")[:32],
             "leaver": unique("carol")[:32], "reuser": unique("dave")[:32],
             "writer": unique("erin")[:32], "reader": unique("frank")[:32]}
    flask_cli(sqlite_env, "create-user", names["admin"], "--password-stdin", "--admin",
              stdin=TEST_PASSWORD + "\n")
    for role in ("banned", "leaver", "reuser", "writer", "reader"):
        flask_cli(sqlite_env, "create-user", names[role], "--password-stdin",
                  stdin=TEST_PASSWORD + "\n")
    return names


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    env = e2e_env(f"sqlite:///{tmp_path_factory.mktemp('strict-db') / 'parley.sqlite3'}")
    env.update({"ACCESS_TOKEN_TTL_SECONDS": str(STRICT_TTL),
                "MESSAGE_RATE_LIMIT": f"{STRICT_SENDS} per 30 seconds",
                "METRICS_ENABLED": "true", "METRICS_TOKEN": METRICS_TOKEN,
                "METRICS_ALLOWED_ADDRESSES": ""})
    flask_cli(env, "init-db")
    for name in ("alice", "limited"):  # "limited" spends its send budget in one test
        flask_cli(env, "create-user", name, "--password-stdin", stdin=TEST_PASSWORD + "\n")
    running = start_server(env, "server-strict")
    running.env = env
    yield running
    stop_server(running)


# -- the token flow -----------------------------------------------------------------

def test_a_password_grant_answers_an_oauth_shaped_pair_verifiable_with_the_jwks(server):
    pair = password_pair(server.url, "alice")
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer" and 0 < pair["expires_in"] <= 900
    schemas.TokenPair.model_validate(pair)
    # Another service verifies it with the published key alone.
    jwks = requests.get(server.url + "/.well-known/jwks.json", timeout=10).json()
    header = jwt.get_unverified_header(pair["access_token"])
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(pair["access_token"], jwt.PyJWK(key).key, algorithms=["EdDSA"])
    assert set(claims) >= {"sub", "iat", "exp", "jti", "sid"}
    assert claims["exp"] - claims["iat"] == pair["expires_in"]
    me = api(server.url, "GET", "/api/v1/me", pair)
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert str(me.json()["id"]) == claims["sub"]


def test_wrong_credentials_and_missing_tokens_answer_401_in_the_error_shape(server, people):
    # One failed sign-in, spent on this module's account, not a shared one.
    wrong = requests.post(server.url + "/api/v1/auth/token", timeout=10,
                          json={"username": people["reuser"], "password": "not-the-password"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthenticated"
    missing = api(server.url, "GET", "/api/v1/rooms")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    forged = api(server.url, "GET", "/api/v1/rooms", "not.a.jwt")
    assert forged.status_code == 401
    assert forged.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    invalid = requests.post(server.url + "/api/v1/auth/token", json={"username": "alice"},
                            timeout=10)
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "invalid"


def test_refresh_rotates_the_pair_and_the_new_access_token_works(server):
    first = password_pair(server.url, "alice")
    second = api(server.url, "POST", "/api/v1/auth/refresh",
                 json={"refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    old, new = (jwt.decode(p["access_token"], options={"verify_signature": False})
                for p in (first, second))
    assert old["sid"] == new["sid"], "a refresh stays in its family"
    assert api(server.url, "GET", "/api/v1/me", second).status_code == 200
    third = api(server.url, "POST", "/api/v1/auth/refresh",
                json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


def test_a_reused_refresh_token_revokes_its_whole_family_and_only_it(server, people):
    name = people["reuser"]
    stolen = password_pair(server.url, name)
    other_family = password_pair(server.url, name)
    rotated = api(server.url, "POST", "/api/v1/auth/refresh",
                  json={"refresh_token": stolen["refresh_token"]}).json()
    reuse = api(server.url, "POST", "/api/v1/auth/refresh",
                json={"refresh_token": stolen["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "unauthenticated"
    # Everything of that family is dead: the rotated access and refresh tokens too.
    dead = api(server.url, "GET", "/api/v1/me", rotated)
    assert dead.status_code == 401
    assert dead.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert api(server.url, "POST", "/api/v1/auth/refresh",
               json={"refresh_token": rotated["refresh_token"]}).status_code == 401
    # Another sign-in of the same user is untouched.
    assert api(server.url, "GET", "/api/v1/me", other_family).status_code == 200


def test_a_ban_revokes_every_token_and_closes_token_sockets(server, people, token_peers):
    victim = people["banned"]
    pair = password_pair(server.url, victim)
    peer = token_peers(server.url, pair["access_token"])
    admin = socketio.Client(reconnection=False)
    admin.connect(server.url, namespaces=["/admin"], transports=["websocket"],
                  headers={"Cookie": cookie_header(sign_in(server.url, people["admin"]))})
    try:
        ack = admin.call("user:ban", {"user": victim, "reason": "test"}, namespace="/admin",
                         timeout=10)
        assert ack["ok"] is True, ack
        wait_until(peer.disconnected.is_set, 10, message="the banned user's token socket stayed")
        assert api(server.url, "GET", "/api/v1/me", pair).status_code == 401
        assert api(server.url, "POST", "/api/v1/auth/refresh",
                   json={"refresh_token": pair["refresh_token"]}).status_code == 401
        banned = requests.post(server.url + "/api/v1/auth/token", timeout=10,
                               json={"username": victim, "password": TEST_PASSWORD})
        assert banned.status_code == 403 and banned.json()["error"]["code"] == "forbidden"
    finally:
        admin.call("user:unban", {"user": victim}, namespace="/admin", timeout=10)
        admin.disconnect()


def test_signing_out_of_the_web_ui_revokes_the_users_token_families(server, people, token_peers):
    name = people["leaver"]
    pair = password_pair(server.url, name)
    peer = token_peers(server.url, pair["access_token"])
    http = sign_in(server.url, name)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get(server.url + "/").text)
    http.post(server.url + "/logout", data={"csrf_token": csrf.group(1)}, timeout=10)
    wait_until(peer.disconnected.is_set, 10, message="the token socket survived the sign-out")
    assert api(server.url, "GET", "/api/v1/me", pair).status_code == 401


# -- token sockets ------------------------------------------------------------------------

def test_a_token_socket_chats_with_no_cookie_and_a_foreign_origin(server, people, token_peers,
                                                                 peers):
    pair = password_pair(server.url, "alice")
    bob = peers(people["reader"])
    room = bob.create_room()
    bob.ok("room:join", {"room": room})
    # websocket-client would add its own Origin; this one is another site's.
    alice = token_peers(server.url, pair["access_token"],
                        headers={"Origin": "https://elsewhere.example"})
    assert alice.call("room:join", {"room": room})["ok"] is True
    ack = alice.call("message:send", {"room": room, "body": "hi from a token",
                                      "client_id": uuid.uuid4().hex})
    assert ack["ok"] is True
    assert ack["message"]["user"] == {"id": ack["message"]["user"]["id"], "username": "alice",
                                      "bot": False, "display_name": None}
    bob.wait_for("message", lambda m: m["body"] == "hi from a token")


def test_a_bad_token_is_refused_at_connect_with_a_reason_to_refresh(server):
    assert refused(server.url, "not-a-token") == {"code": "unauthenticated",
                                                  "error": "invalid_token"}


def test_a_cookie_from_a_foreign_origin_is_still_refused_even_with_a_token(server):
    pair = password_pair(server.url, "alice")
    http = sign_in(server.url, "alice")
    sio = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(server.url, namespaces=[NS], auth={"token": pair["access_token"]},
                    transports=["polling"], wait_timeout=10,
                    headers={"Cookie": cookie_header(http), "Origin": "https://evil.example"})
    sio.disconnect()


def test_a_token_socket_is_told_and_closed_when_its_token_expires(strict, token_peers):
    pair = password_pair(strict.url, "alice")
    peer = token_peers(strict.url, pair["access_token"])
    assert peer.call("rooms:list", {})["ok"] is True
    wait_until(peer.disconnected.is_set, STRICT_TTL + 10, message="never closed at expiry")
    assert peer.got("token:expired") == [
        {"reason": "the access token expired; refresh it and connect again"}]
    # The expired token is refused; a refreshed one connects.
    assert refused(strict.url, pair["access_token"])["error"] == "invalid_token"
    fresh = api(strict.url, "POST", "/api/v1/auth/refresh",
                json={"refresh_token": pair["refresh_token"]}).json()
    again = token_peers(strict.url, fresh["access_token"])
    assert again.call("rooms:list", {})["ok"] is True


# -- REST ------------------------------------------------------------------------------------

def test_rest_reads_history_paged_exactly_as_the_socket(server, people, peers):
    pair = password_pair(server.url, people["writer"])
    alice = peers(people["writer"])
    room = alice.create_room()
    alice.ok("room:join", {"room": room})
    sent = [alice.send(room, f"m{i}")["id"] for i in range(5)]
    over_http = api(server.url, "GET", f"/api/v1/rooms/{room}/messages", pair,
                    params={"after": sent[0], "limit": 2}).json()
    over_socket = alice.ok("message:history", {"room": room, "after": sent[0], "limit": 2})
    assert over_http == {"messages": over_socket["messages"], "has_more": True}
    schemas.MessagesReply.model_validate(over_http)
    room_reply = api(server.url, "GET", f"/api/v1/rooms/{room}", pair).json()
    schemas.RoomReply.model_validate(room_reply)
    members = api(server.url, "GET", f"/api/v1/rooms/{room}/members", pair).json()
    assert [m["username"] for m in members["members"]] == [people["writer"]]
    bad = api(server.url, "GET", f"/api/v1/rooms/{room}/messages", pair,
              params={"after": 1, "before": 9})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"


def test_a_rest_send_with_a_repeated_idempotency_key_answers_the_same_message(server, people,
                                                                            peers):
    pair = password_pair(server.url, "alice")
    bob = peers(people["reader"])
    room = bob.create_room()
    bob.ok("room:join", {"room": room})
    assert api(server.url, "POST", f"/api/v1/rooms/{room}/join", pair).status_code == 200
    key = uuid.uuid4().hex
    first = api(server.url, "POST", f"/api/v1/rooms/{room}/messages", pair,
                json={"body": "once"}, headers={"Idempotency-Key": key})
    again = api(server.url, "POST", f"/api/v1/rooms/{room}/messages", pair,
                json={"body": "once"}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["message"]["client_id"] == key
    bob.wait_for("message", lambda m: m["body"] == "once")
    history = bob.ok("message:history", {"room": room})["messages"]
    assert [m["body"] for m in history] == ["once"]
    assert len([m for m in bob.got("message") if m["body"] == "once"]) == 1
    # Edit, read and delete through the same door.
    message_id = first.json()["message"]["id"]
    edited = api(server.url, "PATCH", f"/api/v1/messages/{message_id}", pair,
                 json={"body": "twice"})
    assert edited.status_code == 200 and edited.json()["message"]["body"] == "twice"
    read = api(server.url, "POST", f"/api/v1/rooms/{room}/read", pair,
               json={"last_read_id": message_id})
    assert read.json() == {"unread": 0, "mentions_unread": 0}
    assert api(server.url, "DELETE", f"/api/v1/messages/{message_id}", pair).status_code == 204
    bob.wait_for("message:deleted", lambda m: m["id"] == message_id)


def test_rest_errors_carry_the_contract_codes_and_statuses(server):
    pair = password_pair(server.url, "alice")
    assert api(server.url, "GET", "/api/v1/rooms/no-such-room", pair).json() == {
        "error": {"code": "not_found", "message": "no such room", "field": "room"}}
    empty = api(server.url, "POST", "/api/v1/rooms", pair, json={"name": ""})
    assert empty.status_code == 400 and empty.json()["error"]["field"] == "name"
    assert api(server.url, "DELETE", "/api/v1/messages/999999999", pair).status_code == 404
    dm = api(server.url, "POST", "/api/v1/dms", pair, json={"user": "bob"})
    assert dm.status_code == 200 and dm.json()["room"]["dm"] is True
    assert api(server.url, "GET", "/api/v1/nothing-here", pair).json()["error"]["code"] == \
        "not_found"
    too_big = api(server.url, "POST", "/api/v1/rooms", pair, data=b"x" * 70000,
                  headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"


def test_the_web_uis_cookie_needs_the_csrf_header_to_write(server, people):
    http = sign_in(server.url, people["writer"])
    assert http.get(server.url + "/api/v1/rooms", timeout=10).status_code == 200
    refused_write = http.post(server.url + "/api/v1/rooms", json={"name": unique("r")},
                              timeout=10)
    assert refused_write.status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', http.get(server.url + "/").text)
    allowed = http.post(server.url + "/api/v1/rooms", json={"name": unique("r")}, timeout=10,
                        headers={"X-CSRFToken": token.group(1)})
    assert allowed.status_code == 201


def test_rest_and_socket_sends_spend_one_rate_limit_bucket(strict, token_peers):
    pair = password_pair(strict.url, "limited")
    room = api(strict.url, "POST", "/api/v1/rooms", pair,
               json={"name": unique("limits")}).json()["room"]["slug"]
    half = STRICT_SENDS // 2
    for i in range(half):
        assert api(strict.url, "POST", f"/api/v1/rooms/{room}/messages", pair,
                   json={"body": f"rest {i}"}).status_code == 201
    peer = token_peers(strict.url, pair["access_token"])
    peer.call("room:join", {"room": room})
    for i in range(STRICT_SENDS - half):
        assert peer.call("message:send", {"room": room, "body": f"socket {i}",
                                          "client_id": uuid.uuid4().hex})["ok"] is True
    over_rest = api(strict.url, "POST", f"/api/v1/rooms/{room}/messages", pair,
                    json={"body": "one too many"})
    assert over_rest.status_code == 429
    assert over_rest.json()["error"]["code"] == "rate_limited"
    assert int(over_rest.headers["Retry-After"]) >= 1
    over_socket = peer.call("message:send", {"room": room, "body": "and here",
                                             "client_id": uuid.uuid4().hex})
    assert over_socket["error"]["code"] == "rate_limited"


# -- bots ---------------------------------------------------------------------------------------

def test_a_bot_signs_in_with_its_key_never_with_the_web_form(strict):
    key = create_bot(strict.env, "formbot")
    pair = token_pair(strict.url, bot_key=key)
    assert api(strict.url, "GET", "/api/v1/me", pair).json()["bot"] is True
    page = requests.Session()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     page.get(strict.url + "/login", timeout=10).text).group(1)
    for password in ("", key, TEST_PASSWORD):
        form = page.post(strict.url + "/login", allow_redirects=False, timeout=10,
                         data={"username": "formbot", "password": password, "csrf_token": csrf})
        assert form.status_code not in (302, 303)
    wrong = requests.post(strict.url + "/api/v1/auth/token", json={"bot_key": key + "x"},
                          timeout=10)
    assert wrong.status_code == 401


def test_the_example_bot_answers_pings_and_survives_token_expiry(strict):
    key = create_bot(strict.env, "pingbot")
    pair = password_pair(strict.url, "alice")
    room = api(strict.url, "POST", "/api/v1/rooms", pair,
               json={"name": unique("bots")}).json()["room"]["slug"]
    env = {**os.environ, "PARLEY_URL": strict.url, "PARLEY_BOT_KEY": key}
    bot = subprocess.Popen([sys.executable, str(ROOT / "examples" / "bot.py"), room],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(bot.stdout.readline, "")),
                              daemon=True)
    reader.start()

    def pongs():
        fresh = password_pair(strict.url, "alice")
        page = api(strict.url, "GET", f"/api/v1/rooms/{room}/messages", fresh).json()
        return [m for m in page["messages"] if m["body"] == "pong"]

    try:
        wait_until(lambda: any("connected and joined" in line for line in output), 20,
                   message="the bot never joined")
        assert api(strict.url, "POST", f"/api/v1/rooms/{room}/join", pair).status_code == 200
        assert api(strict.url, "POST", f"/api/v1/rooms/{room}/messages", pair,
                   json={"body": "!ping"}).status_code == 201
        first = wait_until(pongs, 15, message="no pong")
        assert first[0]["user"]["username"] == "pingbot" and first[0]["user"]["bot"] is True
        wait_until(lambda: any("token expired" in line for line in output), STRICT_TTL + 15,
                   message="the bot's token never expired")
        wait_until(lambda: sum("connected and joined" in line for line in output) >= 2, 20,
                   message="the bot did not reconnect with a refreshed token")
        fresh = password_pair(strict.url, "alice")
        assert api(strict.url, "POST", f"/api/v1/rooms/{room}/messages", fresh,
                   json={"body": "!ping"}).status_code == 201
        wait_until(lambda: len(pongs()) == 2, 15, message="no pong after the refresh")
    finally:
        bot.terminate()
        bot.wait(timeout=10)


# -- metrics and logs -----------------------------------------------------------------------

def test_metrics_need_the_scrape_token_and_count_events(strict):
    assert requests.get(strict.url + "/metrics", timeout=10).status_code == 403
    wrong = requests.get(strict.url + "/metrics", headers=bearer("nope"), timeout=10)
    assert wrong.status_code == 403
    pair = password_pair(strict.url, "alice")
    peer = TokenPeer(strict.url, pair["access_token"]).connect()
    try:
        peer.call("rooms:list", {})
        text = requests.get(strict.url + "/metrics", headers=bearer(METRICS_TOKEN),
                            timeout=10).text
    finally:
        peer.close()
    assert 'parley_socket_events_total{code="ok",event="rooms:list",namespace="/public"}' in text
    assert re.search(r'parley_connections\{namespace="/public",transport="websocket"\} [1-9]',
                     text)
    for name in ("parley_message_send_ack_seconds", "parley_messages_stored_total",
                 "parley_catch_up_messages", "parley_rate_limit_refusals_total",
                 "parley_api_requests_total"):
        assert name in text


def test_no_token_ever_reaches_the_server_log(strict):
    pair = password_pair(strict.url, "alice")
    rotated = api(strict.url, "POST", "/api/v1/auth/refresh",
                  json={"refresh_token": pair["refresh_token"]}).json()
    api(strict.url, "POST", "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    log = strict.log()
    for secret in (pair["access_token"], pair["refresh_token"], rotated["access_token"],
                   rotated["refresh_token"]):
        assert secret not in log
    assert "refresh token reused" in log
