"""/api/v1/webhooks (outgoing incident webhooks) and /api/v1/channels/{id}/custom-actions."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, patch_changes, require_ids, ts
from bot.api.framework import Call, Page, endpoint
from bot.api.incidents import memberless_in_scope
from bot.egress import require_sendable
from bot.keys import HTTP, SETTINGS
from core import incidents
from core.crypto import seal
from core.errors import InvalidInput
from core.events import EVENT_TYPES
from core.models import Channel, CustomAction, Webhook
from webhooks.outgoing import run_custom_action

EventType = Literal[(*EVENT_TYPES, "a_new", "a_update", "a_merge")]  # type: ignore[valid-type]


class WebhookIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["incident", "alert"] = Field(default="incident", description="incident or alert events")
    url: AnyHttpUrl = Field(description="http or https; internal addresses need VIGIL_EGRESS_ALLOW")
    channel_ids: list[int] = Field(default_factory=list, max_length=100, description="empty: every channel")
    event_types: list[EventType] = Field(default_factory=list, description="empty: every event type")
    headers: dict[str, str] = Field(default_factory=dict, max_length=20, description="write-only; stored encrypted")
    status: Literal["enabled", "disabled"] = "enabled"


class WebhookPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    url: AnyHttpUrl | None = None
    channel_ids: list[int] | None = Field(default=None, max_length=100)
    event_types: list[EventType] | None = None
    headers: dict[str, str] | None = Field(default=None, max_length=20)
    status: Literal["enabled", "disabled"] | None = None


class WebhookOut(BaseModel):
    webhook_id: int
    name: str
    kind: str
    url: str
    channel_ids: list[int]
    event_types: list[str]
    has_headers: bool
    status: str
    created_at: int
    updated_at: int


def _out(w: Webhook) -> dict:
    return {"webhook_id": w.id, "name": w.name, "kind": w.kind, "url": w.url, "channel_ids": list(w.channel_ids),
            "event_types": list(w.event_types), "has_headers": bool(w.headers), "status": w.status,
            "created_at": ts(w.created_at), "updated_at": ts(w.updated_at)}


def _sealed(c: Call, headers: dict[str, str]) -> str:
    if not headers:
        return ""
    try:
        return seal(c.request.app[SETTINGS].secret_key, headers)
    except ValueError as exc:
        raise InvalidInput(f"headers: {exc}") from None


def _sendable(c: Call, url: str) -> None:
    # Host names are judged again when sending, on the addresses they resolve to then (bot/egress.py).
    require_sendable("url", url, c.request.app[SETTINGS].egress_policy())


@endpoint("POST", "/webhooks", body=WebhookIn, response=WebhookOut, status=201, need="admin", tag="webhooks",
          summary="Send incident events to a URL (Flashduty payloads, 2 s timeout, retried)")
async def create_webhook(c: Call) -> dict:
    await require_ids(c.session, Channel, c.body.channel_ids, "channel_ids")
    _sendable(c, str(c.body.url))
    w = Webhook(name=c.body.name, kind=c.body.kind, url=str(c.body.url), channel_ids=c.body.channel_ids,
                event_types=list(c.body.event_types), headers=_sealed(c, c.body.headers), status=c.body.status,
                created_at=c.now, updated_at=c.now)
    c.session.add(w)
    await c.session.commit()
    return _out(w)


@endpoint("GET", "/webhooks", query=Page, response=WebhookOut, paged=True, tag="webhooks", need="admin",
          summary="List outgoing webhooks")
async def list_webhooks(c: Call) -> dict:
    return await paged(c.session, select(Webhook).order_by(Webhook.id), c.query, _out)


@endpoint("PATCH", "/webhooks/{id}", body=WebhookPatch, response=WebhookOut, need="admin", tag="webhooks",
          summary="Update an outgoing webhook")
async def patch_webhook(c: Call) -> dict:
    w = await get_or_404(c.session, Webhook, c.path_int("id"), "webhook")
    changes = patch_changes(c.body, mode="json")
    if "channel_ids" in changes:
        await require_ids(c.session, Channel, changes["channel_ids"], "channel_ids")
    if changes.get("url"):
        _sendable(c, str(changes["url"]))
    if "headers" in changes:
        changes["headers"] = _sealed(c, changes["headers"])
    for k, v in changes.items():
        setattr(w, k, v)
    w.updated_at = c.now
    await c.session.commit()
    return _out(w)


@endpoint("DELETE", "/webhooks/{id}", need="admin", tag="webhooks", summary="Delete an outgoing webhook")
async def delete_webhook(c: Call) -> dict:
    await c.session.delete(await get_or_404(c.session, Webhook, c.path_int("id"), "webhook"))
    await c.session.commit()
    return {}


class ActionIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    url: AnyHttpUrl = Field(description="http or https; internal addresses need VIGIL_EGRESS_ALLOW")
    headers: dict[str, str] = Field(default_factory=dict, max_length=20, description="write-only; encrypted")


class ActionOut(BaseModel):
    action_id: int
    channel_id: int
    name: str
    url: str
    created_at: int


class ActionResult(BaseModel):
    ok: bool
    result: str


def _action_out(a: CustomAction) -> dict:
    return {"action_id": a.id, "channel_id": a.channel_id, "name": a.name, "url": a.url,
            "created_at": ts(a.created_at)}


@endpoint("POST", "/channels/{id}/custom-actions", body=ActionIn, response=ActionOut, status=201, need="admin",
          tag="custom-actions", summary="Add a custom action to a channel's incidents (at most 5)")
async def create_action(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    count = len((await c.session.execute(select(CustomAction.id).where(CustomAction.channel_id == ch.id))).all())
    if count >= 5:
        raise InvalidInput("a channel has at most 5 custom actions")
    _sendable(c, str(c.body.url))
    a = CustomAction(channel_id=ch.id, name=c.body.name, url=str(c.body.url), headers=_sealed(c, c.body.headers),
                     created_at=c.now, updated_at=c.now)
    c.session.add(a)
    await c.session.commit()
    return _action_out(a)


@endpoint("GET", "/channels/{id}/custom-actions", query=Page, response=ActionOut, paged=True,
          tag="custom-actions", summary="List a channel's custom actions")
async def list_actions(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    stmt = select(CustomAction).where(CustomAction.channel_id == ch.id).order_by(CustomAction.id)
    return await paged(c.session, stmt, c.query, _action_out)


@endpoint("DELETE", "/custom-actions/{id}", need="admin", tag="custom-actions", summary="Delete a custom action")
async def delete_action(c: Call) -> dict:
    await c.session.delete(await get_or_404(c.session, CustomAction, c.path_int("id"), "custom action"))
    await c.session.commit()
    return {}


@endpoint("POST", "/incidents/{id}/custom-actions/{action_id}", response=ActionResult, need="act",
          tag="custom-actions", summary="Run a custom action on an incident (1 s timeout); outcome on the timeline")
async def run_action(c: Call) -> dict:
    incident = await incidents.get(c.session, c.path_int("id"))
    action = await get_or_404(c.session, CustomAction, c.path_int("action_id"), "custom action")
    if action.channel_id != incident.channel_id:
        raise InvalidInput("that custom action belongs to another channel")
    # running an action acts on the incident: the same member and team-scope checks as core.incidents
    await incidents.may_act_on(c.session, incident, c.principal.member_id)
    await memberless_in_scope(c, [incident.id])
    settings = c.request.app[SETTINGS]
    ok, what = await run_custom_action(c.request.app[HTTP], c.session, action, incident, c.principal.member_id,
                                       settings.resolved_base_url(), settings.secret_key, c.now)
    await c.session.commit()
    return {"ok": ok, "result": what}
