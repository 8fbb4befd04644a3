"""replies and reactions

A message may answer another of its room (``messages.reply_to_id``), and
carries emoji reactions (``message_reactions``: one row per message, user and
emoji). Existing messages answer nothing and have no reactions.

Revision ID: 7c3a9e1f4b20
Revises: 6a3c9e1f4b20
Create Date: 2026-12-04 18:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c3a9e1f4b20'
down_revision = '6a3c9e1f4b20'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    # A plain ADD COLUMN and CREATE INDEX: SQLite needs no rebuild of
    # ``messages`` (whose rows and AUTOINCREMENT counter stay as they are).
    op.add_column('messages', sa.Column('reply_to_id', BigId, nullable=True))
    op.create_index('ix_messages_reply_to_id', 'messages', ['reply_to_id'], unique=False)
    op.create_table('message_reactions',
    sa.Column('message_id', BigId, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('emoji', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', 'user_id', 'emoji')
    )
    op.create_index('ix_message_reactions_user_id', 'message_reactions', ['user_id'],
                    unique=False)


def downgrade():
    op.drop_index('ix_message_reactions_user_id', table_name='message_reactions')
    op.drop_table('message_reactions')
    op.drop_index('ix_messages_reply_to_id', table_name='messages')
    # DROP COLUMN in place (SQLite 3.35 and later), again without a rebuild.
    op.drop_column('messages', 'reply_to_id')
