"""callback replay cache: each platform callback's unique id, kept for its time window

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:30:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('seen_callback',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('expires_at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('seen_callback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seen_callback_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('seen_callback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_seen_callback_expires_at'))

    op.drop_table('seen_callback')
