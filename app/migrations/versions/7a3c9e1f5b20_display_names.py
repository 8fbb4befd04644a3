"""users may set a display name

Revision ID: 7a3c9e1f5b20
Revises: 5b7e0c1d2a3f
Create Date: 2026-12-04 18:40:00

A nullable column: every existing user keeps showing their username until
they choose a name. Plain ADD COLUMN (no table rebuild on SQLite).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a3c9e1f5b20'
down_revision = '5b7e0c1d2a3f'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('users', sa.Column('display_name', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('display_name')
