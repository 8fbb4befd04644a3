"""A throwaway PostgreSQL database on the local server, for real-database tests."""
from __future__ import annotations

import contextlib
import os
import uuid

# Given in SQLAlchemy's form (postgresql+psycopg://) or libpq's; psycopg wants libpq's.
ADMIN_URL = os.environ.get("PARLEY_TEST_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres").replace(
                               "postgresql+psycopg://", "postgresql://", 1)


def available() -> str | None:
    """None when a PostgreSQL server answers, else why not."""
    import psycopg

    from .requirements import WITHOUT, left_out

    if left_out("postgresql"):
        return f"PostgreSQL is left out by {WITHOUT}"

    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # no server, no role, refused
        return f"no PostgreSQL server at {ADMIN_URL}: {exc}"


@contextlib.contextmanager
def throwaway_database():
    """Create ``parley_test_<random>``, yield its SQLAlchemy URL, drop it after."""
    import psycopg

    name = f"parley_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
