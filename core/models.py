"""SQLModel tables: the persistent state of Vigil.

Times are stored as timezone-aware UTC (`UTCDateTime`), so SQLite and PostgreSQL
behave the same. Free-form structures (labels, grouping rules, responders) are JSON
columns: they are read and written whole, never queried inside.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """DateTime that always comes back timezone-aware in UTC (SQLite drops the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; pass an aware datetime")
        value = value.astimezone(UTC)
        # SQLite stores text: drop the zone so comparisons in SQL stay lexicographic-correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json(default: Any = None) -> Any:
    factory = (lambda: type(default)()) if default is not None else None
    if factory is None:
        return Field(default=None, sa_column=sa.Column(sa.JSON, nullable=True))
    return Field(default_factory=factory, sa_column=sa.Column(sa.JSON, nullable=False))


def _time(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


class Member(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=254, index=True)
    phone: str | None = Field(default=None, max_length=32)
    role: str = Field(default="responder", max_length=16)
    time_zone: str = Field(default="UTC", max_length=64)
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=500)
    member_ids: list[int] = _json([])
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()


class ApiToken(SQLModel, table=True):
    """An Open API bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    role: str = Field(default="admin", max_length=16)
    created_at: datetime | None = _time()


class Channel(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=500)
    team_ids: list[int] = _json([])
    grouping: dict[str, Any] = _json({})
    auto_close: bool = True
    auto_resolve_timeout: int = 0
    status: str = Field(default="enabled", max_length=16)
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()
    last_incident_at: datetime | None = _time()


class Integration(SQLModel, table=True):
    """Where alerts enter: dedicated (channel_id set) or shared (routing decides the channel)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    type: str = Field(max_length=32)
    channel_id: int | None = Field(default=None, foreign_key="channel.id", index=True)
    key_hash: str = Field(max_length=64, unique=True)
    key: str = Field(max_length=64)
    routing: dict[str, Any] = _json({})
    status: str = Field(default="enabled", max_length=16)
    last_event_at: datetime | None = _time()
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()


class Incident(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    num: str = Field(default="", max_length=16)
    channel_id: int = Field(foreign_key="channel.id", index=True)
    title: str = Field(max_length=512)
    description: str = Field(default="", max_length=6144)
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16)  # Flashduty incident_status: severity, or Ok once all alerts recovered
    progress: str = Field(default="Triggered", max_length=16, index=True)
    labels: dict[str, str] = _json({})
    dedup_key: str = Field(default="", max_length=255)
    group_key: str = Field(default="", max_length=64, index=True)
    group_method: str = Field(default="n", max_length=2)
    alert_cnt: int = 0
    active_alert_cnt: int = 0
    alert_event_cnt: int = 0
    responders: list[dict[str, Any]] = _json([])
    assigned_to: dict[str, Any] | None = _json()
    creator_id: int | None = None
    closer_id: int | None = None
    merged_into_id: int | None = Field(default=None, index=True)
    start_time: datetime | None = _time(index=True)
    last_time: datetime | None = _time()
    end_time: datetime | None = _time()
    ack_time: datetime | None = _time()
    close_time: datetime | None = _time()
    snoozed_until: datetime | None = _time()
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()


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
    labels: dict[str, str] = _json({})
    images: list[dict[str, str]] = _json([])
    event_cnt: int = 0
    start_time: datetime | None = _time()
    last_time: datetime | None = _time()
    end_time: datetime | None = _time()
    close_time: datetime | None = _time()
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()


class StoredEvent(SQLModel, table=True):
    """Every accepted alert event, as received (after normalisation)."""

    __tablename__ = "alert_event"
    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    integration_id: int = Field(foreign_key="integration.id")
    event_status: str = Field(max_length=16)
    title: str = Field(max_length=512)
    description: str = Field(default="", max_length=2048)
    labels: dict[str, str] = _json({})
    event_time: datetime | None = _time()
    received_at: datetime | None = _time()


class TimelineEntry(SQLModel, table=True):
    """One line of an incident's history; `kind` is a Flashduty event name such as i_ack."""

    __tablename__ = "timeline_entry"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime | None = _time()
    kind: str = Field(max_length=32)
    actor_id: int | None = None
    source: str = Field(default="system", max_length=16)
    detail: dict[str, Any] = _json({})


class Job(SQLModel, table=True):
    """Durable unit of work. Runners only trigger it; the row is the truth (DESIGN rule 4)."""

    id: str = Field(primary_key=True, max_length=128)
    name: str = Field(max_length=64)
    args: dict[str, Any] = _json({})
    state: str = Field(default="pending", max_length=16)
    due_at: datetime | None = _time(index=True)
    locked_until: datetime | None = _time()
    attempts: int = 0
    last_error: str = Field(default="", max_length=2000)
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()


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
    labels: dict[str, str] = _json({})
    event_time: datetime | None = _time()
    received_at: datetime | None = _time()
