"""personal center: contact verification codes, calendar feed secrets

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:15:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
