"""unrouted events and e-mail integrations: what a shared integration could not route, mail addresses

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:15:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unrouted_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('received_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('alert_key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('event_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('unrouted_event', schema=None) as batch_op:
        batch_op.create_index('ix_unrouted_event_integration_id_id', ['integration_id', 'id'], unique=False)

    op.create_table('mail_rules',
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['integration_id'], ['integration.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('integration_id')
    )


def downgrade() -> None:
    op.drop_table('mail_rules')
    with op.batch_alter_table('unrouted_event', schema=None) as batch_op:
        batch_op.drop_index('ix_unrouted_event_integration_id_id')

    op.drop_table('unrouted_event')
