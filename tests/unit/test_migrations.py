"""The migrations build exactly the schema the models describe."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.extensions import db
from app import models  # noqa: F401  (registers the tables on db.metadata)
from app.models import is_search_object

ROOT = Path(__file__).resolve().parents[2]


def flask_db_upgrade(database: Path, revision: str = "head") -> subprocess.CompletedProcess:
    # A process of its own, as an operator runs it: Alembic's env.py
    # reconfigures logging, which must not leak into the rest of the suite.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "REDIS_URL"))}
    env.update({"PARLEY_ENV": "development", "SECRET_KEY": "migration-test",
                "DATABASE_URL": f"sqlite:///{database}"})
    flask = Path(sys.executable).with_name("flask")
    return subprocess.run([str(flask), "--app", "wsgi", "db", "upgrade", revision], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_flask_db_upgrade_on_an_empty_database_gives_the_models_schema(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    result = flask_db_upgrade(database)
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            # The search index (an FTS5 table and its shadow tables) is the
            # database's own: not mapped, and left out of the comparison.
            search = {name for name in tables if is_search_object(name)}
            assert "messages_fts" in search
            assert tables - search == set(db.metadata.tables) | {"alembic_version"}
            context = MigrationContext.configure(connection, opts={
                "compare_type": True, "compare_server_default": True,
                "include_name": lambda name, type_, parents: not (
                    type_ in ("table", "index") and name and is_search_object(name))})
            assert compare_metadata(context, db.metadata) == []
    finally:
        engine.dispose()



def test_the_dm_pair_migration_backfills_genuine_dms_and_names_the_others(tmp_path):
    """A database from before issue 12: one genuine DM, one room:create room at a DM
    address (mallory's trap, adopted by dm:open), one DM with a stranger in it."""
    database = tmp_path / "old.sqlite3"
    result = flask_db_upgrade(database, "c8e28f41a1aa")
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            for user_id, name in ((1, "alice"), (2, "bob"), (3, "mallory"), (4, "carol")):
                connection.execute(text(
                    "INSERT INTO users (id, username, username_key, password_hash, is_admin,"
                    " created_at, banned) VALUES (:id, :n, :n, 'x', 0, '2026-01-01', 0)"),
                    {"id": user_id, "n": name})
            for room_id, slug, is_dm, owner, members in (
                    (1, "dm-1-2", 1, None, (1, 2)),
                    (2, "dm-2-4", 0, 3, (2, 3, 4)),
                    (3, "dm-1-4", 1, None, (1, 3, 4))):
                connection.execute(text(
                    "INSERT INTO rooms (id, slug, name, topic, private, is_dm, archived,"
                    " owner_id, created_at) VALUES (:id, :slug, 'x', '', 1, :dm, 0, :owner,"
                    " '2026-01-01')"), {"id": room_id, "slug": slug, "dm": is_dm,
                                        "owner": owner})
                for user_id in members:
                    connection.execute(text(
                        "INSERT INTO memberships (room_id, user_id, joined_at, last_read_id)"
                        " VALUES (:r, :u, '2026-01-01', 0)"), {"r": room_id, "u": user_id})
        result = flask_db_upgrade(database)
        assert result.returncode == 0, result.stderr
        assert "not genuine" in result.stderr and "dm-2-4, dm-1-4" in result.stderr
        with engine.connect() as connection:
            pairs = connection.execute(text(
                "SELECT slug, dm_low_id, dm_high_id FROM rooms ORDER BY id")).all()
        assert pairs == [("dm-1-2", 1, 2), ("dm-2-4", None, None), ("dm-1-4", None, None)]
    finally:
        engine.dispose()


def test_upgrading_a_database_in_use_keeps_every_row(tmp_path):
    """From the first schema to the newest with users, rooms, members,
    sessions and messages in it: nothing may be lost on the way (on SQLite a
    batch rebuild of ``users`` once cascaded and emptied every child table)."""
    database = tmp_path / "in-use.sqlite3"
    result = flask_db_upgrade(database, "c8e28f41a1aa")
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{database}")
    tables = ("users", "login_sessions", "rooms", "memberships", "messages")
    try:
        with engine.begin() as connection:
            for statement in (
                "INSERT INTO users (id, username, username_key, password_hash, is_admin,"
                " created_at, banned) VALUES (1, 'alice', 'alice', 'x', 0, '2026-01-01', 0)",
                "INSERT INTO login_sessions (token, user_id, created_at)"
                " VALUES ('tok', 1, '2026-01-01')",
                "INSERT INTO rooms (id, slug, name, topic, private, is_dm, archived, owner_id,"
                " created_at) VALUES (1, 'lobby', 'Lobby', '', 0, 0, 0, 1, '2026-01-01')",
                "INSERT INTO memberships (room_id, user_id, joined_at, last_read_id)"
                " VALUES (1, 1, '2026-01-01', 0)",
                "INSERT INTO messages (room_id, user_id, client_id, body, created_at, deleted)"
                " VALUES (1, 1, 'c1', 'kept', '2026-01-01', 0)",
            ):
                connection.execute(text(statement))
        result = flask_db_upgrade(database)
        assert result.returncode == 0, result.stderr
        with engine.connect() as connection:
            counts = {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                      for table in tables}
            body = connection.execute(text("SELECT body FROM messages")).scalar()
        assert counts == dict.fromkeys(tables, 1) and body == "kept"
    finally:
        engine.dispose()


def test_the_change_log_migration_starts_each_room_with_its_live_messages(tmp_path):
    database = tmp_path / "old.sqlite3"
    assert flask_db_upgrade(database, "c8e28f41a1aa").returncode == 0
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO users (id, username, username_key, password_hash, is_admin,"
                " created_at, banned) VALUES (1, 'Alice', 'alice', 'x', 0,"
                " '2026-11-30 10:00:00.000000', 0)")
            connection.exec_driver_sql(
                "INSERT INTO rooms (id, slug, name, topic, private, is_dm, archived, created_at)"
                " VALUES (1, 'general', 'General', '', 0, 0, 0, '2026-11-30 10:00:00.000000'),"
                " (2, 'quiet', 'Quiet', '', 0, 0, 0, '2026-11-30 10:00:00.000000')")
            for message_id, body, deleted in ((1, "first", 0), (2, "gone", 1), (3, "third", 0)):
                connection.exec_driver_sql(
                    "INSERT INTO messages (id, room_id, user_id, client_id, body, created_at,"
                    " deleted) VALUES (?, 1, 1, ?, ?, '2026-11-30 10:00:01.250000', ?)",
                    (message_id, f"c{message_id}", body, deleted))
        assert flask_db_upgrade(database).returncode == 0
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT room_id, position, event, payload, message_id FROM room_changes"
                " ORDER BY room_id, position").all()
            counters = connection.exec_driver_sql(
                "SELECT slug, last_position, floor_position FROM rooms ORDER BY id").all()
    finally:
        engine.dispose()
    assert [(r.room_id, r.position, r.event, r.message_id) for r in rows] == [
        (1, 1, "message", 1), (1, 2, "message", 3)]
    assert json.loads(rows[1].payload) == {
        "id": 3, "room": "general", "user": {"id": 1, "username": "Alice"}, "body": "third",
        "created_at": "2026-11-30T10:00:01.250Z", "edited_at": None, "client_id": "c3",
        "cursor": 2}
    assert counters == [("general", 2, 0), ("quiet", 0, 0)]


