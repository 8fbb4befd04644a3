"""What to do when a test's outside part (Redis, nginx, Chromium, PostgreSQL) is missing.

``make test`` installs the missing parts first when it can
(tests/support/setup-system.sh: as root or with passwordless sudo, where
apt-get is). Where it cannot, the tests that need a part are skipped, with
the reason and the fix in pytest's summary. CI sets ``PARLEY_TEST_REQUIRE_ALL``,
so there a missing part fails the run instead of silently skipping what it
should have proved.

``PARLEY_TEST_WITHOUT`` (comma-separated: ``redis-server``, ``nginx``,
``chromium``, ``postgresql``) makes both the set-up script and the tests
treat those parts as absent: it shows what a machine without them gets,
without uninstalling anything.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REQUIRE_ALL = "PARLEY_TEST_REQUIRE_ALL"
WITHOUT = "PARLEY_TEST_WITHOUT"
SETUP_HINT = "make test installs it when run as root or with passwordless sudo where apt-get is"


def unavailable(reason: str) -> None:
    """Skip the calling test (or fixture), or fail it when CI requires every part."""
    if os.environ.get(REQUIRE_ALL):
        pytest.fail(f"{reason} ({REQUIRE_ALL} is set: every test must run)", pytrace=False)
    pytest.skip(reason)


def left_out(part: str) -> bool:
    """True when ``PARLEY_TEST_WITHOUT`` names ``part``."""
    return part in {p.strip() for p in os.environ.get(WITHOUT, "").split(",")}


def program(name: str, *fallbacks: str) -> str | None:
    """The path of ``name`` (on PATH, else the first existing fallback), or None
    when it is missing or left out."""
    if left_out(name):
        return None
    found = shutil.which(name)
    if found:
        return found
    return next((f for f in fallbacks if Path(f).is_file() and os.access(f, os.X_OK)), None)


def require_program(name: str, package: str, *fallbacks: str) -> str:
    """The path of ``name``, or skip (fail under CI) saying how to get it."""
    found = program(name, *fallbacks)
    if found is None:
        why = f"left out by {WITHOUT}" if left_out(name) else "not installed"
        unavailable(f"{name} is {why} (apt-get install -y {package}; {SETUP_HINT})")
    return found
