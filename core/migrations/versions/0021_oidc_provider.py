"""single sign-on provider configured by API

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 23:25:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sso_provider',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('client_secret', sa.Text(), nullable=False),
    sa.Column('scopes', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('auto_provision', sa.Boolean(), nullable=False),
    sa.Column('default_role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('id = 1', name='ck_sso_provider_one_row'),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('sso_provider')
