"""invites: single-use sign-up codes (REGISTRATION_OPEN=invite)

Revision ID: 5b1e7c2d9a40
Revises: 5b1d7e3a9c42
Create Date: 2026-12-03 13:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '5b1e7c2d9a40'
down_revision = '5b1d7e3a9c42'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invites',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['used_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('code_hash')
    )


def downgrade():
    op.drop_table('invites')
