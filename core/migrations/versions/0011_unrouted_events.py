"""unrouted events and e-mail integrations: what a shared integration could not route, mail addresses

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:15:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
