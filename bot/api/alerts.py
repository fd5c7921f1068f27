"""/api/v1/alerts and /api/v1/changes: Flashduty's alert list, info, event list, close and merge
(/alert/list, /alert/info, /alert/event/list, /alert/close, /alert/merge) and the change list (/change/list).

Lists are newest first. The alert list pages by key (`search_after_ctx`, as Flashduty's /alert/list): each
page is an index range scan from the last id seen, as fast on the millionth alert as on the first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from bot.api.incidents import (
    ActBody,
    AlertOut,
    IncidentOut,
    actor,
    alert_out,
    incident_view,
    memberless_in_scope,
)
from core import alerts
from core.models import Alert, ChangeRecord, Incident, Integration, StoredEvent
from core.types import EventStatus, Platform, Severity

TAG = "alerts"
API = Platform.API.value
MAX_TIME = 253402300799  # 9999-12-31: later times are no time at all


def _csv(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    for v in (value or "").split(","):
        if value and v not in allowed:
            raise ValueError(f"unknown {what} {v!r}; use {', '.join(allowed)}")
    return value


class _TimeRange(BaseModel):
    start_time: int | None = Field(default=None, ge=0, le=MAX_TIME, description="Unix seconds, inclusive")
    end_time: int | None = Field(default=None, ge=0, le=MAX_TIME, description="Unix seconds, exclusive")

    def window(self, column: Any) -> list[Any]:
        out = []
        if self.start_time is not None:
            out.append(column >= datetime.fromtimestamp(self.start_time, UTC))
        if self.end_time is not None:
            out.append(column < datetime.fromtimestamp(self.end_time, UTC))
        return out


class AlertQuery(_TimeRange):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100)
    search_after_ctx: str | None = Field(default=None, max_length=20, pattern=r"^\d{1,18}$",
                                         description="the previous page's search_after_ctx: the next page")
    channel_id: int | None = Field(default=None, ge=1, le=2**53)
    integration_id: int | None = Field(default=None, ge=1, le=2**53)
    incident_id: int | None = Field(default=None, ge=1, le=2**53)
    progress: str | None = Field(default=None, description="CSV of Triggered, Closed")
    alert_status: str | None = Field(default=None, description="CSV of Critical, Warning, Info, Ok")
    alert_severity: str | None = Field(default=None, description="CSV of Critical, Warning, Info")
    # 500 characters: percent-encoded (up to 12 bytes each), a URL must still fit aiohttp's 8 KB request line.
    labels: str | None = Field(default=None, max_length=500,
                               description="CSV of name=value; an alert must carry every one, e.g. service=db,env=prod")
    # start_time / end_time: when the alert started

    @field_validator("progress")
    @classmethod
    def _progress(cls, v: str | None) -> str | None:
        return _csv(v, ("Triggered", "Closed"), "progress")

    @field_validator("alert_status")
    @classmethod
    def _status(cls, v: str | None) -> str | None:
        return _csv(v, tuple(s.value for s in EventStatus), "alert_status")

    @field_validator("alert_severity")
    @classmethod
    def _severity(cls, v: str | None) -> str | None:
        return _csv(v, tuple(s.value for s in Severity), "alert_severity")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: str | None) -> str | None:
        for pair in (v or "").split(","):
            name, eq, _ = pair.partition("=")
            if v and (not eq or not name.strip()):
                raise ValueError(f"{pair!r} is not name=value")
        return v

    def label_pairs(self) -> list[tuple[str, str]]:
        return [(n.strip(), val) for n, _, val in (p.partition("=") for p in self.labels.split(","))] \
            if self.labels else []


class IncidentRef(BaseModel):
    incident_id: int
    title: str
    progress: str


class AlertDetail(AlertOut):
    title_rule: str
    images: list[dict[str, str]]
    muted_by: str
    close_time: int
    created_at: int
    updated_at: int
    incident: IncidentRef | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    has_next_page: bool
    search_after_ctx: str = Field(description="pass it back for the next page; empty on the last")


def _detail(a: Alert, incident: Incident | None) -> dict[str, Any]:
    return {**alert_out(a), "title_rule": a.title_rule, "images": list(a.images), "muted_by": a.muted_by,
            "close_time": ts(a.close_time), "created_at": ts(a.created_at), "updated_at": ts(a.updated_at),
            "incident": {"incident_id": incident.id, "title": incident.title, "progress": incident.progress}
            if incident is not None else None}


@endpoint("GET", "/alerts", query=AlertQuery, response=AlertPage, tag=TAG,
          summary="List alerts, newest first, by channel, integration, incident, progress, status, severity, "
                  "labels and start time; paged by search_after_ctx")
async def list_alerts(c: Call) -> dict:
    q: AlertQuery = c.query
    stmt = select(Alert).order_by(Alert.id.desc()).limit(q.limit + 1)
    if q.search_after_ctx:
        stmt = stmt.where(Alert.id < int(q.search_after_ctx))
    for column, value in ((Alert.channel_id, q.channel_id), (Alert.integration_id, q.integration_id),
                          (Alert.incident_id, q.incident_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    for column, csv in ((Alert.progress, q.progress), (Alert.status, q.alert_status),
                        (Alert.severity, q.alert_severity)):
        if csv:
            stmt = stmt.where(column.in_(csv.split(",")))
    for name, value in q.label_pairs():
        stmt = stmt.where(Alert.labels[name].as_string() == value)  # type: ignore[index]
    stmt = stmt.where(*q.window(Alert.start_time))
    rows = list((await c.session.execute(stmt)).scalars())
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    return {"items": [alert_out(a) for a in rows], "has_next_page": more,
            "search_after_ctx": str(rows[-1].id) if more else ""}


@endpoint("GET", "/alerts/{id}", response=AlertDetail, tag=TAG, summary="An alert, with its incident")
async def get_alert(c: Call) -> dict:
    a = await get_or_404(c.session, Alert, c.path_int("id"), "alert")
    return _detail(a, await c.session.get(Incident, a.incident_id) if a.incident_id else None)


class AlertEventOut(BaseModel):
    event_id: int
    integration_id: int
    event_status: str
    title: str
    description: str
    labels: dict[str, str]
    event_time: int
    received_at: int


@endpoint("GET", "/alerts/{id}/events", query=Page, response=AlertEventOut, paged=True, tag=TAG,
          summary="The events pushed for an alert, newest first, as received (after labels were enriched)")
async def list_alert_events(c: Call) -> dict:
    a = await get_or_404(c.session, Alert, c.path_int("id"), "alert")
    stmt = select(StoredEvent).where(StoredEvent.alert_id == a.id).order_by(StoredEvent.id.desc())
    return await paged(c.session, stmt, c.query, lambda e: {
        "event_id": e.id, "integration_id": e.integration_id, "event_status": e.event_status, "title": e.title,
        "description": e.description, "labels": dict(e.labels), "event_time": ts(e.event_time),
        "received_at": ts(e.received_at)})


@endpoint("POST", "/alerts/{id}/close", body=ActBody, response=AlertDetail, need="act", tag=TAG,
          summary="Close one alert (its key's next event opens a new alert); an incident left with no open "
                  "alert closes")
async def close_alert(c: Call) -> dict:
    incident_id = await c.session.scalar(select(Alert.incident_id).where(Alert.id == c.path_int("id")))
    if incident_id is not None:
        await memberless_in_scope(c, [incident_id])
    a = await alerts.close_alert(c.session, c.path_int("id"), actor(c), now=c.now, source=API)
    await c.session.commit()
    return _detail(a, await c.session.get(Incident, a.incident_id) if a.incident_id else None)


class MoveBody(ActBody):
    alert_ids: list[int] = Field(min_length=1, max_length=alerts.MOVE_MAX)
    incident_id: int = Field(ge=1, description="the incident the alerts move into (open)")
    comment: str = Field(default="", max_length=1024)


@endpoint("POST", "/alerts/merge", body=MoveBody, response=IncidentOut, need="act", tag=TAG,
          summary="Move alerts into another incident; an incident left with no alert closes as merged into it")
async def merge_alerts(c: Call) -> dict:
    b: MoveBody = c.body
    sources = (await c.session.execute(select(Alert.incident_id).where(
        Alert.id.in_(b.alert_ids), Alert.incident_id.is_not(None)))).scalars().all()
    await memberless_in_scope(c, [i for i in dict.fromkeys([b.incident_id, *sources])
                                  if await c.session.get(Incident, i) is not None])
    incident = await alerts.move_alerts(c.session, b.alert_ids, b.incident_id, actor(c), now=c.now, source=API,
                                        comment=b.comment)
    await c.session.commit()
    return await incident_view(c, incident)


# ---- change events -------------------------------------------------------------------------------


class ChangeQuery(Page, _TimeRange):
    channel_id: int | None = Field(default=None, ge=1, le=2**53, description="changes of its integrations")
    integration_id: int | None = Field(default=None, ge=1, le=2**53)
    change_key: str | None = Field(default=None, max_length=255)
    change_status: str | None = Field(default=None, description="CSV of Planned, Ready, Processing, Canceled, Done")
    # start_time / end_time: the change event's time

    @field_validator("change_status")
    @classmethod
    def _status(cls, v: str | None) -> str | None:
        return _csv(v, ("Planned", "Ready", "Processing", "Canceled", "Done"), "change_status")


class ChangeOut(BaseModel):
    event_id: int
    integration_id: int
    change_key: str
    change_status: str
    title: str
    description: str
    link: str
    labels: dict[str, str]
    event_time: int
    received_at: int


@endpoint("GET", "/changes", query=ChangeQuery, response=ChangeOut, paged=True, tag="changes",
          summary="Change events pushed to /event/push/change/standard, newest first")
async def list_changes(c: Call) -> dict:
    q: ChangeQuery = c.query
    stmt = select(ChangeRecord).order_by(ChangeRecord.event_time.desc(), ChangeRecord.id.desc())
    if q.channel_id is not None:
        stmt = stmt.where(ChangeRecord.integration_id.in_(
            select(Integration.id).where(Integration.channel_id == q.channel_id)))
    if q.integration_id is not None:
        stmt = stmt.where(ChangeRecord.integration_id == q.integration_id)
    if q.change_key is not None:
        stmt = stmt.where(ChangeRecord.change_key == q.change_key)
    if q.change_status:
        stmt = stmt.where(ChangeRecord.change_status.in_(q.change_status.split(",")))
    stmt = stmt.where(*q.window(ChangeRecord.event_time))
    return await paged(c.session, stmt, q, lambda r: {
        "event_id": r.id, "integration_id": r.integration_id, "change_key": r.change_key,
        "change_status": r.change_status, "title": r.title, "description": r.description, "link": r.link,
        "labels": dict(r.labels), "event_time": ts(r.event_time), "received_at": ts(r.received_at)})
