"""Several real server processes sharing one real Redis and one database."""
from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.requirements import require_program
from tests.support.server import ROOT, RedisServer, Server, base_env, flask_cli

OUTPUT = ROOT / "test-output" / "multiproc"
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@pytest.fixture(scope="module")
def redis_server():
    require_program("redis-server", "redis-server")
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """PostgreSQL, the production database for several processes; SQLite
    (one file, WAL) only where no PostgreSQL server can be had."""
    if postgres.available() is None:
        with postgres.throwaway_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'parley.sqlite3'}"


@pytest.fixture(scope="module")
def cluster_env(redis_server, database):
    env = base_env(database, REDIS_URL=redis_server.url)
    flask_cli(env, "init-db")
    return env


def start_server(env: dict, name: str, *extra_args: str, **extra_env: str) -> Server:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path: Path = OUTPUT / f"{name}.log"
    log_path.write_bytes(b"")
    return Server({**env, **extra_env}, log_path=log_path, extra_args=extra_args).start()


@pytest.fixture(scope="module")
def two_servers(cluster_env):
    """Two single-worker gunicorn instances (as behind a sticky proxy)."""
    servers = [start_server(cluster_env, "server-a"), start_server(cluster_env, "server-b")]
    yield servers
    for server in servers:
        server.close()


@contextlib.contextmanager
def running(server: Server):
    try:
        yield server
    finally:
        server.close()
