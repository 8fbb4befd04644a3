"""mentions and per-room notification levels

``message_mentions`` holds who a message mentions by name (``@alice``);
``messages.mentions_room`` marks an ``@room`` mention of every member;
``memberships.notify`` is a member's notification level for the room
(``all``, ``mentions``, ``none``; null: the default for the kind of room).
Existing messages mention no one: nothing is backfilled, and no row is
rewritten (plain ADD COLUMN with a constant default, on SQLite and
PostgreSQL alike).

Revision ID: 6a2c4e8b1d07
Revises: 7c3a9e1f4b20
Create Date: 2026-12-04 18:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '6a2c4e8b1d07'
down_revision = '7c3a9e1f4b20'
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.add_column('messages', sa.Column('mentions_room', sa.Boolean(),
                                        server_default=sa.false(), nullable=False))
    op.add_column('memberships', sa.Column('notify', sa.String(length=8), nullable=True))
    op.create_table('message_mentions',
    sa.Column('message_id', _BIG_ID, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', 'user_id')
    )
    op.create_index('ix_message_mentions_user_id', 'message_mentions', ['user_id'], unique=False)


def downgrade():
    op.drop_index('ix_message_mentions_user_id', table_name='message_mentions')
    op.drop_table('message_mentions')
    with op.batch_alter_table('memberships') as batch_op:
        batch_op.drop_column('notify')
    with op.batch_alter_table('messages') as batch_op:
        batch_op.drop_column('mentions_room')
