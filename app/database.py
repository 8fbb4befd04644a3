"""The database schema against the code's Alembic migrations.

A server must not serve from a database whose schema it does not match: on
an empty database every request would fail with a 500 while the process
looks healthy. So each gunicorn worker, before it serves (gunicorn.conf.py's
``post_worker_init``), calls ``prepare_schema``:

- ``missing`` (no Parley table): the migrations are applied, unless
  ``AUTO_MIGRATE=false``. An empty database has nothing to lose.
- ``behind`` (at an older revision than the code's head): the worker
  refuses to start, naming the command to run, unless ``AUTO_MIGRATE=true``
  applies the migrations at start. Upgrading a database holding data is the
  operator's decision by default (a backup first, a maintenance window).
- ``unversioned`` (Parley's tables, no Alembic revision: made by
  ``db.create_all()`` or by hand): refused; Alembic cannot tell what it holds.
- ``ahead`` (a revision this code does not know: newer code has migrated it
  during a rolling upgrade): served, with a warning. Migrations are written
  to keep the previous release working, so old instances may drain.

Several workers or instances may start together: the check and the upgrade
run under one lock per database (a PostgreSQL advisory lock; on SQLite an
exclusive lock on a file beside the database), so the migrations run once
and the others find the schema current.

``/healthz`` reports the same state (``schema_state``) on every call.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

UPGRADE_COMMAND = ".venv/bin/flask --app wsgi db upgrade"
# Any 64-bit key shared by every Parley process on one PostgreSQL database:
# "parley" in ASCII.
ADVISORY_LOCK_KEY = 0x7061726C6579
AUTO_MIGRATE_MODES = ("empty", "true", "false")


@dataclass(frozen=True)
class SchemaState:
    status: str  # "ok", "missing", "behind", "ahead" or "unversioned"
    current: tuple[str, ...]
    head: tuple[str, ...]

    @property
    def serves(self) -> bool:
        """Whether this code can serve from the database as it is."""
        return self.status in ("ok", "ahead")


class SchemaNotReady(Exception):
    """The worker must not serve: the message says what to run."""


@lru_cache(maxsize=4)
def _scripts(directory: str) -> ScriptDirectory:
    config = AlembicConfig()
    config.set_main_option("script_location", directory)
    return ScriptDirectory.from_config(config)


def schema_state(connection: Connection, directory: str) -> SchemaState:
    """Where the database's schema stands against the migrations in ``directory``.

    The happy path is one query (the revision table), cheap enough for every
    ``/healthz``; a database that does not answer raises.
    """
    scripts = _scripts(directory)
    head = tuple(sorted(scripts.get_heads()))
    try:
        current = tuple(sorted(row[0] for row in
                               connection.execute(text("SELECT version_num FROM alembic_version"))))
    except DBAPIError:
        # No revision table (or the database is down: inspecting raises then).
        connection.rollback()
        current = ()
    if not current:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        return SchemaState("unversioned" if tables else "missing", current, head)
    if current == head:
        return SchemaState("ok", current, head)
    try:
        for revision in current:
            scripts.get_revision(revision)
    except CommandError:
        return SchemaState("ahead", current, head)
    return SchemaState("behind", current, head)


@contextlib.contextmanager
def migration_lock(engine: Engine):
    """Held by one process at a time per database, across hosts on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": ADVISORY_LOCK_KEY})
                connection.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # SQLite's own locks cannot span Alembic's several transactions; a
        # file lock beside the database can (one host, as SQLite is).
        database = Path(engine.url.database)
        lock_path = database.with_name(database.name + ".migrate-lock")
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
    else:
        yield


def prepare_schema(app) -> SchemaState:
    """Bring an empty database to the code's schema (and an older one, with
    ``AUTO_MIGRATE=true``); raise ``SchemaNotReady`` when it cannot serve."""
    from flask_migrate import upgrade

    from .extensions import db

    mode = app.config["AUTO_MIGRATE"]
    directory = app.extensions["migrate"].directory
    with app.app_context():
        _check_reachable(db.engine)
        with migration_lock(db.engine):
            with db.engine.connect() as connection:
                state = schema_state(connection, directory)
            if state.status == "ahead":
                log.warning("database schema %s is newer than this code's %s: serving "
                            "(a rolling upgrade?)", ",".join(state.current), ",".join(state.head))
            if state.serves:
                return state
            if (state.status == "missing" and mode != "false") or (
                    state.status == "behind" and mode == "true"):
                log.info("database schema %s: applying migrations to %s", state.status,
                         ",".join(state.head))
                upgrade(directory=directory)
                with db.engine.connect() as connection:
                    return schema_state(connection, directory)
            raise SchemaNotReady(refusal(state, mode))


def _check_reachable(engine: Engine) -> None:
    """A database that does not answer at start is the operator's to fix (the
    process manager restarts the server): one line saying so, no traceback."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        detail = str(exc.orig).strip()
        reason = detail.splitlines()[0] if detail else type(exc.orig).__name__
        raise SchemaNotReady(
            f"Parley cannot start: the database {engine.url.render_as_string(hide_password=True)} "
            f"does not answer: {reason}") from None


def refusal(state: SchemaState, mode: str) -> str:
    """What the operator reads when the server refuses to start."""
    current = ",".join(state.current) or "none"
    head = ",".join(state.head)
    if state.status == "unversioned":
        return ("Parley refuses to start: the database has tables but no Alembic revision "
                "(made by db.create_all() or by hand?), so it cannot tell whether they match "
                f"this code. Point DATABASE_URL at an empty database, or, if the tables are "
                f"this code's schema, record that with: .venv/bin/flask --app wsgi db stamp {head}")
    if state.status == "missing":
        return ("Parley refuses to start: the database has no schema and AUTO_MIGRATE=false. "
                f"Create it with: {UPGRADE_COMMAND}")
    return (f"Parley refuses to start: the database schema is behind this code (at {current}, "
            f"the code needs {head}). Back the database up, then run: {UPGRADE_COMMAND} "
            "(or set AUTO_MIGRATE=true to apply migrations at start)")
