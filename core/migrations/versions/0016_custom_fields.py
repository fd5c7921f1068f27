"""custom fields on incidents, defined per account

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 21:30:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('custom_field',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('default_value', sa.JSON(), nullable=True),
    sa.Column('created_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    # Existing incidents have no values set: an empty object, which the models write for new ones.
    with op.batch_alter_table('incident') as batch:
        batch.add_column(sa.Column('fields', sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table('incident') as batch:
        batch.drop_column('fields')
    op.drop_table('custom_field')
