"""/api/v1/incidents: list, detail (alerts + timeline), and the lifecycle actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from bot.keys import SETTINGS
from core import custom_fields, incident_filters, incidents, manual_incidents
from core.errors import InvalidInput
from core.models import Alert, Channel, Incident, TimelineEntry
from core.types import Platform, Progress, Role, Severity


class IncidentQuery(Page):
    channel_id: int | None = Field(default=None, ge=1, le=2**53)
    progress: str | None = Field(default=None, description="CSV of Triggered, Processing, Closed")
    severity: str | None = Field(default=None, description="CSV of Critical, Warning, Info")
    start_time: int | None = Field(default=None, ge=0, le=2**40,
                                   description="only incidents that started at or after this time (unix seconds)")
    end_time: int | None = Field(default=None, ge=0, le=2**40,
                                 description="only incidents that started before this time (unix seconds)")
    # Lengths keep the longest query string a client may build within the 8 KB request line a server takes.
    labels: str | None = Field(default=None, max_length=400,
                               description="CSV of name=value; an incident must carry every pair")
    fields: str | None = Field(default=None, max_length=400,
                               description="CSV of custom field name=value; an incident must hold every pair (one "
                               "option of a multi-select, true or false for a checkbox; a default counts for "
                               "incidents that never set the field)")
    team_ids: str | None = Field(default=None, max_length=200, pattern=r"^\d{1,15}(,\d{1,15})*$",
                                 description="CSV of team ids: incidents of the channels these teams own")
    responder_ids: str | None = Field(default=None, max_length=200, pattern=r"^\d{1,15}(,\d{1,15})*$",
                                      description="CSV of member ids: incidents with any of them as a responder")
    mine: bool = Field(default=False, description="only the calling member's incidents: they are a responder, "
                       "were paged or acted on it (a member's token only)")
    query: str | None = Field(default=None, max_length=incident_filters.QUERY_MAX,
                              description="words the title contains (case-insensitive)")

    @field_validator("progress")
    @classmethod
    def _progress(cls, v: str | None) -> str | None:
        for p in (v or "").split(","):
            if v and p not in Progress._value2member_map_:
                raise ValueError(f"unknown progress {p!r}; use Triggered, Processing or Closed")
        return v

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: str | None) -> str | None:
        for s in (v or "").split(","):
            if v and s not in Severity._value2member_map_:
                raise ValueError(f"unknown severity {s!r}; use Critical, Warning or Info")
        return v

    @field_validator("team_ids", "responder_ids")
    @classmethod
    def _ids(cls, v: str | None) -> str | None:
        for part in (v or "").split(","):
            if v and not (part.strip().isascii() and part.strip().isdigit() and 0 < int(part) < 2**53):
                raise ValueError(f"{part!r} is not an id; give a comma-separated list of ids")
        return v

    @model_validator(mode="after")
    def _range(self) -> IncidentQuery:
        if self.start_time is not None and self.end_time is not None and self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self

    def to_filter(self, member_id: int | None) -> incident_filters.IncidentFilter:
        def ids(csv: str | None) -> tuple[int, ...]:
            return tuple(dict.fromkeys(int(p) for p in csv.split(","))) if csv else ()

        if self.mine and member_id is None:
            raise InvalidInput("mine: this token acts as no member; use a member's token")
        return incident_filters.IncidentFilter(
            channel_id=self.channel_id, progress=tuple(self.progress.split(",")) if self.progress else (),
            severity=tuple(self.severity.split(",")) if self.severity else (),
            start_after=at(self.start_time), start_before=at(self.end_time),
            labels=incident_filters.parse_labels(self.labels) if self.labels else {},
            fields=incident_filters.parse_labels(self.fields, "fields") if self.fields else {},
            team_ids=ids(self.team_ids), responder_ids=ids(self.responder_ids),
            mine_of=member_id if self.mine else None, query=(self.query or "").strip())


def at(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


class Responder(BaseModel):
    person_id: int
    assigned_at: int
    acknowledged_at: int


class IncidentOut(BaseModel):
    incident_id: int
    num: str
    title: str
    description: str
    incident_severity: Severity
    incident_status: str
    progress: Progress
    channel_id: int
    labels: dict[str, str]
    fields: dict[str, Any] = Field(description="custom field values by name (set, else the field's default)")
    responders: list[Responder]
    alert_cnt: int
    active_alert_cnt: int
    alert_event_cnt: int
    group_method: str
    dedup_key: str
    start_time: int
    last_time: int
    end_time: int
    ack_time: int
    close_time: int
    snoozed_before: int
    merged_into: int | None
    closer_id: int | None
    detail_url: str
    created_at: int
    updated_at: int


class AlertOut(BaseModel):
    alert_id: int
    alert_key: str
    title: str
    description: str
    alert_severity: Severity
    alert_status: str
    progress: str
    labels: dict[str, str]
    event_cnt: int
    channel_id: int
    integration_id: int
    incident_id: int | None
    start_time: int
    last_time: int
    end_time: int


class TimelineOut(BaseModel):
    id: int
    kind: str
    at: int
    actor_id: int | None
    source: str
    detail: dict[str, Any]


class IncidentDetail(IncidentOut):
    alerts: list[AlertOut]
    timeline: list[TimelineOut]


def incident_out(c: Call, i: Incident, fields: dict[str, Any] | None = None) -> dict:
    """The incident as the Open API shows it; `fields` are its custom field values (core.custom_fields.effective),
    which incident_view reads."""
    base = c.request.app[SETTINGS].resolved_base_url()
    return {
        "incident_id": i.id, "num": i.num, "title": i.title, "description": i.description,
        "incident_severity": i.severity, "incident_status": i.status, "progress": i.progress,
        "channel_id": i.channel_id, "labels": dict(i.labels), "responders": list(i.responders),
        "alert_cnt": i.alert_cnt, "active_alert_cnt": i.active_alert_cnt, "alert_event_cnt": i.alert_event_cnt,
        "group_method": i.group_method, "dedup_key": i.dedup_key, "start_time": ts(i.start_time),
        "last_time": ts(i.last_time), "end_time": ts(i.end_time), "ack_time": ts(i.ack_time),
        "close_time": ts(i.close_time), "snoozed_before": ts(i.snoozed_until), "merged_into": i.merged_into_id,
        "closer_id": i.closer_id, "detail_url": f"{base}/incidents/{i.id}", "created_at": ts(i.created_at),
        "updated_at": ts(i.updated_at), "fields": fields if fields is not None else dict(i.fields or {}),
    }


async def incident_view(c: Call, i: Incident) -> dict:
    """incident_out with the custom field values, defaults included."""
    return incident_out(c, i, await custom_fields.values_of(c.session, i))


def alert_out(a: Alert) -> dict:
    return {"alert_id": a.id, "alert_key": a.alert_key, "title": a.title, "description": a.description,
            "alert_severity": a.severity, "alert_status": a.status, "progress": a.progress,
            "labels": dict(a.labels), "event_cnt": a.event_cnt, "channel_id": a.channel_id,
            "integration_id": a.integration_id, "incident_id": a.incident_id, "start_time": ts(a.start_time),
            "last_time": ts(a.last_time), "end_time": ts(a.end_time)}


def timeline_out(t: TimelineEntry) -> dict:
    return {"id": t.id, "kind": t.kind, "at": ts(t.at), "actor_id": t.actor_id, "source": t.source,
            "detail": dict(t.detail)}


@endpoint("GET", "/incidents", query=IncidentQuery, response=IncidentOut, paged=True,
          summary="List incidents, newest first, filtered by channel, progress, severity, start time, labels, "
          "team, responder, mine and title words", tag="incidents")
async def list_incidents(c: Call) -> dict:
    stmt = await incident_filters.statement(c.session, c.query.to_filter(c.principal.member_id))
    defs = await custom_fields.definitions(c.session)
    return await paged(c.session, stmt, c.query,
                       lambda i: incident_out(c, i, custom_fields.effective(defs, i.fields or {})))


async def detail(c: Call, incident: Incident) -> dict:
    out = await incident_view(c, incident)
    out["alerts"] = [alert_out(a) for a in await incidents.alerts_of(c.session, incident.id)]
    out["timeline"] = [timeline_out(t) for t in await incidents.timeline(c.session, incident.id)]
    return out


@endpoint("GET", "/incidents/{id}", response=IncidentDetail, summary="Incident with its alerts and timeline",
          tag="incidents")
async def get_incident(c: Call) -> dict:
    return await detail(c, await incidents.get(c.session, c.path_int("id")))


# ---- manual paging: open by hand, edit, add responders (core/manual_incidents.py) -----------------


class CreateBody(BaseModel):
    title: str = Field(min_length=1, max_length=manual_incidents.TITLE_MAX)
    description: str = Field(default="", max_length=manual_incidents.DESCRIPTION_MAX)
    incident_severity: Severity
    channel_id: int = Field(ge=1, description="the channel the incident belongs to (its team scope applies)")
    responder_ids: list[int] = Field(default_factory=list, max_length=manual_incidents.RESPONDERS_MAX,
                                     description="members to page now, through their own preferences")
    escalation_rule_id: int | None = Field(default=None, ge=1, description="page through this escalation rule "
                                           "of the channel instead (its filters do not apply)")
    member_id: int | None = Field(default=None, description="open it as this member (admin tokens only)")


class EditBody(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=manual_incidents.TITLE_MAX)
    description: str | None = Field(default=None, max_length=manual_incidents.DESCRIPTION_MAX)
    incident_severity: Severity | None = None
    member_id: int | None = Field(default=None, description="edit as this member (admin tokens only)")


class AddRespondersBody(BaseModel):
    member_ids: list[int] = Field(min_length=1, max_length=manual_incidents.RESPONDERS_MAX)
    member_id: int | None = Field(default=None, description="act on behalf of this member (admin tokens only)")


@endpoint("POST", "/incidents", body=CreateBody, response=IncidentOut, status=201, need="act", tag="incidents",
          summary="Open an incident by hand and page: the responders named, the escalation rule named, or, when "
          "neither is named, the channel's matching escalation rule", errors=(400, 401, 403, 404))
async def create_incident(c: Call) -> dict:
    b: CreateBody = c.body
    if c.principal.member_id is None and c.principal.role is not Role.ADMIN:
        channel = await get_or_404(c.session, Channel, b.channel_id, "channel")
        await incidents.check_channel_scope(c.session, channel, None)
    incident = await manual_incidents.create(
        c.session, actor(c), channel_id=b.channel_id, title=b.title, description=b.description,
        severity=b.incident_severity.value, responder_ids=b.responder_ids,
        escalation_rule_id=b.escalation_rule_id, now=c.now, source=API)
    await c.session.commit()
    return await incident_view(c, incident)


@endpoint("PATCH", "/incidents/{id}", body=EditBody, response=IncidentOut, need="act", tag="incidents",
          summary="Edit the title, description or severity; each change is a timeline entry and updates the cards",
          errors=(400, 401, 403, 404, 409))
async def edit_incident(c: Call) -> dict:
    b: EditBody = c.body
    await memberless_in_scope(c, [c.path_int("id")])
    incident = await manual_incidents.edit(
        c.session, c.path_int("id"), actor(c), now=c.now, title=b.title, description=b.description,
        severity=b.incident_severity.value if b.incident_severity else None, source=API)
    await c.session.commit()
    return await incident_view(c, incident)


@endpoint("POST", "/incidents/{id}/responders", body=AddRespondersBody, response=IncidentOut, need="act",
          tag="incidents", summary="Add responders to an open incident and page them (the others stay)",
          errors=(400, 401, 403, 404, 409))
async def add_responders(c: Call) -> dict:
    await memberless_in_scope(c, [c.path_int("id")])
    incident = await manual_incidents.add_responders(c.session, c.path_int("id"), actor(c),
                                                     member_ids=c.body.member_ids, now=c.now, source=API)
    await c.session.commit()
    return await incident_view(c, incident)


# ---- actions: every one ends in core.incidents (DESIGN rule 1) -----------------------------------


class ActBody(BaseModel):
    member_id: int | None = Field(default=None, description="act on behalf of this member (admin tokens only)")


class CloseBody(ActBody):
    root_cause: str = Field(default="", max_length=1024)
    resolution: str = Field(default="", max_length=1024)


class ReopenBody(ActBody):
    reason: str = Field(default="", max_length=1024)


class SnoozeBody(ActBody):
    minutes: int = Field(ge=1, le=incidents.SNOOZE_MAX_MINUTES)


class ReassignBody(ActBody):
    member_ids: list[int] = Field(min_length=1, max_length=100)


class CommentBody(ActBody):
    comment: str = Field(min_length=1, max_length=incidents.COMMENT_MAX)


class EscalateBody(ActBody):
    reason: str = Field(default="", max_length=1024)


class MergeBody(ActBody):
    source_incident_ids: list[int] = Field(min_length=1, max_length=100)
    comment: str = Field(default="", max_length=1024)


def actor(c: Call) -> int | None:
    body = c.body
    wanted = getattr(body, "member_id", None)
    if wanted is not None:
        if c.principal.member_id is not None and wanted != c.principal.member_id:
            raise InvalidInput("member_id: only admin tokens may act on behalf of another member")
        return wanted
    return c.principal.member_id


async def memberless_in_scope(c: Call, incident_ids: list[int]) -> None:
    """Core checks the member an action names against its channel's team scope, and reads no member as
    the system or an admin. A token of a lower role that acts as no member belongs to no team: its
    actions on a team-scoped channel's incidents are refused here."""
    if c.principal.member_id is None and c.principal.role is not Role.ADMIN:
        for iid in incident_ids:
            await incidents.check_team_scope(c.session, await incidents.get(c.session, iid), None)


