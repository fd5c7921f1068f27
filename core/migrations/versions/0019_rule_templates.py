"""templates per channel and per escalation rule

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 21:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

# 0001 made the (medium, event_type) key without a name: PostgreSQL named it, SQLite did not. Batch mode
# on SQLite names unnamed constraints by this convention when it reflects the table, so it can drop it.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
_OLD_KEY = {"sqlite": "uq_template_medium_event_type", "postgresql": "template_medium_event_type_key"}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('template', naming_convention=_SQLITE_NAMES) as batch:
        batch.add_column(sa.Column('channel_id', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('escalation_rule_id', sa.Integer(), nullable=False, server_default='0'))
        batch.drop_constraint(_OLD_KEY[dialect], type_='unique')
        batch.create_unique_constraint('uq_template_scope', ['medium', 'event_type', 'channel_id',
                                                             'escalation_rule_id'])


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DELETE FROM template WHERE channel_id <> 0 OR escalation_rule_id <> 0")
    with op.batch_alter_table('template') as batch:
        batch.drop_constraint('uq_template_scope', type_='unique')
        batch.create_unique_constraint(_OLD_KEY[dialect] if dialect == 'postgresql' else None,
                                       ['medium', 'event_type'])
        batch.drop_column('escalation_rule_id')
        batch.drop_column('channel_id')
