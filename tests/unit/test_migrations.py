"""The migrations build exactly the schema the models describe."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.extensions import db
from app import models  # noqa: F401  (registers the tables on db.metadata)

ROOT = Path(__file__).resolve().parents[2]


def flask_db_upgrade(database: Path) -> subprocess.CompletedProcess:
    # A process of its own, as an operator runs it: Alembic's env.py
    # reconfigures logging, which must not leak into the rest of the suite.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "REDIS_URL"))}
    env.update({"PARLEY_ENV": "development", "SECRET_KEY": "migration-test",
                "DATABASE_URL": f"sqlite:///{database}"})
    flask = Path(sys.executable).with_name("flask")
    return subprocess.run([str(flask), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_flask_db_upgrade_on_an_empty_database_gives_the_models_schema(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    result = flask_db_upgrade(database)
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            assert tables == set(db.metadata.tables) | {"alembic_version"}
            context = MigrationContext.configure(connection, opts={
                "compare_type": True, "compare_server_default": True})
            assert compare_metadata(context, db.metadata) == []
    finally:
        engine.dispose()

