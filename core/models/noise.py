"""Noise-reduction rules of a channel: drop, silence, inhibit; and per-alert-key flapping state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col
from core.models.incidents import Channel


class DropRule(SQLModel, table=True):
    """Events matching `filters` are discarded before they become alerts (counted, not stored)."""

    __tablename__ = "drop_rule"
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    name: str = Field(max_length=100)
    priority: int = 0
    status: str = Field(default="enabled", max_length=16)
    filters: list[Any] = json_col([])
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class SilenceRule(SQLModel, table=True):
    """New alerts matching `filters` during the window are stored, marked silenced, and page nobody."""

    __tablename__ = "silence_rule"
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    name: str = Field(max_length=100)
    status: str = Field(default="enabled", max_length=16)
    filters: list[Any] = json_col([])
    starts_at: datetime | None = time_col()  # one-off window (both set) ...
    ends_at: datetime | None = time_col()
    time_windows: list[Any] = json_col([])  # ... or recurring windows (core.escalation.TimeWindow)
    from_incident_id: int | None = None
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class InhibitRule(SQLModel, table=True):
    """While an active alert matches `source_filters`, new alerts matching `target_filters` with equal
    values of every `equals` field are suppressed."""

    __tablename__ = "inhibit_rule"
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    name: str = Field(max_length=100)
    status: str = Field(default="enabled", max_length=16)
    source_filters: list[Any] = json_col([])
    target_filters: list[Any] = json_col([])
    equals: list[str] = json_col([])
    window_minutes: int = 10
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class FlapState(SQLModel, table=True):
    """Recent status changes of one alert key in a channel, and until when its paging is muted."""

    __tablename__ = "flap_state"
    __table_args__ = (sa.UniqueConstraint("channel_id", "alert_key"),)
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channel.id")
    alert_key: str = Field(max_length=255)
    changes: list[Any] = json_col([])  # unix seconds of recent changes
    muted_until: datetime | None = time_col()


def _rules_changed(_mapper: Any, connection: sa.Connection, rule: DropRule | SilenceRule | InhibitRule) -> None:
    """Give the rule's channel a new rules_token: every process's cached copy of its rules is now stale."""
    token = uuid.uuid4().hex
    table = Channel.__table__  # type: ignore[attr-defined]
    connection.execute(sa.update(table).where(table.c.id == rule.channel_id).values(rules_token=token))
    session = object_session(rule)  # the same session may go on to ingest: its loaded channel must agree
    channel = session.identity_map.get(identity_key(Channel, rule.channel_id)) if session is not None else None
    if channel is not None:
        set_committed_value(channel, "rules_token", token)


for _model in (DropRule, SilenceRule, InhibitRule):
    for _when in ("after_insert", "after_update", "after_delete"):
        event.listen(_model, _when, _rules_changed)
