"""subscription rules: members and teams notified of matching incidents

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 00:45:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subscription_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('channel_ids', sa.JSON(), nullable=False),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('media', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('(member_id IS NULL) != (team_id IS NULL)', name='ck_subscription_rule_one_subscriber'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['team.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_subscription_rule_member_id'), 'subscription_rule', ['member_id'], unique=False)
    op.create_index(op.f('ix_subscription_rule_team_id'), 'subscription_rule', ['team_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_subscription_rule_team_id'), table_name='subscription_rule')
    op.drop_index(op.f('ix_subscription_rule_member_id'), table_name='subscription_rule')
    op.drop_table('subscription_rule')
