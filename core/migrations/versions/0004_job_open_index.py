"""job open index: the sweeper and runners read only pending and running rows, not the finished millions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 21:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('pending', 'running')")


def upgrade() -> None:
    op.create_index('ix_job_open_due', 'job', ['due_at'], unique=False, sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade() -> None:
    op.drop_index('ix_job_open_due', table_name='job')
