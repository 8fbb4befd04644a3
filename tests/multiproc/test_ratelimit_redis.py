"""Reservations and refunds on the Redis storage that every process shares."""
from __future__ import annotations

import pytest

from app import create_app
from app.errors import RateLimited
from app.extensions import db
from app.services.ratelimit import limits


@pytest.fixture
def shared_limits(redis_server, monkeypatch, tmp_path):
    monkeypatch.setenv("PARLEY_ENV", "testing")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                      "REDIS_URL": redis_server.url, "SIGNIN_USER_RATE_LIMIT": "2 per minute"})
    with app.app_context():
        db.create_all()
        limits.init_app(app)
        limits.reset()
        yield limits
        limits.reset()
    limits.init_app(create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"}))


def test_a_refund_on_redis_gives_back_one_unit(shared_limits):
    spend = [("signin_user", "bob", None)]
    for _ in range(5):
        shared_limits.reserve(spend)
        shared_limits.refund_all(spend)
    shared_limits.reserve(spend)
    shared_limits.reserve(spend)
    with pytest.raises(RateLimited):
        shared_limits.reserve(spend)