def test_the_search_migration_indexes_the_live_messages_already_there(tmp_path):
    database = tmp_path / "old.sqlite3"
    assert flask_db_upgrade(database, "5b7e0c1d2a3f").returncode == 0
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO users (id, username, username_key, password_hash, is_admin,"
                " created_at, banned) VALUES (1, 'alice', 'alice', 'x', 0, '2026-12-01', 0)")
            connection.exec_driver_sql(
                "INSERT INTO rooms (id, slug, name, topic, private, is_dm, archived, created_at)"
                " VALUES (1, 'general', 'General', '', 0, 0, 0, '2026-12-01')")
            for message_id, body, deleted in ((1, "the release shipped", 0),
                                              (2, "the release was deleted", 1),
                                              (3, "nothing to see", 0)):
                connection.exec_driver_sql(
                    "INSERT INTO messages (id, room_id, user_id, client_id, body, created_at,"
                    " deleted) VALUES (?, 1, 1, ?, ?, '2026-12-01', ?)",
                    (message_id, f"c{message_id}", body, deleted))
        result = flask_db_upgrade(database)
        assert result.returncode == 0, result.stderr
        with engine.begin() as connection:
            def found(word):
                return [row[0] for row in connection.exec_driver_sql(
                    "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid",
                    (f'"{word}"',))]
            assert found("release") == [1]
            # From here on the triggers keep it: a new message, an edit, a deletion.
            connection.exec_driver_sql(
                "INSERT INTO messages (id, room_id, user_id, client_id, body, created_at,"
                " deleted) VALUES (4, 1, 1, 'c4', 'another release', '2026-12-02', 0)")
            connection.exec_driver_sql("UPDATE messages SET body = 'a release' WHERE id = 3")
            connection.exec_driver_sql("UPDATE messages SET deleted = 1 WHERE id = 1")
            assert found("release") == [3, 4]
            assert found("nothing") == []
    finally:
        engine.dispose()
