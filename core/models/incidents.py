"""Channels, integrations, alerts, incidents and their timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


class Channel(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=500)
    team_ids: list[int] = json_col([])
    # Only admins and members of `team_ids` may act on the channel's incidents (core.incidents).
    team_scoped: bool = False
    grouping: dict[str, Any] = json_col({})
    auto_close: bool = True
    auto_resolve_timeout: int = 0
    flapping: dict[str, Any] = json_col({})  # core.noise.Flapping
    storm_thresholds: list[int] = json_col([])
    status: str = Field(default="enabled", max_length=16)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()
    last_incident_at: datetime | None = time_col()
    # Changes whenever a drop, silence or inhibit rule of the channel does (core/models/noise.py), so
    # every process may cache the channel's rules under (id, rules_token) and still never miss an edit.
    rules_token: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=32)


class Integration(SQLModel, table=True):
    """Where alerts enter: dedicated (channel_id set) or shared (routing decides the channel)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    type: str = Field(max_length=32)
    channel_id: int | None = Field(default=None, foreign_key="channel.id", index=True)
    # Only the SHA-256 of the key is kept: the key is shown once (at creation or rotation) and looked up by
    # its hash, so a database dump cannot be replayed against the Event API.
    key_hash: str = Field(max_length=64, unique=True)
    routing: dict[str, Any] = json_col({})
    status: str = Field(default="enabled", max_length=16)
    last_event_at: datetime | None = time_col()
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class Incident(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    num: str = Field(default="", max_length=16)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    title: str = Field(max_length=512)
    description: str = Field(default="", max_length=6144)
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16)  # Flashduty incident_status: severity, or Ok once all alerts recovered
    progress: str = Field(default="Triggered", max_length=16, index=True)
    labels: dict[str, str] = json_col({})
    # Custom field values set on the incident, by field name (core/custom_fields.py); unset ones show defaults.
    fields: dict[str, Any] = json_col({})
    dedup_key: str = Field(default="", max_length=255)
    group_key: str = Field(default="", max_length=64, index=True)
    group_method: str = Field(default="n", max_length=2)
    alert_cnt: int = 0
    active_alert_cnt: int = 0
    alert_event_cnt: int = 0
    responders: list[dict[str, Any]] = json_col([])
    assigned_to: dict[str, Any] | None = json_col()
    creator_id: int | None = None
    closer_id: int | None = None
    merged_into_id: int | None = Field(default=None, index=True)
    ever_muted: bool = False
    storm_level: int = 0  # the highest storm threshold the alert count has crossed
    start_time: datetime | None = time_col(index=True)
    last_time: datetime | None = time_col()
    end_time: datetime | None = time_col()
    ack_time: datetime | None = time_col()
    close_time: datetime | None = time_col()
    snoozed_until: datetime | None = time_col()
    # Escalation state: the rule frozen at start (snapshot), where it is, and when it moves next.
    escalation_rule_id: int | None = None
    escalation_snapshot: dict[str, Any] | None = json_col()
    escalation_level: int = 0
    escalation_loop: int = 0
    escalation_state: str = Field(default="none", max_length=16)  # none | running | stopped | done
    escalation_due_at: datetime | None = time_col()
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class Alert(SQLModel, table=True):
    __table_args__ = (sa.Index("ix_alert_channel_key_progress", "channel_id", "alert_key", "progress"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channel.id")
    integration_id: int = Field(foreign_key="integration.id")
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    alert_key: str = Field(max_length=255)
    title: str = Field(max_length=512)
    title_rule: str = Field(default="", max_length=512)
    description: str = Field(default="", max_length=2048)
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16)
    progress: str = Field(default="Triggered", max_length=16)
    muted_by: str = Field(default="", max_length=32)  # "silence:3", "inhibit:2", "flapping": stored, not paged
    labels: dict[str, str] = json_col({})
    images: list[dict[str, str]] = json_col([])
    event_cnt: int = 0
    start_time: datetime | None = time_col()
    last_time: datetime | None = time_col()
    end_time: datetime | None = time_col()
    close_time: datetime | None = time_col()
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class StoredEvent(SQLModel, table=True):
    """Every accepted alert event, as received (after normalisation)."""

    __tablename__ = "alert_event"
    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    integration_id: int = Field(foreign_key="integration.id")
    event_status: str = Field(max_length=16)
    title: str = Field(max_length=512)
    description: str = Field(default="", max_length=2048)
    labels: dict[str, str] = json_col({})
    event_time: datetime | None = time_col()
    received_at: datetime | None = time_col()


class TimelineEntry(SQLModel, table=True):
    """One line of an incident's history; `kind` is a Flashduty event name such as i_ack."""

    __tablename__ = "timeline_entry"
    # The incident list's "mine" also reads the incidents a member acted on (bench/web_pages.py). Only entries
    # with an actor are indexed: ingest's system entries (i_new, deliveries) pay nothing for it.
    __table_args__ = (sa.Index("ix_timeline_entry_actor_incident", "actor_id", "incident_id",
                               sqlite_where=sa.text("actor_id IS NOT NULL"),
                               postgresql_where=sa.text("actor_id IS NOT NULL")),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime | None = time_col()
    kind: str = Field(max_length=32)
    actor_id: int | None = None
    source: str = Field(default="system", max_length=16)
    detail: dict[str, Any] = json_col({})


class ChangeRecord(SQLModel, table=True):
    """A change event (deploy, config change) pushed through /event/push/change/standard."""

    __tablename__ = "change_event"
    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = Field(foreign_key="integration.id", index=True)
    change_key: str = Field(max_length=255, index=True)
    change_status: str = Field(max_length=16)
    title: str = Field(max_length=512)
    description: str = Field(default="", max_length=2048)
    link: str = Field(default="", max_length=1024)
    labels: dict[str, str] = json_col({})
    event_time: datetime | None = time_col()
    received_at: datetime | None = time_col()
