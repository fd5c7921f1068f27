"""web sign-in: password hashes, TOTP, web sessions, OIDC identities

Web sessions live in encrypted cookies and need no table; OIDC identities come with single sign-on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:50:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('member_login',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('totp_sealed', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.Column('totp_last_step', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('password_set_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id')
    )
    op.create_table('sign_in_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('at', core.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sign_in_failure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_failure_at'), ['at'], unique=False)
        batch_op.create_index('ix_sign_in_failure_key_at', ['key', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sign_in_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_in_failure_key_at')
        batch_op.drop_index(batch_op.f('ix_sign_in_failure_at'))

    op.drop_table('sign_in_failure')
    op.drop_table('member_login')
