"""What to do when a test's outside part (Chromium, PostgreSQL) is missing.

A developer's machine may lack one: the tests that need it are skipped, with
the reason and the fix in pytest's summary. CI sets ``PARLEY_TEST_REQUIRE_ALL``
and installs everything, so there a missing part fails the run instead of
silently skipping what it should have proved.
"""
from __future__ import annotations

import os

import pytest

REQUIRE_ALL = "PARLEY_TEST_REQUIRE_ALL"


def unavailable(reason: str) -> None:
    """Skip the calling test (or fixture), or fail it when CI requires every part."""
    if os.environ.get(REQUIRE_ALL):
        pytest.fail(f"{reason} ({REQUIRE_ALL} is set: every test must run)", pytrace=False)
    pytest.skip(reason)
