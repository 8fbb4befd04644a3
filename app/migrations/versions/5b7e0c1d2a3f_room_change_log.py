"""room change log

Every room gets a position counter and a floor, and ``room_changes`` holds
its ordered log. Existing rooms start with their live messages in the log,
as ``message`` entries at positions 1..N in id order (edited ones with their
current text), so a client's first cursor can be caught up from the start;
earlier edits, deletions and room changes happened before there was a log,
which no client can hold a cursor from.

Revision ID: 5b7e0c1d2a3f
Revises: d24a5e2f887d
Create Date: 2026-12-03 13:20:00

"""
import json
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b7e0c1d2a3f'
down_revision = 'd24a5e2f887d'
branch_labels = None
depends_on = None

_BATCH = 1000


def _isoformat(moment):
    # The contract's time format (app.models.isoformat), copied so that this
    # migration keeps working whatever the application code becomes.
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite hands back text
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def upgrade():
    # Plain ADD COLUMN: SQLite needs no rebuild of ``rooms`` (which would drop
    # and re-create it under foreign keys).
    op.add_column('rooms', sa.Column('last_position', sa.BigInteger(), server_default='0',
                                     nullable=False))
    op.add_column('rooms', sa.Column('floor_position', sa.BigInteger(), server_default='0',
                                     nullable=False))

    op.create_table('room_changes',
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('room_id', 'position')
    )
    op.create_index('ix_room_changes_message_id', 'room_changes', ['message_id'], unique=False)

    _backfill(op.get_bind())


def _backfill(bind):
    rooms = sa.table('rooms', sa.column('id'), sa.column('slug'), sa.column('last_position'))
    messages = sa.table('messages', sa.column('id'), sa.column('room_id'), sa.column('user_id'),
                        sa.column('client_id'), sa.column('body'), sa.column('created_at'),
                        sa.column('edited_at'), sa.column('deleted'))
    users = sa.table('users', sa.column('id'), sa.column('username'))
    changes = sa.table('room_changes', sa.column('room_id'), sa.column('position'),
                       sa.column('event'), sa.column('payload'), sa.column('message_id'),
                       sa.column('created_at'))
    for room_id, slug in bind.execute(sa.select(rooms.c.id, rooms.c.slug)).all():
        position, after = 0, 0
        while True:
            rows = bind.execute(
                sa.select(messages, users.c.username)
                .join(users, users.c.id == messages.c.user_id)
                .where(messages.c.room_id == room_id, messages.c.deleted.is_(False),
                       messages.c.id > after)
                .order_by(messages.c.id).limit(_BATCH)).all()
            if not rows:
                break
            batch = []
            for row in rows:
                position += 1
                created_at = row.created_at
                payload = {"id": row.id, "room": slug,
                           "user": {"id": row.user_id, "username": row.username},
                           "body": row.body, "created_at": _isoformat(created_at),
                           "edited_at": _isoformat(row.edited_at), "client_id": row.client_id,
                           "cursor": position}
                batch.append({"room_id": room_id, "position": position, "event": "message",
                              "payload": json.dumps(payload, separators=(",", ":"),
                                                    ensure_ascii=False),
                              "message_id": row.id,
                              "created_at": datetime.now(timezone.utc)})
            bind.execute(changes.insert(), batch)
            after = rows[-1].id
        if position:
            bind.execute(rooms.update().where(rooms.c.id == room_id)
                         .values(last_position=position))


def downgrade():
    op.drop_index('ix_room_changes_message_id', table_name='room_changes')
    op.drop_table('room_changes')
    # DROP COLUMN in place (SQLite 3.35 and later), again without a rebuild.
    op.drop_column('rooms', 'floor_position')
    op.drop_column('rooms', 'last_position')
