"""/api/v1/members/{id}/shift-notices: whether a member is told when their on-call shifts start and end
(core/shift_notices.py), and how long before a start. The member themself or an admin."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bot.api.common import get_or_404, ts
from bot.api.framework import Call, endpoint
from core.errors import PermissionDenied
from core.models import Member, ShiftNoticeSetting
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
