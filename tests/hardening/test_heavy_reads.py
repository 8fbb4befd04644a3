"""Heavy reads (``room:join``, ``message:history``) have a rate limit of their own, per user.

Each may answer a page of up to 500 messages: a client asking for them in a
loop makes the worker read and queue far more than it sends. Past the limit
the ack is ``rate_limited`` with ``retry_after``, and nothing is read or joined.
"""
from __future__ import annotations

import pytest

from tests.conftest import call, received
from tests.hardening.conftest import audit_rows

LIMIT = 4


@pytest.fixture
def app_config():
    return {"HEAVY_READ_RATE_LIMIT": f"{LIMIT} per minute"}


def refusal(ack: dict) -> dict:
    assert ack["ok"] is False, ack
    return ack["error"]


def test_joins_and_history_pages_share_a_per_user_limit(app, auth):
    bob = auth.socket("bob")
    assert call(bob, "room:create", {"name": "lobby"})["ok"]
    acks = [call(bob, "room:join", {"room": "lobby"}),
            call(bob, "message:history", {"room": "lobby"}),
            call(bob, "room:join", {"room": "lobby"}),
            call(bob, "message:history", {"room": "lobby", "limit": 500})]
    assert all(ack["ok"] for ack in acks), acks
    for event in ("room:join", "message:history"):
        error = refusal(call(bob, event, {"room": "lobby"}))
        assert error["code"] == "rate_limited"
        assert 0 < error["retry_after"] <= 60
    assert [row for row in audit_rows(app) if row[1] == "rate-limit:heavy_read"] == [
        ("server", "rate-limit:heavy_read", "bob")]


def test_a_refused_join_joins_nothing(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    assert call(alice, "room:create", {"name": "lobby"})["ok"]
    assert call(alice, "room:join", {"room": "lobby"})["ok"]
    for _ in range(LIMIT):
        assert call(bob, "message:history", {"room": "general-nowhere"})["ok"] is False
    assert refusal(call(bob, "room:join", {"room": "lobby"}))["code"] == "rate_limited"
    received(alice)
    call(alice, "message:send", {"room": "lobby", "body": "hi", "client_id": "c1"})
    assert received(bob, "message") == []


def test_the_limit_is_per_user(app, auth):
    alice, bob = auth.socket("alice"), auth.socket("bob")
    assert call(alice, "room:create", {"name": "lobby"})["ok"]
    for _ in range(LIMIT):
        assert call(bob, "room:join", {"room": "lobby"})["ok"]
    assert refusal(call(bob, "room:join", {"room": "lobby"}))["code"] == "rate_limited"
    assert call(alice, "room:join", {"room": "lobby"})["ok"]
