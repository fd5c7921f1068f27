"""/api/v1/channels/{id}/escalation-rules, /api/v1/escalation-rules/{id}, and incident deliveries."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from bot.api.common import get_or_404, paged, patch_changes, require_ids, ts
from bot.api.framework import Call, Page, endpoint
from core import incidents
from core.errors import InvalidInput
from core.escalation import ImChat, RuleDefinition
from core.im_chats import chat_id_problem
from core.models import Bot, Channel, Delivery, EscalationRule, ImApp, Member, Schedule, Team, Template
from core.models.oncall import OncallRole


class RuleIn(RuleDefinition):
    name: str = Field(min_length=1, max_length=100)
    priority: int = Field(default=0, ge=0, le=200, description="lower runs first; the first matching rule wins")
    status: Literal["enabled", "disabled"] = "enabled"


class RulePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    priority: int | None = Field(default=None, ge=0, le=200)
    status: Literal["enabled", "disabled"] | None = None
    definition: RuleDefinition | None = Field(default=None, description="replaces the levels, filters and timing")


class RuleOut(RuleDefinition):
    rule_id: int
    channel_id: int
    name: str
    priority: int
    status: str
    created_at: int
    updated_at: int


def rule_out(r: EscalationRule) -> dict:
    return {**r.definition, "rule_id": r.id, "channel_id": r.channel_id, "name": r.name, "priority": r.priority,
            "status": r.status, "created_at": ts(r.created_at), "updated_at": ts(r.updated_at)}


async def _check_targets(c: Call, definition: RuleDefinition) -> dict:
    for i, level in enumerate(definition.levels):
        await require_ids(c.session, Member, level.targets.member_ids, f"levels[{i}].targets.member_ids")
        await require_ids(c.session, Team, level.targets.team_ids, f"levels[{i}].targets.team_ids")
        await require_ids(c.session, Schedule, level.targets.schedule_ids, f"levels[{i}].targets.schedule_ids")
        for j, sr in enumerate(level.targets.schedule_roles):
            await require_ids(c.session, Schedule, [sr.schedule_id], f"levels[{i}].targets.schedule_roles[{j}].schedule_id")
            await require_ids(c.session, OncallRole, [sr.role_id], f"levels[{i}].targets.schedule_roles[{j}].role_id")
        await require_ids(c.session, Bot, level.bot_ids, f"levels[{i}].bot_ids")
        await _check_im_chats(c, level.im_chats, f"levels[{i}].im_chats")
    return definition.model_dump(mode="json")


async def _check_im_chats(c: Call, chats: list[ImChat], field: str) -> None:
    """Each group chat names an IM app that exists, by an id of that app's platform's shape."""
    ids = {ch.im_app_id for ch in chats}
    apps = dict((await c.session.execute(select(ImApp.id, ImApp.platform).where(ImApp.id.in_(ids)))).all()) \
        if ids else {}
    for j, chat in enumerate(chats):
        if chat.im_app_id not in apps:
            raise InvalidInput(f"{field}[{j}].im_app_id: no im app with id {chat.im_app_id}")
        problem = chat_id_problem(apps[chat.im_app_id], chat.chat_id)
        if problem:
            raise InvalidInput(f"{field}[{j}].chat_id: {problem}")


@endpoint("POST", "/channels/{id}/escalation-rules", body=RuleIn, response=RuleOut, status=201, need="admin",
          summary="Create an escalation rule for a channel", tag="escalation")
async def create_rule(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    body: RuleIn = c.body
    definition = RuleDefinition.model_validate(body.model_dump(exclude={"name", "priority", "status"}))
    r = EscalationRule(channel_id=ch.id, name=body.name, priority=body.priority, status=body.status,
                       definition=await _check_targets(c, definition), created_at=c.now, updated_at=c.now)
    c.session.add(r)
    await c.session.commit()
    return rule_out(r)


@endpoint("GET", "/channels/{id}/escalation-rules", query=Page, response=RuleOut, paged=True,
          summary="List a channel's escalation rules in the order they are tried", tag="escalation")
async def list_rules(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    stmt = select(EscalationRule).where(EscalationRule.channel_id == ch.id).order_by(
        EscalationRule.priority, EscalationRule.id)
    return await paged(c.session, stmt, c.query, rule_out)


@endpoint("GET", "/escalation-rules/{id}", response=RuleOut, summary="Get an escalation rule", tag="escalation")
async def get_rule(c: Call) -> dict:
    return rule_out(await get_or_404(c.session, EscalationRule, c.path_int("id"), "escalation rule"))


@endpoint("PATCH", "/escalation-rules/{id}", body=RulePatch, response=RuleOut, need="admin",
          summary="Update an escalation rule (running escalations keep their snapshot)", tag="escalation")
async def patch_rule(c: Call) -> dict:
    r = await get_or_404(c.session, EscalationRule, c.path_int("id"), "escalation rule")
    changes = patch_changes(c.body)
    for k in ("name", "priority", "status"):
        if k in changes:
            setattr(r, k, changes[k])
    if "definition" in changes:
        r.definition = await _check_targets(c, c.body.definition)
    r.updated_at = c.now
    await c.session.commit()
    return rule_out(r)


@endpoint("DELETE", "/escalation-rules/{id}", summary="Delete an escalation rule", tag="escalation", need="admin")
async def delete_rule(c: Call) -> dict:
    r = await get_or_404(c.session, EscalationRule, c.path_int("id"), "escalation rule")
    # Its templates word nothing any more (its incidents fall back to the channel's); a new rule must not
    # inherit them should its id ever be reused.
    await c.session.execute(delete(Template).where(Template.escalation_rule_id == r.id))
    await c.session.delete(r)
    await c.session.commit()
    return {}


class DeliveryOut(BaseModel):
    delivery_id: int
    incident_id: int
    person_id: int | None
    bot_id: int | None
    im_app_id: int | None = Field(description="medium im_chat: the IM app that posted the card into `chat_id`")
    chat_id: str = Field(description="medium im_chat: the group chat; empty otherwise")
    medium: str
    event_type: str
    level: int
    loop: int
    state: str
    attempts: int
    next_attempt_at: int
    provider: str = Field(description="the provider that sent it (with several per medium: the one that took it)")
    provider_message_id: str
    last_error: str = Field(description="the last error; on a sent delivery, the providers that failed before")
    fallback_from: int | None
    created_at: int
    updated_at: int


def delivery_out(d: Delivery) -> dict:
    return {"delivery_id": d.id, "incident_id": d.incident_id, "person_id": d.member_id, "bot_id": d.bot_id,
            "im_app_id": d.im_app_id, "chat_id": d.address if d.medium == "im_chat" else "", "medium": d.medium, "event_type": d.event_type, "level": d.level, "loop": d.loop, "state": d.state,
            "attempts": d.attempts, "next_attempt_at": ts(d.next_attempt_at),
            "provider": d.provider, "provider_message_id": d.provider_message_id, "last_error": d.last_error,
            "fallback_from": d.fallback_from_id, "created_at": ts(d.created_at), "updated_at": ts(d.updated_at)}


@endpoint("GET", "/incidents/{id}/deliveries", query=Page, response=DeliveryOut, paged=True,
          summary="Who was paged for an incident, how, and what failed", tag="incidents")
async def list_deliveries(c: Call) -> dict:
    incident = await incidents.get(c.session, c.path_int("id"))
    stmt = select(Delivery).where(Delivery.incident_id == incident.id).order_by(Delivery.id)
    return await paged(c.session, stmt, c.query, delivery_out)
