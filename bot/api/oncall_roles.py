"""/api/v1/oncall-roles: the account's on-call roles (primary, secondary...). A schedule layer or override fills
one (core/schedules.py), and an escalation level may page one role of a schedule (targets.schedule_roles)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from core.errors import Conflict
from core.models import EscalationRule, OncallRole, Schedule


class RoleIn(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    description: str = Field(default="", max_length=500)


class RolePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=500)


class RoleOut(BaseModel):
    role_id: int
    name: str
    description: str
    created_at: int
    updated_at: int


def _out(r: OncallRole) -> dict:
    return {"role_id": r.id, "name": r.name, "description": r.description, "created_at": ts(r.created_at),
            "updated_at": ts(r.updated_at)}


async def _name_free(c: Call, name: str, role_id: int | None = None) -> None:
    taken = (await c.session.execute(select(OncallRole.id).where(OncallRole.name == name))).scalar()
    if taken is not None and taken != role_id:
        raise Conflict(f"name: an on-call role named {name!r} already exists")


@endpoint("POST", "/oncall-roles", body=RoleIn, response=RoleOut, status=201, need="admin", tag="schedules",
          summary="Create an on-call role (e.g. primary, secondary) for schedule layers to fill")
async def create_role(c: Call) -> dict:
    await _name_free(c, c.body.name)
    r = OncallRole(name=c.body.name, description=c.body.description, created_at=c.now, updated_at=c.now)
    c.session.add(r)
    await c.session.commit()
    return _out(r)


@endpoint("GET", "/oncall-roles", query=Page, response=RoleOut, paged=True, tag="schedules",
          summary="List on-call roles")
async def list_roles(c: Call) -> dict:
    return await paged(c.session, select(OncallRole).order_by(OncallRole.id), c.query, _out)


@endpoint("GET", "/oncall-roles/{id}", response=RoleOut, tag="schedules", summary="Get an on-call role")
async def get_role(c: Call) -> dict:
    return _out(await get_or_404(c.session, OncallRole, c.path_int("id"), "on-call role"))


@endpoint("PATCH", "/oncall-roles/{id}", body=RolePatch, response=RoleOut, need="admin", tag="schedules",
          summary="Rename or describe an on-call role (schedules and levels name it by id: they follow)")
async def patch_role(c: Call) -> dict:
    r = await get_or_404(c.session, OncallRole, c.path_int("id"), "on-call role")
    if c.body.name is not None:
        await _name_free(c, c.body.name, r.id)
        r.name = c.body.name
    if c.body.description is not None:
        r.description = c.body.description
    r.updated_at = c.now
    await c.session.commit()
    return _out(r)


async def _users(c: Call, role_id: int) -> list[str]:
    """Where a role is in use: schedules whose layers or overrides fill it, rules whose levels page it."""
    found = []
    for sid, definition in (await c.session.execute(select(Schedule.id, Schedule.definition))).all():
        if any(x.get("role_id") == role_id for x in [*definition.get("layers", []), *definition.get("overrides", [])]):
            found.append(f"schedule {sid}")
    for rid, definition in (await c.session.execute(select(EscalationRule.id, EscalationRule.definition))).all():
        if any(t.get("role_id") == role_id for level in definition.get("levels", [])
               for t in level.get("targets", {}).get("schedule_roles", [])):
            found.append(f"escalation rule {rid}")
    return found


@endpoint("DELETE", "/oncall-roles/{id}", need="admin", tag="schedules",
          summary="Delete an on-call role that no schedule or escalation level uses")
async def delete_role(c: Call) -> dict:
    r = await get_or_404(c.session, OncallRole, c.path_int("id"), "on-call role")
    users = await _users(c, r.id)
    if users:
        raise Conflict(f"on-call role {r.id} is in use by {', '.join(users[:10])}; remove it there first")
    await c.session.delete(r)
    await c.session.commit()
    return {}
