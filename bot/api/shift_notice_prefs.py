"""/api/v1/members/{id}/shift-notices: whether a member is told when their on-call shifts start and end
(core/shift_notices.py), and how long before a start; /api/v1/shift-notices: the notices written, and what
became of each. A member reads and changes their own; an admin anyone's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from core.errors import PermissionDenied
from core.models import Member, ShiftNotice, ShiftNoticeSetting
from core.shift_boundaries import LEAD_MAX_MINUTES
from core.types import Role


class ShiftNoticesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = Field(default=None, description="tell the member when their shifts start and end")
    lead_minutes: int | None = Field(default=None, ge=0, le=LEAD_MAX_MINUTES,
                                     description="send the start notice this long before the shift starts")


class ShiftNoticesOut(BaseModel):
    member_id: int
    enabled: bool
    lead_minutes: int
    updated_at: int


async def _member(c: Call) -> Member:
    member = await get_or_404(c.session, Member, c.path_int("id"), "member")
    if c.principal.role is not Role.ADMIN and c.principal.member_id != member.id:
        raise PermissionDenied("only the member themself or an admin reads or changes their shift notices")
    return member


def _out(member_id: int, s: ShiftNoticeSetting | None) -> dict:
    return {"member_id": member_id, "enabled": s.enabled if s else True, "lead_minutes": s.lead_minutes if s else 0,
            "updated_at": ts(s.updated_at) if s else 0}


@endpoint("GET", "/members/{id}/shift-notices", response=ShiftNoticesOut, tag="members",
          summary="Whether the member is told when their on-call shifts start and end (default on, at the start)")
async def get_shift_notices(c: Call) -> dict:
    member = await _member(c)
    return _out(member.id, await c.session.get(ShiftNoticeSetting, member.id))


@endpoint("PATCH", "/members/{id}/shift-notices", body=ShiftNoticesIn, response=ShiftNoticesOut, need="act",
          tag="members", summary="Turn the member's shift notices on or off, or set how early a start is told")
async def patch_shift_notices(c: Call) -> dict:
    member = await _member(c)
    s = await c.session.get(ShiftNoticeSetting, member.id)
    if s is None:
        s = ShiftNoticeSetting(member_id=member.id)
        c.session.add(s)
    if c.body.enabled is not None:
        s.enabled = c.body.enabled
    if c.body.lead_minutes is not None:
        s.lead_minutes = c.body.lead_minutes
    s.updated_at = c.now
    await c.session.commit()
    return _out(member.id, s)


class ShiftNoticeQuery(Page):
    member_id: int | None = Field(default=None, ge=1, le=2**53, description="a member's notices (yours without "
                                  "an admin token)")
    schedule_id: int | None = Field(default=None, ge=1, le=2**53)
    state: Literal["pending", "sent", "failed", "canceled"] | None = None


class ShiftNoticeOut(BaseModel):
    notice_id: int
    member_id: int
    schedule_id: int
    kind: Literal["start", "end"] = Field(description="the shift starts or ends at `at`")
    at: int
    due_at: int = Field(description="when it goes out (a start: `lead_minutes` before)")
    role_id: int | None
    medium: str = Field(description="the medium it went (or goes) over; `tried` failed before it")
    tried: list[str]
    state: str = Field(description="pending, sent, failed (no medium could send it) or canceled (the schedule or "
                       "the member's setting changed before it was due; `last_error` says which)")
    attempts: int
    provider: str
    last_error: str


def _notice(n: ShiftNotice) -> dict:
    return {"notice_id": n.id, "member_id": n.member_id, "schedule_id": n.schedule_id, "kind": n.kind,
            "at": ts(n.at), "due_at": ts(n.due_at), "role_id": n.role_id, "medium": n.medium, "tried": n.tried,
            "state": n.state, "attempts": n.attempts, "provider": n.provider, "last_error": n.last_error}


@endpoint("GET", "/shift-notices", query=ShiftNoticeQuery, response=ShiftNoticeOut, paged=True, tag="members",
          summary="Shift notices written (newest due first): to whom, for which shift, over what, and the outcome")
async def list_shift_notices(c: Call) -> dict:
    member_id = c.query.member_id
    if c.principal.role is not Role.ADMIN:
        if c.principal.member_id is None or member_id not in (None, c.principal.member_id):
            raise PermissionDenied("only an admin reads other members' shift notices")
        member_id = c.principal.member_id
    stmt = select(ShiftNotice).order_by(ShiftNotice.due_at.desc(), ShiftNotice.id.desc())
    if member_id is not None:
        stmt = stmt.where(ShiftNotice.member_id == member_id)
    if c.query.schedule_id is not None:
        stmt = stmt.where(ShiftNotice.schedule_id == c.query.schedule_id)
    if c.query.state is not None:
        stmt = stmt.where(ShiftNotice.state == c.query.state)
    return await paged(c.session, stmt, c.query, _notice)
