"""/api/v1/subscription-rules: members and teams told about matching incidents without being paged.

Anyone may subscribe themself (an observer too: being told is not acting on an incident); subscribing
someone else, or a team, takes an admin. A rule's subscriber, or an admin, changes or deletes it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from bot.api.common import get_or_404, paged, require_ids, ts
from bot.api.framework import Call, Page, Principal, endpoint
from core.errors import InvalidInput, PermissionDenied
from core.models import Channel, Member, Team
from core.models.subscriptions import SubscriptionRule, new_version
from core.subscriptions import EventName, Medium, SubscriptionSpec
from core.types import Role

Status = Literal["enabled", "disabled"]
SPEC_FIELDS = tuple(SubscriptionSpec.model_fields)


class SubscriptionRuleIn(SubscriptionSpec):
    status: Status = "enabled"


class SubscriptionRulePatch(BaseModel):
    """The fields to change; giving member_id (or team_id) moves the rule to that subscriber."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    member_id: int | None = Field(default=None, ge=1, le=2**53)
    team_id: int | None = Field(default=None, ge=1, le=2**53)
    channel_ids: list[int] | None = Field(default=None, max_length=100)
    filters: list[list[dict[str, Any]]] | None = Field(default=None, max_length=50)
    events: list[EventName] | None = Field(default=None, min_length=1)
    media: list[Medium] | None = Field(default=None, max_length=5)
    status: Status | None = None


class SubscriptionRuleOut(SubscriptionSpec):
    rule_id: int
    status: str
    created_by: int | None = Field(description="the member who created it (none: an admin token)")
    created_at: int
    updated_at: int


class SubscriptionRuleQuery(Page):
    member_id: int | None = Field(default=None, ge=1, le=2**53, description="rules of this member (not their teams')")
    team_id: int | None = Field(default=None, ge=1, le=2**53)
    channel_id: int | None = Field(default=None, ge=1, le=2**53, description="rules that cover this channel")


def _out(r: SubscriptionRule) -> dict[str, Any]:
    return {**{f: getattr(r, f) for f in SPEC_FIELDS}, "rule_id": r.id, "status": r.status,
            "created_by": r.created_by, "created_at": ts(r.created_at), "updated_at": ts(r.updated_at)}


def _may_subscribe(principal: Principal, spec: SubscriptionSpec) -> None:
    if principal.role is Role.ADMIN:
        return
    if spec.team_id is not None:
        raise PermissionDenied("team_id: only an admin subscribes a team; subscribe yourself with member_id")
    if principal.member_id is None or spec.member_id != principal.member_id:
        raise PermissionDenied(f"member_id: a {principal.role.value} may subscribe only themself "
                               f"(member_id {principal.member_id}); an admin may subscribe anyone")


def _may_change(principal: Principal, r: SubscriptionRule) -> None:
    if principal.role is Role.ADMIN or (principal.member_id is not None and r.member_id == principal.member_id):
        return
    raise PermissionDenied(f"subscription rule {r.id} is not yours: its subscriber or an admin changes it")


async def _check_refs(c: Call, spec: SubscriptionSpec) -> None:
    await require_ids(c.session, Member, [spec.member_id] if spec.member_id else [], "member_id")
    await require_ids(c.session, Team, [spec.team_id] if spec.team_id else [], "team_id")
    await require_ids(c.session, Channel, spec.channel_ids, "channel_ids")


@endpoint("POST", "/subscription-rules", body=SubscriptionRuleIn, response=SubscriptionRuleOut, status=201,
          tag="subscription-rules", summary="Subscribe a member (yourself, or anyone as an admin) or a team to "
          "incidents matching conditions across channels, notified on new (and optionally acknowledged, closed) "
          "incidents without being paged")
async def create_subscription(c: Call) -> dict:
    body: SubscriptionRuleIn = c.body
    _may_subscribe(c.principal, body)
    await _check_refs(c, body)
    r = SubscriptionRule(**body.model_dump(include=set(SPEC_FIELDS)), status=body.status,
                         created_by=c.principal.member_id, created_at=c.now, updated_at=c.now)
    c.session.add(r)
    await c.session.commit()
    return _out(r)


@endpoint("GET", "/subscription-rules", query=SubscriptionRuleQuery, response=SubscriptionRuleOut, paged=True,
          tag="subscription-rules", summary="List subscription rules")
async def list_subscriptions(c: Call) -> dict:
    q: SubscriptionRuleQuery = c.query
    stmt = select(SubscriptionRule).order_by(SubscriptionRule.id)
    if q.member_id is not None:
        stmt = stmt.where(SubscriptionRule.member_id == q.member_id)
    if q.team_id is not None:
        stmt = stmt.where(SubscriptionRule.team_id == q.team_id)
    if q.channel_id is None:
        return await paged(c.session, stmt, q, _out)
    # channel_ids is a JSON list (read whole, never queried inside): filter the few rules here
    rows = [r for r in (await c.session.execute(stmt)).scalars() if not r.channel_ids or q.channel_id in r.channel_ids]
    return {"items": [_out(r) for r in rows[q.offset:q.offset + q.limit]], "total": len(rows),
            "has_next_page": q.offset + q.limit < len(rows)}


@endpoint("GET", "/subscription-rules/{id}", response=SubscriptionRuleOut, tag="subscription-rules",
          summary="Get a subscription rule")
async def get_subscription(c: Call) -> dict:
    return _out(await get_or_404(c.session, SubscriptionRule, c.path_int("id"), "subscription rule"))


@endpoint("PATCH", "/subscription-rules/{id}", body=SubscriptionRulePatch, response=SubscriptionRuleOut,
          tag="subscription-rules", summary="Change, enable or disable a subscription rule (its subscriber or an admin)")
async def update_subscription(c: Call) -> dict:
    r = await get_or_404(c.session, SubscriptionRule, c.path_int("id"), "subscription rule")
    _may_change(c.principal, r)
    changes = {k: v for k, v in c.body.model_dump(exclude_unset=True).items() if v is not None}
    status = changes.pop("status", None)
    merged = {f: getattr(r, f) for f in SPEC_FIELDS}
    if "member_id" in changes and "team_id" not in changes:
        merged["team_id"] = None
    if "team_id" in changes and "member_id" not in changes:
        merged["member_id"] = None
    merged.update(changes)
    try:
        spec = SubscriptionSpec.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"body{'.' + where if where else ''}: {first.get('msg', 'invalid')}") from None
    _may_subscribe(c.principal, spec)
    await _check_refs(c, spec)
    for f in SPEC_FIELDS:
        setattr(r, f, getattr(spec, f))
    if status is not None:
        r.status = status
    r.version, r.updated_at = new_version(), c.now
    await c.session.commit()
    return _out(r)


@endpoint("DELETE", "/subscription-rules/{id}", tag="subscription-rules",
          summary="Delete a subscription rule (its subscriber or an admin)")
async def delete_subscription(c: Call) -> dict:
    r = await get_or_404(c.session, SubscriptionRule, c.path_int("id"), "subscription rule")
    _may_change(c.principal, r)
    await c.session.delete(r)
    await c.session.commit()
    return {}
