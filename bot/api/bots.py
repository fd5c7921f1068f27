"""/api/v1/bots: group-chat bots referenced from escalation levels; a test message endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bot.api.common import get_or_404, paged, patch_changes, ts
from bot.api.framework import Call, Page, endpoint
from bot.egress import require_sendable
from bot.group_bots import BotMessage, send
from bot.group_bots.sender import config_of
from bot.keys import HTTP, SETTINGS
from core.crypto import seal, unseal
from core.errors import DeliveryError, InvalidInput
from core.events import EVENT_TYPES
from core.models import Bot
from core.types import Progress, Severity

BotType = Literal["feishu", "dingtalk", "wecom", "slack", "zoom", "telegram"]
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
KEYWORD = ("Feishu only: the custom bot's security keyword (its security settings' custom keyword, e.g. \"#\"); "
           "every post carries it")


class BotIn(BaseModel):
    type: BotType
    alias: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=2048,
                     description="webhook URL (http or https; internal addresses need VIGIL_EGRESS_ALLOW) or the "
                                 "platform token")
    secret: str = Field(default="", max_length=512, description="signing secret (DingTalk, Feishu) or Zoom token")
    severities: list[Severity] = Field(default_factory=list, description="empty: every severity")
    event_types: list[EventType] = Field(default_factory=list, description="empty: every event type")
    at_all: bool = False
    chat_ids: list[str] = Field(default_factory=list, max_length=20, description="Telegram chats")
    keyword: str = Field(default="", max_length=100, description=KEYWORD)


class BotPatch(BaseModel):
    alias: str | None = Field(default=None, min_length=1, max_length=100)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    secret: str | None = Field(default=None, max_length=512)
    severities: list[Severity] | None = None
    event_types: list[EventType] | None = None
    at_all: bool | None = None
    chat_ids: list[str] | None = Field(default=None, max_length=20)
    keyword: str | None = Field(default=None, max_length=100, description=KEYWORD)
    status: Literal["enabled", "disabled"] | None = None


class BotOut(BaseModel):
    bot_id: int
    type: str
    alias: str
    severities: list[str]
    event_types: list[str]
    at_all: bool
    chat_ids: list[str]
    keyword: str
    status: str
    created_at: int
    updated_at: int


class TestResult(BaseModel):
    ok: bool
    result: str = Field(description="the message id when sent; otherwise a short reason (HTTP status, egress "
                                    "refusal, platform error code), never the remote answer's body")


def _out(b: Bot) -> dict:
    return {"bot_id": b.id, "type": b.type, "alias": b.alias, "severities": list(b.severities),
            "event_types": list(b.event_types), "at_all": b.at_all, "chat_ids": list(b.chat_ids),
            "keyword": b.keyword, "status": b.status, "created_at": ts(b.created_at), "updated_at": ts(b.updated_at)}


def _seal(c: Call, creds: dict[str, str]) -> str:
    try:
        return seal(c.request.app[SETTINGS].secret_key, creds)
    except ValueError as exc:
        raise InvalidInput(f"url: {exc}") from None


def _validated(c: Call, b: Bot) -> None:
    settings = c.request.app[SETTINGS]
    try:
        config = config_of(b, settings.secret_key)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if "://" in config.url:  # a bare token goes into the platform's public URL
        require_sendable("url", config.url, settings.egress_policy())


@endpoint("POST", "/bots", body=BotIn, response=BotOut, status=201, need="admin", tag="bots",
          summary="Add a group-chat bot (URL and secret stored encrypted)")
async def create_bot(c: Call) -> dict:
    body: BotIn = c.body
    b = Bot(type=body.type, alias=body.alias, credentials=_seal(c, {"url": body.url, "secret": body.secret}),
            severities=[s.value for s in body.severities], event_types=list(body.event_types), at_all=body.at_all,
            chat_ids=body.chat_ids, keyword=body.keyword.strip(), created_at=c.now, updated_at=c.now)
    _validated(c, b)
    c.session.add(b)
    await c.session.commit()
    return _out(b)


@endpoint("GET", "/bots", query=Page, response=BotOut, paged=True, tag="bots", summary="List group-chat bots")
async def list_bots(c: Call) -> dict:
    from sqlalchemy import select

    return await paged(c.session, select(Bot).order_by(Bot.id), c.query, _out)


@endpoint("PATCH", "/bots/{id}", body=BotPatch, response=BotOut, need="admin", tag="bots", summary="Update a bot")
async def patch_bot(c: Call) -> dict:
    b = await get_or_404(c.session, Bot, c.path_int("id"), "bot")
    changes = patch_changes(c.body, mode="json")
    creds = unseal(c.request.app[SETTINGS].secret_key, b.credentials)
    if "url" in changes or "secret" in changes:
        creds.update({k: changes.pop(k) for k in ("url", "secret") if k in changes})
        b.credentials = _seal(c, creds)
    if "keyword" in changes:
        changes["keyword"] = changes["keyword"].strip()
    for k, v in changes.items():
        setattr(b, k, v)
    _validated(c, b)
    b.updated_at = c.now
    await c.session.commit()
    return _out(b)


@endpoint("DELETE", "/bots/{id}", need="admin", tag="bots", summary="Remove a bot")
async def delete_bot(c: Call) -> dict:
    await c.session.delete(await get_or_404(c.session, Bot, c.path_int("id"), "bot"))
    await c.session.commit()
    return {}


@endpoint("POST", "/bots/{id}/test", response=TestResult, need="admin", tag="bots",
          summary="Send a test message through the bot now; the result is the outcome in short (status or "
                  "reason), never the remote answer's body")
async def test_bot(c: Call) -> dict:
    b = await get_or_404(c.session, Bot, c.path_int("id"), "bot")
    message = BotMessage(title="Vigil test message", severity=Severity.INFO, progress=Progress.TRIGGERED,
                         event_type="i_new", text=f"Vigil test message for bot {b.alias}: delivery works.",
                         url=c.request.app[SETTINGS].resolved_base_url())
    try:
        result = await send(config_of(b, c.request.app[SETTINGS].secret_key), message, c.request.app[HTTP])
    except DeliveryError as exc:
        # Whatever the remote end answered stays out: pointed at an internal page, this would read it back.
        return {"ok": False, "result": exc.reason or "the message was not delivered"}
    return {"ok": True, "result": result or "sent"}
