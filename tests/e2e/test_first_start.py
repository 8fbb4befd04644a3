"""A server's first start on an empty database, and its start on an older one.

Real ``gunicorn -c gunicorn.conf.py wsgi:app`` processes, no ``init-db`` or
``create-user`` first, as an operator following "Running it" would start
them: an empty database gets the schema and serves; a database older than
the code stops the server with the command to run, unless AUTO_MIGRATE=true.
"""
from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

import psycopg
import pytest
import requests

from app.database import UPGRADE_COMMAND
from tests.support import postgres
from tests.support.requirements import unavailable
from tests.support.server import ROOT, VENV_BIN, Server, flask_cli, free_port, sign_up

from .conftest import OUTPUT, RUNNING, e2e_env, unique

pytestmark = pytest.mark.e2e
HEAD = "7c3d9e2b4f10"


def start(env: dict, name: str, cwd: Path = ROOT) -> Server:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT / f"{name}.log"
    log_path.write_bytes(b"")
    server = Server(env, log_path=log_path, cwd=cwd)
    RUNNING.append(server)
    return server


def stop(*servers: Server) -> None:
    for server in servers:
        server.close()
        RUNNING.remove(server)


def refused_start(env: dict, name: str, cwd: Path = ROOT) -> tuple[int, str]:
    """Start gunicorn and wait for it to give up: its exit code and its log."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT / f"{name}.log"
    with open(log_path, "wb") as log:
        result = subprocess.run(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind",
             f"127.0.0.1:{free_port()}", "wsgi:app"],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=60)
    return result.returncode, log_path.read_text(errors="replace")


def serves_a_new_user(server: Server) -> None:
    sign_up(server.url, unique("newcomer"))  # a 500 here was the bug
    health = requests.get(server.url + "/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "db": "ok", "redis": "disabled", "schema": "ok"}


@contextlib.contextmanager
def sqlite(path):
    """A committed and closed connection to a SQLite file."""
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        yield connection


def revisions(connection) -> list[str]:
    return [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]


@pytest.fixture
def postgres_database():
    """An empty database of its own (the session's shared one is prepared)."""
    reason = postgres.available()
    if reason is not None:
        unavailable(f"{reason}; start one or point PARLEY_TEST_POSTGRES_URL at one")
    with postgres.throwaway_database() as url:
        yield url


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_a_server_on_a_new_sqlite_file_creates_the_schema_and_serves(tmp_path):
    database = tmp_path / "new.sqlite3"
    server = start(e2e_env(f"sqlite:///{database}"), "first-start-sqlite")
    try:
        server.start()
        serves_a_new_user(server)
    finally:
        stop(server)
    with sqlite(database) as connection:
        assert revisions(connection) == [HEAD]
    assert "applying migrations" in server.log_path.read_text()


@pytest.mark.postgres
def test_two_servers_on_a_new_postgresql_database_migrate_it_once(postgres_database):
    """Both start together; the advisory lock lets one migrate, the other waits
    and finds the schema current (without it one would fail on CREATE TABLE)."""
    env = e2e_env(postgres_database)
    servers = [start(env, "first-start-postgres-a"), start(env, "first-start-postgres-b")]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_healthy()
            serves_a_new_user(server)
    finally:
        stop(*servers)
    with psycopg.connect(libpq(postgres_database)) as connection:
        assert revisions(connection) == [HEAD]
    logs = [server.log_path.read_text() for server in servers]
    assert sum("applying migrations" in log for log in logs) == 1


def test_with_auto_migrate_false_a_new_database_stops_the_server_naming_the_command(tmp_path):
    env = e2e_env(f"sqlite:///{tmp_path / 'new.sqlite3'}", AUTO_MIGRATE="false")
    code, log = refused_start(env, "first-start-refused")
    assert code != 0
    assert "no schema and AUTO_MIGRATE=false" in log and UPGRADE_COMMAND in log
    assert "Traceback" not in log


@pytest.fixture
def newer_code(tmp_path) -> Path:
    """A copy of the server's code with one more migration than the real one:
    the code of the next release, for a database made by this one."""
    code = tmp_path / "next-release"
    code.mkdir()
    shutil.copytree(ROOT / "app", code / "app", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("wsgi.py", "gunicorn.conf.py"):
        shutil.copy(ROOT / name, code / name)
    (code / "app" / "migrations" / "versions" / "d00000000001_next_release.py").write_text(f'''
"""next release"""
from alembic import op
import sqlalchemy as sa

revision = "d00000000001"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("next_release", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade():
    op.drop_table("next_release")
''')
    return code


@pytest.fixture
def current_database(tmp_path) -> str:
    """A SQLite database at this code's head, made as an operator would."""
    url = f"sqlite:///{tmp_path / 'current.sqlite3'}"
    flask_cli(e2e_env(url), "init-db")
    return url


def test_a_database_behind_the_code_stops_the_server_naming_the_command(
        newer_code, current_database):
    code, log = refused_start(e2e_env(current_database), "upgrade-refused", cwd=newer_code)
    assert code != 0
    assert "the database schema is behind this code" in log
    assert f"at {HEAD}, the code needs d00000000001" in log and UPGRADE_COMMAND in log
    assert "Traceback" not in log


def test_with_auto_migrate_true_the_server_upgrades_an_older_database(
        newer_code, current_database):
    server = start(e2e_env(current_database, AUTO_MIGRATE="true"), "upgrade-auto",
                   cwd=newer_code)
    try:
        server.start()
        assert requests.get(server.url + "/healthz", timeout=10).json()["schema"] == "ok"
    finally:
        stop(server)
    with sqlite(current_database.removeprefix("sqlite:///")) as connection:
        assert revisions(connection) == ["d00000000001"]


def test_an_older_server_keeps_serving_a_database_a_newer_one_migrated(
        newer_code, current_database):
    """A rolling upgrade: the new release migrated; the old one still serves."""
    old = start(e2e_env(current_database), "rolling-old").start()
    try:
        new = start(e2e_env(current_database, AUTO_MIGRATE="true"), "rolling-new",
                    cwd=newer_code).start()
        stop(new)
        health = requests.get(old.url + "/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["schema"] == "ahead"
    finally:
        stop(old)


def test_tables_without_a_revision_stop_the_server(current_database):
    with sqlite(current_database.removeprefix("sqlite:///")) as connection:
        connection.execute("DROP TABLE alembic_version")
    code, log = refused_start(e2e_env(current_database), "unversioned-refused")
    assert code != 0
    assert "tables but no Alembic revision" in log and f"db stamp {HEAD}" in log


def test_healthz_is_503_while_the_schema_is_missing(current_database):
    """A running server whose database loses its schema (restored from an
    empty backup, dropped by hand) stops passing its health check."""
    server = start(e2e_env(current_database), "schema-lost").start()
    try:
        path = current_database.removeprefix("sqlite:///")
        with sqlite(path) as connection:
            tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                        " AND name NOT LIKE 'sqlite_%'").fetchall()
            for (table,) in tables:
                # IF EXISTS: dropping the search index's FTS5 table drops its
                # shadow tables with it.
                connection.execute(f'DROP TABLE IF EXISTS "{table}"')
        health = requests.get(server.url + "/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json() == {"status": "error", "db": "error", "redis": "disabled",
                                 "schema": "missing"}
    finally:
        stop(server)


def test_a_database_that_does_not_answer_stops_the_server_in_one_line():
    url = f"postgresql+psycopg://parley:secret-pw@127.0.0.1:{free_port()}/parley"
    code, log = refused_start(e2e_env(url), "database-down")
    assert code != 0
    assert "Parley cannot start: the database" in log and "does not answer" in log
    assert "secret-pw" not in log and "Traceback" not in log
