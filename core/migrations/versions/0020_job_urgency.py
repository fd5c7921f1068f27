"""job urgency: in a storm, first pages go out by severity, then arrival

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 22:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job') as batch:
        batch.add_column(sa.Column('urgency', sa.SmallInteger(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('job') as batch:
        batch.drop_column('urgency')
