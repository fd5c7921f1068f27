"""channel rules token: lets every process cache a channel's noise rules until they change

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:50:00
"""
import uuid

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rules_token', sa.String(length=32), nullable=False, server_default=''))
    # Each channel gets its own token, as new channels do: equal tokens would let a cache keyed by
    # (channel id, token) mistake one database's channel for another's.
    conn = op.get_bind()
    channel = sa.table('channel', sa.column('id', sa.Integer), sa.column('rules_token', sa.String))
    for (cid,) in conn.execute(sa.select(channel.c.id)).all():
        conn.execute(sa.update(channel).where(channel.c.id == cid).values(rules_token=uuid.uuid4().hex))


def downgrade() -> None:
    with op.batch_alter_table('channel', schema=None) as batch_op:
        batch_op.drop_column('rules_token')