def _action(name: str, body: type[BaseModel], summary: str, apply: Any) -> None:
    @endpoint("POST", f"/incidents/{{id}}/{name}", body=body, response=IncidentOut, summary=summary,
              tag="incidents", need="act", errors=(400, 401, 403, 404, 409))
    async def handle(c: Call) -> dict:
        await memberless_in_scope(c, [c.path_int("id"), *getattr(c.body, "source_incident_ids", [])])
        incident = await apply(c, c.path_int("id"), actor(c))
        await c.session.commit()
        return await incident_view(c, incident)

    handle.__name__ = f"incident_{name}"


API = Platform.API.value
_action("ack", ActBody, "Acknowledge (Triggered -> Processing)",
        lambda c, i, a: incidents.ack(c.session, i, a, now=c.now, source=API))
_action("unack", ActBody, "Undo acknowledge (Processing -> Triggered)",
        lambda c, i, a: incidents.unack(c.session, i, a, now=c.now, source=API))
_action("snooze", SnoozeBody, "Snooze re-notification for 1..1440 minutes",
        lambda c, i, a: incidents.snooze(c.session, i, a, minutes=c.body.minutes, now=c.now, source=API))
_action("wake", ActBody, "End a snooze now",
        lambda c, i, a: incidents.wake(c.session, i, a, now=c.now, source=API))
_action("close", CloseBody, "Close the incident and its alerts",
        lambda c, i, a: incidents.close(c.session, i, a, now=c.now, source=API, root_cause=c.body.root_cause,
                                        resolution=c.body.resolution))
_action("reopen", ReopenBody, "Reopen a closed incident",
        lambda c, i, a: incidents.reopen(c.session, i, a, now=c.now, source=API, reason=c.body.reason))
_action("reassign", ReassignBody, "Replace the responders",
        lambda c, i, a: incidents.reassign(c.session, i, a, member_ids=c.body.member_ids, now=c.now, source=API))
_action("escalate", EscalateBody, "Escalate to the next level now",
        lambda c, i, a: incidents.escalate(c.session, i, a, now=c.now, source=API, reason=c.body.reason))
_action("comment", CommentBody, "Comment on the incident",
        lambda c, i, a: incidents.comment(c.session, i, a, text=c.body.comment, now=c.now, source=API))
_action("merge", MergeBody, "Merge other incidents into this one",
        lambda c, i, a: incidents.merge(c.session, i, c.body.source_incident_ids, a, now=c.now, source=API,
                                        comment=c.body.comment))
