"""least privilege: integration keys kept as hashes only, team scoping of channels

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 23:30:00
"""
import hashlib

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD/DROP COLUMN, not batch mode: on SQLite, batch mode copies the table and drops the
# original, which foreign keys from existing alerts and incidents refuse (SQLite has DROP COLUMN since 3.35).
# The defaults are literals for the same reason: an expression default makes Alembic copy the table.


def upgrade() -> None:
    op.add_column('channel', sa.Column('team_scoped', sa.Boolean(), nullable=False, server_default='0'))
    # Every existing key is hashed again from its plaintext before the plaintext goes, so a row whose hash
    # had drifted from its key keeps accepting the key its senders were given.
    conn = op.get_bind()
    integration = sa.table('integration', sa.column('id', sa.Integer), sa.column('key', sa.String),
                           sa.column('key_hash', sa.String))
    for iid, key in conn.execute(sa.select(integration.c.id, integration.c.key)).all():
        conn.execute(sa.update(integration).where(integration.c.id == iid)
                     .values(key_hash=hashlib.sha256(key.encode()).hexdigest()))
    op.drop_column('integration', 'key')


def downgrade() -> None:
    # The plaintext keys are gone for good: after a downgrade every integration needs a new key.
    op.add_column('integration', sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False,
                                           server_default=''))
    op.drop_column('channel', 'team_scoped')
