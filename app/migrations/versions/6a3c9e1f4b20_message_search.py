"""message search

A full-text index of live messages, kept by the database: on SQLite an FTS5
table over ``messages`` (external content) with triggers on insert, update
and delete; on PostgreSQL a GIN index on ``to_tsvector('english', body)`` of
the rows not deleted. Existing messages are indexed here, in the upgrade.

On PostgreSQL the index is built inside the migration's transaction, which
holds off writes to ``messages`` while it builds. On a big database an
operator may build it first without blocking writes, outside a transaction
(``CREATE INDEX CONCURRENTLY ix_messages_search ON messages USING gin
(to_tsvector('english', body)) WHERE NOT deleted``): the migration then finds
it and moves on (``IF NOT EXISTS``).

Revision ID: 6a3c9e1f4b20
Revises: 7a3c9e1f5b20
Create Date: 2026-12-04 18:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '6a3c9e1f4b20'
down_revision = '7a3c9e1f5b20'
branch_labels = None
depends_on = None

# Copied from app/models.py (SQLITE_SEARCH_DDL, POSTGRES_SEARCH_DDL) so that
# this migration keeps building what it built whatever the code becomes.
SQLITE = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN NOT new.deleted BEGIN "
    "INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, deleted ON messages BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, body) "
    "SELECT 'delete', old.id, old.body WHERE NOT old.deleted; "
    "INSERT INTO messages_fts (rowid, body) SELECT new.id, new.body WHERE NOT new.deleted; END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN NOT old.deleted BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body); "
    "END",
    # The messages already there (not 'rebuild', which would index the
    # deleted ones too).
    "INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages WHERE NOT deleted",
)
POSTGRESQL = (
    "CREATE INDEX IF NOT EXISTS ix_messages_search ON messages "
    "USING gin (to_tsvector('english', body)) WHERE NOT deleted",
)


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in POSTGRESQL:
            op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("messages_fts_insert", "messages_fts_update", "messages_fts_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
