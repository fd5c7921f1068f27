"""on-call roles in schedules; schedule enable/disable; shift notices

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:30:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oncall_role',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('shift_notice_setting',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('lead_minutes', sa.Integer(), nullable=False),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id')
    )
    op.create_table('shift_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('role_id', sa.Integer(), nullable=True),
    sa.Column('medium', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('tried', sa.JSON(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('provider_message_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('created_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedule.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('member_id', 'schedule_id', 'kind', 'at', name='uq_shift_notice_once')
    )
    op.create_index(op.f('ix_shift_notice_schedule_id'), 'shift_notice', ['schedule_id'], unique=False)
    with op.batch_alter_table('schedule') as batch:
        batch.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16),
                                   server_default='enabled', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('schedule') as batch:
        batch.drop_column('status')
    op.drop_index(op.f('ix_shift_notice_schedule_id'), table_name='shift_notice')
    op.drop_table('shift_notice')
    op.drop_table('shift_notice_setting')
    op.drop_table('oncall_role')
