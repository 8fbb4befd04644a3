"""Reservations and refunds on the Redis storage that every process shares."""
from __future__ import annotations

from types import SimpleNamespace

from app.config import TestingConfig
from app.services.ratelimit import RULES, Limits


def test_a_refund_on_redis_gives_back_one_unit(redis_server):
    # A Limits of its own on Redis, without an app: the suite's Socket.IO
    # server must never be bound to a message queue.
    config = {setting: getattr(TestingConfig, setting) for setting, _ in RULES.values()}
    config.update(REDIS_URL=redis_server.url, SIGNIN_USER_RATE_LIMIT="2 per minute")
    shared = Limits()
    shared.init_app(SimpleNamespace(config=config))
    shared.reset()
    spend = [("signin_user", "bob", None)]
    item = shared._rules["signin_user"]

    def remaining() -> int:
        return shared._limiter.get_window_stats(item, "signin_user", "bob").remaining

    for _ in range(5):
        shared.reserve(spend)
        shared.refund_all(spend)
    assert remaining() == 2
    shared.reserve(spend)
    shared.reserve(spend)
    assert remaining() == 0
    shared.refund("signin_user", "bob")
    assert remaining() == 1
    shared.reset()
