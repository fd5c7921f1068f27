"""/api/v1/schedules: on-call schedules, who is on call at t, a preview, and iCalendar feeds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.common import get_or_404, paged, require_ids, ts
from bot.api.framework import Call, Page, endpoint
from bot.keys import SETTINGS
from core.errors import Conflict, InvalidInput
from core.ical import to_ical
from core.member_shifts import shifts_of
from core.models import Member, OncallRole, Schedule, Team
from core.schedules import MemberRef, OnCall, Shift, TeamRef, oncall_at, parse_schedule, preview
from core.schedules import Schedule as Definition
from core.shift_notices import scan_soon

PREVIEW_MAX = timedelta(days=45)
FEED_DAYS = 30


class ScheduleIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    team_id: int | None = None
    definition: Definition


class SchedulePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    definition: Definition | None = None


class ScheduleOut(BaseModel):
    schedule_id: int
    name: str
    description: str
    team_id: int | None
    status: Literal["enabled", "disabled"] = Field(description="a disabled schedule has nobody on call")
    definition: Definition
    created_at: int
    updated_at: int


IDS_MAX = 100


class ScheduleQuery(Page):
    ids: str | None = Field(default=None, max_length=IDS_MAX * 16, pattern=r"^\d{1,16}(,\d{1,16})*$",
                            description=f"CSV of schedule ids (at most {IDS_MAX}): these schedules, in id order")
    status: Literal["enabled", "disabled"] | None = None

    @field_validator("ids")
    @classmethod
    def _ids(cls, v: str | None) -> str | None:
        parts = (v or "").split(",") if v else []
        if len(parts) > IDS_MAX:
            raise ValueError(f"at most {IDS_MAX} ids")
        for part in parts:
            if not 0 < int(part) < 2**53:
                raise ValueError(f"{part!r} is not an id; give a comma-separated list of ids")
        return v


class AtQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime | None = Field(default=None, description="ISO 8601 with a zone; default now")
    role_id: int | None = Field(default=None, ge=1, le=2**53, description="only who fills this on-call role")


class RangeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime
    end: AwareDatetime
    role_id: int | None = Field(default=None, ge=1, le=2**53, description="only this on-call role's shifts")


class ShiftPreview(BaseModel):
    shifts: list[Shift]


def _out(s: Schedule) -> dict:
    return {"schedule_id": s.id, "name": s.name, "description": s.description, "team_id": s.team_id,
            "status": s.status, "definition": s.definition, "created_at": ts(s.created_at), "updated_at": ts(s.updated_at)}


async def _check(c: Call, d: Definition) -> dict:
    """Members, teams and on-call roles named anywhere in the schedule must exist."""
    refs = [p for layer in d.layers for slot in layer.members for p in slot] + \
           [p for o in d.overrides for p in o.participants]
    await require_ids(c.session, Member, [p.member_id for p in refs if isinstance(p, MemberRef)], "member_id")
    await require_ids(c.session, Team, [p.team_id for p in refs if isinstance(p, TeamRef)], "team_id")
    for where, items in (("layers", d.layers), ("overrides", d.overrides)):
        for i, item in enumerate(items):
            if item.role_id is not None:
                await require_ids(c.session, OncallRole, [item.role_id], f"definition.{where}[{i}].role_id")
    return d.model_dump(mode="json")


@endpoint("POST", "/schedules", body=ScheduleIn, response=ScheduleOut, status=201, need="admin", tag="schedules",
          summary="Create an on-call schedule (layers of rotations, restrictions, overrides)")
async def create_schedule(c: Call) -> dict:
    if (await c.session.execute(select(Schedule.id).where(Schedule.name == c.body.name))).first():
        raise Conflict(f"name: a schedule named {c.body.name!r} already exists")
    if c.body.team_id is not None:
        await require_ids(c.session, Team, [c.body.team_id], "team_id")
    s = Schedule(name=c.body.name, description=c.body.description, team_id=c.body.team_id,
                 definition=await _check(c, c.body.definition), created_at=c.now, updated_at=c.now)
    c.session.add(s)
    await c.session.flush()
    await scan_soon(c.session, c.now, s.id)  # a shift starting within minutes is told about too
    await c.session.commit()
    return _out(s)


@endpoint("GET", "/schedules", query=ScheduleQuery, response=ScheduleOut, paged=True, tag="schedules",
          summary="List schedules, or get several by id (ids=1,2,3)")
async def list_schedules(c: Call) -> dict:
    """Unknown ids are left out of the list (as a deleted schedule would be), not an error."""
    stmt = select(Schedule).order_by(Schedule.id)
    if c.query.ids:
        stmt = stmt.where(Schedule.id.in_({int(i) for i in c.query.ids.split(",")}))
    if c.query.status:
        stmt = stmt.where(Schedule.status == c.query.status)
    return await paged(c.session, stmt, c.query, _out)


@endpoint("GET", "/schedules/{id}", response=ScheduleOut, tag="schedules", summary="Get a schedule")
async def get_schedule(c: Call) -> dict:
    return _out(await get_or_404(c.session, Schedule, c.path_int("id"), "schedule"))


@endpoint("PATCH", "/schedules/{id}", body=SchedulePatch, response=ScheduleOut, need="admin", tag="schedules",
          summary="Update a schedule")
async def patch_schedule(c: Call) -> dict:
    s = await get_or_404(c.session, Schedule, c.path_int("id"), "schedule")
    if c.body.name is not None:
        taken = (await c.session.execute(select(Schedule.id).where(Schedule.name == c.body.name))).scalar()
        if taken is not None and taken != s.id:
            raise Conflict(f"name: a schedule named {c.body.name!r} already exists")
        s.name = c.body.name
    if c.body.description is not None:
        s.description = c.body.description
    if c.body.definition is not None:
        s.definition = await _check(c, c.body.definition)
        await scan_soon(c.session, c.now, s.id)
    s.updated_at = c.now
    await c.session.commit()
    return _out(s)


async def _set_status(c: Call, status: str) -> dict:
    s = await get_or_404(c.session, Schedule, c.path_int("id"), "schedule")
    if s.status != status:
        s.status, s.updated_at = status, c.now
        if status == "enabled":
            await scan_soon(c.session, c.now, s.id)
        await c.session.commit()
    return _out(s)


@endpoint("POST", "/schedules/{id}/enable", response=ScheduleOut, need="admin", tag="schedules",
          summary="Enable a schedule: its on-call members are paged by the levels that target it again")
async def enable_schedule(c: Call) -> dict:
    return await _set_status(c, "enabled")


@endpoint("POST", "/schedules/{id}/disable", response=ScheduleOut, need="admin", tag="schedules",
          summary="Disable a schedule: it has nobody on call (a level targeting it pages nobody through it, "
                  "and says so on the incident's timeline) and sends no shift notices")
async def disable_schedule(c: Call) -> dict:
    return await _set_status(c, "disabled")


@endpoint("DELETE", "/schedules/{id}", need="admin", tag="schedules", summary="Delete a schedule")
async def delete_schedule(c: Call) -> dict:
    await c.session.delete(await get_or_404(c.session, Schedule, c.path_int("id"), "schedule"))
    await c.session.commit()
    return {}


@endpoint("GET", "/schedules/{id}/oncall", query=AtQuery, response=OnCall, tag="schedules",
          summary="Who is on call at `at` (default now), which layer or override put them there, and who fills "
                  "each on-call role (or only `role_id`'s); nobody while the schedule is disabled")
async def schedule_oncall(c: Call) -> dict:
    s = await get_or_404(c.session, Schedule, c.path_int("id"), "schedule")
    if s.status != "enabled":
        return OnCall().model_dump(mode="json")
    return oncall_at(parse_schedule(s.definition), c.query.at or c.now, c.query.role_id).model_dump(mode="json")


def _range(q: RangeQuery) -> tuple[datetime, datetime]:
    if q.end <= q.start:
        raise InvalidInput("end must be after start")
    if q.end - q.start > PREVIEW_MAX:
        raise InvalidInput(f"a preview covers at most {PREVIEW_MAX.days} days")
    return q.start, q.end


@endpoint("GET", "/schedules/{id}/preview", query=RangeQuery, response=ShiftPreview, tag="schedules",
          summary="The final on-call shifts between start and end (at most 45 days)")
async def schedule_preview(c: Call) -> dict:
    s = await get_or_404(c.session, Schedule, c.path_int("id"), "schedule")
    start, end = _range(c.query)
    return {"shifts": [x.model_dump(mode="json") for x in preview(parse_schedule(s.definition), start, end,
                                                                  c.query.role_id)]}


async def _labels(c: Call) -> dict[int, str]:
    return {m.id: m.name for m in (await c.session.execute(select(Member))).scalars()}


def _ical(body: bytes, name: str) -> web.Response:
    return web.Response(body=body, content_type="text/calendar", charset="utf-8",
                        headers={"Content-Disposition": f'inline; filename="{name}.ics"'})


@endpoint("GET", "/schedules/{id}/ical", produces="text/calendar", tag="schedules",
          summary="iCalendar feed of the schedule's next 30 days")
async def schedule_ical(c: Call) -> web.Response:
    s = await get_or_404(c.session, Schedule, c.path_int("id"), "schedule")
    names = await _labels(c)
    shifts = preview(parse_schedule(s.definition), c.now, c.now + timedelta(days=FEED_DAYS))
    base = c.request.app[SETTINGS].resolved_base_url()
    body = to_ical(shifts, calendar_name=f"On call: {s.name}", url=f"{base}/api/v1/schedules/{s.id}/ical",
                   label=lambda p: names.get(getattr(p, "member_id", -1), str(p)))
    return _ical(body, f"schedule-{s.id}")


@endpoint("GET", "/members/{id}/ical", produces="text/calendar", tag="schedules",
          summary="iCalendar feed of one member's on-call shifts across every schedule (next 30 days)")
async def member_ical(c: Call) -> web.Response:
    member = await get_or_404(c.session, Member, c.path_int("id"), "member")
    base = c.request.app[SETTINGS].resolved_base_url()
    return await member_feed(c.session, member, c.now, f"{base}/api/v1/members/{member.id}/ical")


async def member_feed(session: AsyncSession, member: Member, now: datetime, url: str) -> web.Response:
    """The member's iCalendar feed (next 30 days), here and at the calendar subscription URL (bot/web/calendar.py)."""
    mine = [shift for _name, shift in await shifts_of(session, member.id, now, now + timedelta(days=FEED_DAYS))]
    body = to_ical(mine, calendar_name=f"On call: {member.name}", url=url, label=lambda p: member.name)
    return _ical(body, f"member-{member.id}")
