"""interactive app cards in group chats: a delivery may be a card posted into a group chat of an IM app

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 21:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No foreign key, like delivery.bot_id: removing an IM app keeps the record of what was posted.
    with op.batch_alter_table('delivery') as batch:
        batch.add_column(sa.Column('im_app_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('im_app_id')
