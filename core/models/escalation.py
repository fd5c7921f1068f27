"""Escalation rules, on-call schedules, notification templates and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


class EscalationRule(SQLModel, table=True):
    """Who is paged for a channel's incidents, level by level (validated by core.escalation)."""

    __tablename__ = "escalation_rule"
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    name: str = Field(max_length=100)
    priority: int = 0
    status: str = Field(default="enabled", max_length=16)
    definition: dict[str, Any] = json_col({})
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class Schedule(SQLModel, table=True):
    """An on-call schedule; `definition` is the validated core.schedules.Schedule as JSON."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=500)
    team_id: int | None = Field(default=None, foreign_key="team.id")
    definition: dict[str, Any] = json_col({})
    # A disabled schedule has nobody on call: levels targeting it page nobody through it (core/paging.py).
    status: str = Field(default="enabled", max_length=16, sa_column_kwargs={"server_default": "enabled"})
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class Template(SQLModel, table=True):
    """An override of a shipped notification template, per medium and event type, for every incident or for
    one channel's or one escalation rule's (core.templates.scope_order). 0 in a scope column means "any":
    NULL would make the unique key let two overrides of one scope through."""

    __table_args__ = (sa.UniqueConstraint("medium", "event_type", "channel_id", "escalation_rule_id",
                                          name="uq_template_scope"),)
    id: int | None = Field(default=None, primary_key=True)
    medium: str = Field(max_length=32)
    event_type: str = Field(max_length=32)
    channel_id: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    escalation_rule_id: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class Delivery(SQLModel, table=True):
    """One notification to one target over one medium; retried, then handed to the fallback chain.

    `dedup_key` makes creation idempotent, so a re-run escalation step never pages twice.
    """

    # The incident list's "mine" reads the incidents that paged a member; without it every request scans all
    # deliveries (bench/web_pages.py, 100k incidents: 50 ms of 55 on SQLite). Bot deliveries have no member.
    __table_args__ = (sa.Index("ix_delivery_member_incident", "member_id", "incident_id",
                               sqlite_where=sa.text("member_id IS NOT NULL"),
                               postgresql_where=sa.text("member_id IS NOT NULL")),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=200, unique=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    bot_id: int | None = None
    # A card posted into a group chat of this IM app (medium im_chat; the chat id is the address).
    im_app_id: int | None = None
    medium: str = Field(max_length=32)
    address: str = Field(default="", max_length=320)
    event_type: str = Field(default="i_new", max_length=32)
    level: int = 0
    loop: int = 0
    state: str = Field(default="pending", max_length=16, index=True)  # pending | sent | failed | canceled
    attempts: int = 0
    next_attempt_at: datetime | None = time_col()
    provider: str = Field(default="", max_length=64)
    provider_message_id: str = Field(default="", max_length=200)
    last_error: str = Field(default="", max_length=2000)
    fallback_from_id: int | None = None
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()
