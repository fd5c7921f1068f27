"""Subscription rules: a member or a team told about matching incidents without being paged by them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


def new_version() -> str:
    return uuid.uuid4().hex


class SubscriptionRule(SQLModel, table=True):
    """Incidents of `channel_ids` (none: every channel) matching `filters` notify the member or the team's
    members over `media` (none: each member's preferences) on the incident `events` named.

    The subscriber's row going away (a member or team deleted) takes its rules with it."""

    __tablename__ = "subscription_rule"
    __table_args__ = (sa.CheckConstraint("(member_id IS NULL) != (team_id IS NULL)",
                                         name="ck_subscription_rule_one_subscriber"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=500)
    member_id: int | None = Field(default=None, sa_column=sa.Column(
        sa.Integer, sa.ForeignKey("member.id", ondelete="CASCADE"), index=True, nullable=True))
    team_id: int | None = Field(default=None, sa_column=sa.Column(
        sa.Integer, sa.ForeignKey("team.id", ondelete="CASCADE"), index=True, nullable=True))
    channel_ids: list[int] = json_col([])
    filters: list[Any] = json_col([])
    events: list[str] = json_col([])
    media: list[str] = json_col([])
    status: str = Field(default="enabled", max_length=16)
    # Changes with every edit: the incident fan-out compiles a rule once per version.
    version: str = Field(default_factory=new_version, max_length=32)
    created_by: int | None = None
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()
