"""The durable job table (DESIGN rule 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


class Job(SQLModel, table=True):
    """Durable unit of work. Runners only trigger it; the row is the truth (DESIGN rule 4)."""

    # Finished rows pile up by the million; the sweeper and the runners look only at open ones.
    __table_args__ = (
        Index("ix_job_open_due", "due_at", sqlite_where=text("state IN ('pending', 'running')"),
              postgresql_where=text("state IN ('pending', 'running')")),
    )

    id: str = Field(primary_key=True, max_length=128)
    name: str = Field(max_length=64)
    args: dict[str, Any] = json_col({})
    state: str = Field(default="pending", max_length=16)
    due_at: datetime | None = time_col(index=True)
    locked_until: datetime | None = time_col()
    attempts: int = 0
    # Lower runs first when work piles up: the severity of the incident the job serves (core.types.urgency_of),
    # so in a storm Critical pages go out before Info ones. Jobs that serve no incident sit in the middle.
    urgency: int = Field(default=1, sa_type=sa.SmallInteger, sa_column_kwargs={"server_default": "1"})
    last_error: str = Field(default="", max_length=2000)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()
