"""The in-process moving-window storage answers as ``limits``' own MemoryStorage does."""
from __future__ import annotations

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from app.services import ratelimit
from app.errors import RateLimited
from app.services.ratelimit import ProcessMemory


class Clock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(ratelimit.time, "time", clock)
    return clock


def test_a_burst_fills_the_window_and_the_window_moves(clock):
    limiter = MovingWindowRateLimiter(ProcessMemory())
    rule = parse("3 per 2 seconds")
    for offset in (0.0, 0.5, 1.0):
        clock.now += offset and 0.5
        assert limiter.hit(rule, "u1")
    assert not limiter.hit(rule, "u1")
    assert limiter.hit(rule, "u2")  # another key has a window of its own
    reset, remaining = limiter.get_window_stats(rule, "u1")
    assert remaining == 0 and reset == pytest.approx(clock.now - 1.0 + 2.0)
    clock.now += 1.01  # the first hit leaves the window
    assert limiter.test(rule, "u1")
    assert limiter.hit(rule, "u1")
    assert not limiter.hit(rule, "u1")


def test_it_agrees_with_the_librarys_memory_storage_on_a_random_sequence(clock, monkeypatch):
    import random

    import limits.storage.memory as library_memory

    monkeypatch.setattr(library_memory.time, "time", clock)
    ours = MovingWindowRateLimiter(ProcessMemory())
    theirs = MovingWindowRateLimiter(MemoryStorage())
    rule = parse("5 per 1 second")
    steps = random.Random(7)
    for _ in range(2000):
        # Steps that never land exactly on the window's edge, where the
        # library's own acquire and count disagree by one.
        clock.now += steps.choice((0.0, 0.013, 0.057, 0.21, 0.69))
        key = steps.choice(("a", "b"))
        assert ours.hit(rule, key) == theirs.hit(rule, key)
        assert tuple(ours.get_window_stats(rule, key)) == pytest.approx(
            tuple(theirs.get_window_stats(rule, key)))


def test_idle_keys_are_swept(clock):
    storage = ProcessMemory()
    limiter = MovingWindowRateLimiter(storage)
    rule = parse("1 per 1 second")
    for user in range(100):
        limiter.hit(rule, str(user))
    clock.now += ProcessMemory.SWEEP_SECONDS + 1
    limiter.hit(rule, "late")
    assert len(storage._windows) == 1
    assert storage.reset() == 1


@pytest.fixture
def sign_in_limits(app):
    app.config.update(SIGNIN_USER_RATE_LIMIT="2 per minute", SIGNIN_ADDRESS_RATE_LIMIT="3 per minute")
    with app.app_context():
        ratelimit.limits.init_app(app)
        yield ratelimit.limits
    ratelimit.limits.init_app(app)


def test_a_refund_gives_back_one_reserved_unit(sign_in_limits):
    spends = [("signin_user", "bob", "bob"), ("signin_address", "10.0.0.1", "10.0.0.1")]
    for _ in range(5):  # reserved and refunded: a right password, again and again
        sign_in_limits.reserve(spends)
        sign_in_limits.refund_all(spends)
    sign_in_limits.reserve(spends)
    sign_in_limits.reserve(spends)
    with pytest.raises(RateLimited):
        sign_in_limits.reserve(spends)


def test_a_refused_reservation_spends_none_of_its_limits(sign_in_limits):
    for n in range(3):
        sign_in_limits.reserve([("signin_address", "10.0.0.1", None)])
    with pytest.raises(RateLimited):
        sign_in_limits.reserve([("signin_user", "bob", None), ("signin_address", "10.0.0.1", None)])
    # bob's unit, taken before the address refused, was given back.
    sign_in_limits.reserve([("signin_user", "bob", None)])
    sign_in_limits.reserve([("signin_user", "bob", None)])
    with pytest.raises(RateLimited):
        sign_in_limits.reserve([("signin_user", "bob", None)])
