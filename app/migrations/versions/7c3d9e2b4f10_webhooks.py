"""outgoing webhooks

``webhooks`` (one registered URL, its filter and encrypted secret),
``webhook_rooms`` (the rooms it names) and ``webhook_deliveries`` (the
outbox: one row per change and webhook, written in the change's
transaction). New tables only: nothing existing is rewritten.

Revision ID: 7c3d9e2b4f10
Revises: 6a2c4e8b1d07
Create Date: 2026-12-04 18:45:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c3d9e2b4f10'
down_revision = '6a2c4e8b1d07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=500), nullable=False),
    sa.Column('all_rooms', sa.Boolean(), nullable=False),
    sa.Column('events', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_in_a_row', sa.Integer(), server_default='0', nullable=False),
    sa.Column('disabled_reason', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('webhook_rooms',
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('webhook_id', 'room_id')
    )
    op.create_index('ix_webhook_rooms_room_id', 'webhook_rooms', ['room_id'], unique=False)
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('webhook_id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('give_up_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=120), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('response_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_webhook_deliveries_status_due', 'webhook_deliveries',
                    ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_webhook_deliveries_queue', 'webhook_deliveries',
                    ['room_id', 'webhook_id', 'position'], unique=False)
    op.create_index('ix_webhook_deliveries_recent', 'webhook_deliveries',
                    ['webhook_id', 'created_at'], unique=False)
    op.create_index('ix_webhook_deliveries_finished_at', 'webhook_deliveries',
                    ['finished_at'], unique=False)


def downgrade():
    op.drop_index('ix_webhook_deliveries_finished_at', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_recent', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_queue', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_status_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_webhook_rooms_room_id', table_name='webhook_rooms')
    op.drop_table('webhook_rooms')
    op.drop_table('webhooks')
