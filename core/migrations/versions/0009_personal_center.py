"""personal center: contact verification codes, calendar feed secrets

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:15:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contact_verification',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('verified_value', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('verified_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pending_value', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('code_expires_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('window_start', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sends', sa.Integer(), nullable=False),
    sa.Column('last_sent_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id', 'kind')
    )
    op.create_table('calendar_feed',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('created_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id')
    )


def downgrade() -> None:
    op.drop_table('calendar_feed')
    op.drop_table('contact_verification')
