"""indexes for the incident list pages at 100k incidents

"Mine" on /incidents reads the incidents that paged a member (delivery) or that they acted on (timeline
entries with an actor). Without these indexes each request scanned both tables: bench/web_pages.py with
100k incidents measured 55 ms p50 / 124 ms p99 on SQLite and 84 / 172 ms on PostgreSQL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 00:15:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

HAS_MEMBER = sa.text("member_id IS NOT NULL")
HAS_ACTOR = sa.text("actor_id IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_delivery_member_incident', 'delivery', ['member_id', 'incident_id'], unique=False,
                    sqlite_where=HAS_MEMBER, postgresql_where=HAS_MEMBER)
    op.create_index('ix_timeline_entry_actor_incident', 'timeline_entry', ['actor_id', 'incident_id'],
                    unique=False, sqlite_where=HAS_ACTOR, postgresql_where=HAS_ACTOR)


def downgrade() -> None:
    op.drop_index('ix_timeline_entry_actor_incident', table_name='timeline_entry')
    op.drop_index('ix_delivery_member_incident', table_name='delivery')
