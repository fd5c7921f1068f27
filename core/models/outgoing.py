"""Outgoing incident/alert webhooks and custom actions (Flashduty reference section 4)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


class Webhook(SQLModel, table=True):
    """POSTs incident (or alert) events to `url`, filtered by channel and event type."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    kind: str = Field(default="incident", max_length=16)  # incident | alert
    url: str = Field(max_length=2048)
    channel_ids: list[int] = json_col([])  # empty: every channel
    event_types: list[str] = json_col([])  # empty: every event type
    headers: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))  # sealed
    status: str = Field(default="enabled", max_length=16)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class CustomAction(SQLModel, table=True):
    """A button on an incident that POSTs the incident to `url` (1 s timeout) and records the outcome."""

    __tablename__ = "custom_action"
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    name: str = Field(max_length=100)
    url: str = Field(max_length=2048)
    headers: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))  # sealed
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()

