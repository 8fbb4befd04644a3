"""Abuse limits: sign-in throttling, connection caps, send rate, room creation.

Each limit answers the contract's ``rate_limited`` with ``retry_after`` (HTTP
429 for the sign-in form) and is written to the audit log, at most once per
rule and key a minute, so the limit cannot itself be used to flood the log.
"""
from __future__ import annotations

import pytest
from socketio import packet
from sqlalchemy import func, select

from app.extensions import socketio
from app.models import Message, Room
from tests.conftest import call
from tests.hardening.conftest import audit_rows, in_db


@pytest.fixture
def app_config():
    return {
        "SIGNIN_USER_RATE_LIMIT": "3 per minute",
        "SIGNIN_ADDRESS_RATE_LIMIT": "5 per minute",
        "ROOM_CREATE_RATE_LIMIT": "3 per hour",
        "MESSAGE_RATE_LIMIT": "3 per minute",
        "MAX_CONNECTIONS_PER_USER": 2,
        "MAX_CONNECTIONS_PER_ADDRESS": 3,
    }


def client_at(app, address: str):
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = address
    return http


def sign_in(http, username: str, password: str):
    return http.post("/login", data={"username": username, "password": password})


def limit_entries(app, rule: str) -> list[tuple]:
    return [row for row in audit_rows(app) if row[1] == f"rate-limit:{rule}"]


# -- sign-in --------------------------------------------------------------------

def test_sign_in_is_throttled_per_account_even_with_the_right_password(app, auth):
    auth.create("bob")
    http = client_at(app, "10.0.0.1")
    for _ in range(3):
        assert sign_in(http, "bob", "wrong-guess").status_code == 401
    response = sign_in(http, "Bob", "correct-horse")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert "Set-Cookie" not in response.headers or "session=" not in response.headers["Set-Cookie"]
    assert sign_in(http, "bob", "correct-horse").status_code == 429


def test_a_throttled_account_is_audited_once_per_minute(app, auth):
    auth.create("bob")
    http = client_at(app, "10.0.0.1")
    for _ in range(3):
        sign_in(http, "bob", "wrong-guess")
    for _ in range(4):
        assert sign_in(http, "bob", "wrong-guess").status_code == 429
    assert limit_entries(app, "signin_user") == [("server", "rate-limit:signin_user", "bob")]


def test_successful_sign_ins_are_never_throttled(app, auth):
    auth.create("bob")
    http = client_at(app, "10.0.0.1")
    for _ in range(8):
        assert sign_in(http, "bob", "correct-horse").status_code == 303


def test_sign_in_is_throttled_per_address_across_accounts(app, auth):
    auth.create("bob")
    attacker = client_at(app, "10.0.0.66")
    for n in range(5):
        assert sign_in(attacker, f"user{n}", "wrong-guess").status_code == 401
    assert sign_in(attacker, "bob", "correct-horse").status_code == 429
    # bob, from his own address, is not held up by the attacker's address.
    assert sign_in(client_at(app, "10.0.0.7"), "bob", "correct-horse").status_code == 303
    assert limit_entries(app, "signin_address") == [
        ("server", "rate-limit:signin_address", "10.0.0.66")]


# -- connections ------------------------------------------------------------------

def connect_refusal(app, http, namespace="/public"):
    """Connect with ``http``'s cookie; the CONNECT_ERROR data, or None if accepted."""
    sock = socketio.test_client(app, flask_test_client=http)  # the default namespace
    errors = []
    send_packet = socketio.server._send_packet

    def record(eio_sid, pkt):
        if pkt.packet_type == packet.CONNECT_ERROR and pkt.namespace == namespace:
            errors.append(pkt.data)
        return send_packet(eio_sid, pkt)

    socketio.server._send_packet = record
    try:
        sock.connect(namespace)
    finally:
        socketio.server._send_packet = send_packet
    return (errors[0] if errors else {"message": "refused"}) if not sock.is_connected(
        namespace) else None


def test_connections_per_user_are_capped(app, auth):
    first, second = auth.socket("bob"), auth.socket("bob")
    error = connect_refusal(app, auth.login("bob"))
    assert error["data"]["code"] == "rate_limited"
    assert error["data"]["retry_after"] > 0
    assert limit_entries(app, "connect_user") == [("server", "rate-limit:connect_user", "bob")]
    first.disconnect("/public")
    assert connect_refusal(app, auth.login("bob")) is None
    assert call(second, "rooms:list", {})["ok"] is True


def test_connections_per_address_are_capped_across_users(app, auth):
    for name in ("ann", "bob", "cid", "dan"):
        auth.create(name)
    for name in ("ann", "bob", "cid"):
        http = client_at(app, "10.0.0.9")
        sign_in(http, name, "correct-horse")
        assert connect_refusal(app, http) is None
    crowded = client_at(app, "10.0.0.9")
    sign_in(crowded, "dan", "correct-horse")
    assert connect_refusal(app, crowded)["data"]["code"] == "rate_limited"
    elsewhere = client_at(app, "10.0.0.10")
    sign_in(elsewhere, "dan", "correct-horse")
    assert connect_refusal(app, elsewhere) is None


# -- sends and rooms -----------------------------------------------------------------

def test_the_send_rate_limit_answers_rate_limited_stores_nothing_and_is_audited(app, auth):
    bob = auth.socket("bob")
    call(bob, "room:create", {"name": "lobby"})
    call(bob, "room:join", {"room": "lobby"})
    acks = [call(bob, "message:send", {"room": "lobby", "body": f"m{n}", "client_id": f"c{n}"})
            for n in range(5)]
    assert [a["ok"] for a in acks] == [True, True, True, False, False]
    assert acks[3]["error"]["code"] == "rate_limited"
    assert acks[3]["error"]["retry_after"] > 0
    assert in_db(app, select(func.count()).select_from(Message))[0][0] == 3
    assert limit_entries(app, "message") == [("server", "rate-limit:message", "bob")]


def test_rooms_created_per_user_are_capped(app, auth):
    bob = auth.socket("bob")
    # Refused requests spend nothing.
    assert call(bob, "room:create", {"name": ""})["error"]["code"] == "invalid"
    for n in range(3):
        assert call(bob, "room:create", {"name": f"room {n}"})["ok"] is True
    ack = call(bob, "room:create", {"name": "one too many"})
    assert ack["error"]["code"] == "rate_limited"
    assert ack["error"]["retry_after"] > 60
    assert in_db(app, select(func.count()).select_from(Room))[0][0] == 3
    assert limit_entries(app, "room_create") == [("server", "rate-limit:room_create", "bob")]
    # Another user has their own budget.
    assert call(auth.socket("ann"), "room:create", {"name": "ann's"})["ok"] is True
