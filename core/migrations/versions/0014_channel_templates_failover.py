"""templates per channel and escalation rule; ordered providers per medium; Feishu bot keyword

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 00:45:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bot') as batch:
        batch.add_column(sa.Column('keyword', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False,
                                   server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('bot') as batch:
        batch.drop_column('keyword')
