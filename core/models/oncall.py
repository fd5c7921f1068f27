"""On-call roles (primary, secondary...) that schedule layers carry, and shift notices: a member told when
their shift starts and ends (core/shift_notices.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import UTCDateTime, json_col, time_col


def _cascade(table: str, *, primary_key: bool = False, index: bool = False) -> sa.Column:
    return sa.Column(sa.Integer, sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=primary_key,
                     index=index, nullable=False)


class OncallRole(SQLModel, table=True):
    """An account-level on-call role; a schedule layer names one by id (core.schedules.Layer.role_id)."""

    __tablename__ = "oncall_role"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50, unique=True)
    description: str = Field(default="", max_length=500)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class ShiftNoticeSetting(SQLModel, table=True):
    """A member's choice about shift notices; no row means the defaults (on, told at the start itself)."""

    __tablename__ = "shift_notice_setting"
    member_id: int = Field(sa_column=_cascade("member", primary_key=True))
    enabled: bool = True
    lead_minutes: int = 0  # the "starts soon" notice goes this long before the shift starts
    updated_at: datetime | None = time_col()


class ShiftNotice(SQLModel, table=True):
    """One notice to one member that their shift of one schedule starts or ends at `at`. The unique key makes
    the periodic scan idempotent: however often a boundary is seen, it is told once."""

    __tablename__ = "shift_notice"
    __table_args__ = (sa.UniqueConstraint("member_id", "schedule_id", "kind", "at", name="uq_shift_notice_once"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_cascade("member"))
    schedule_id: int = Field(sa_column=_cascade("schedule", index=True))
    kind: str = Field(max_length=8)  # start | end
    at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    role_id: int | None = None  # the member's role in the shift, if the layer has one
    medium: str = Field(max_length=16)  # the medium tried now; fallbacks replace it
    tried: list[str] = json_col([])
    state: str = Field(default="pending", max_length=16)  # pending | sent | failed | canceled
    attempts: int = 0
    provider: str = Field(default="", max_length=64)
    provider_message_id: str = Field(default="", max_length=200)
    last_error: str = Field(default="", max_length=2000)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()
