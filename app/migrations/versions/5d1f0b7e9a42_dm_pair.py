"""direct messages record their pair of users

Revision ID: 5d1f0b7e9a42
Revises: c8e28f41a1aa
Create Date: 2026-12-03 13:10:00

Until now ``dm:open`` found a DM by its slug ``dm-<low id>-<high id>`` and
adopted any room at that address, including one a third user had made with
``room:create`` (issue 12: the DM could be captured). From here on a DM is
found by its pair (``dm_low_id``, ``dm_high_id``), which only the server sets.

The backfill records the pair for the genuine DMs only: rooms the server
made as DMs (``is_dm``), at ``dm-<low>-<high>``, whose members are among those
two users (one side may have left: ``dm:open`` brings them back). Any other
room in the DM address space gets no pair, so ``dm:open`` never uses it again;
the pair's next ``dm:open`` makes a new, genuine DM. Such rooms are logged
here and at every start, and listed by ``flask --app wsgi check-rooms``
(docs/hardening.md says what to do with them).
"""
import logging
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d1f0b7e9a42'
down_revision = 'c8e28f41a1aa'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

LEGACY_DM_SLUG = re.compile(r"dm-(\d+)-(\d+)")

rooms = sa.table("rooms", sa.column("id", sa.Integer), sa.column("slug", sa.String),
                 sa.column("is_dm", sa.Boolean), sa.column("dm_low_id", sa.Integer),
                 sa.column("dm_high_id", sa.Integer))
memberships = sa.table("memberships", sa.column("room_id", sa.Integer),
                       sa.column("user_id", sa.Integer))


def upgrade():
    # Plain ADD COLUMN and CREATE INDEX: SQLite needs no table rebuild (a
    # rebuild would drop and re-create ``rooms`` under foreign keys).
    op.add_column('rooms', sa.Column('dm_low_id', sa.Integer(), nullable=True))
    op.add_column('rooms', sa.Column('dm_high_id', sa.Integer(), nullable=True))
    op.create_index('uq_rooms_dm_pair', 'rooms', ['dm_low_id', 'dm_high_id'], unique=True)

    connection = op.get_bind()
    suspicious = []
    for room_id, slug, is_dm in connection.execute(
            sa.select(rooms.c.id, rooms.c.slug, rooms.c.is_dm)
            .where(rooms.c.slug.like("dm-%") | rooms.c.is_dm.is_(True))).all():
        match = LEGACY_DM_SLUG.fullmatch(slug)
        if not is_dm or match is None:
            suspicious.append(slug)
            continue
        low, high = int(match[1]), int(match[2])
        members = {user_id for (user_id,) in connection.execute(
            sa.select(memberships.c.user_id).where(memberships.c.room_id == room_id))}
        if low >= high or not members <= {low, high}:
            suspicious.append(slug)
            continue
        connection.execute(sa.update(rooms).where(rooms.c.id == room_id)
                           .values(dm_low_id=low, dm_high_id=high))
    if suspicious:
        log.warning("rooms that look like direct messages but are not genuine (no longer "
                    "used as DMs; review them: docs/hardening.md, `flask --app wsgi "
                    "check-rooms`): %s", ", ".join(suspicious))


def downgrade():
    op.drop_index('uq_rooms_dm_pair', table_name='rooms')
    # DROP COLUMN in place (SQLite 3.35 and later), again without a rebuild.
    op.drop_column('rooms', 'dm_high_id')
    op.drop_column('rooms', 'dm_low_id')
