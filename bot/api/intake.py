"""/api/v1/integrations/{id}/unrouted-events and /mail-rules: what an integration could not route, and how an
e-mail integration reads its mail."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from core.errors import InvalidInput
from core.models import Integration, MailRules, UnroutedEvent
from core.unrouted import KEEP
from webhooks import mail


class UnroutedEventOut(BaseModel):
    received_at: int = Field(description="Unix seconds")
    alert_key: str
    event_status: str
    title: str
    labels: dict[str, str]
    channel_id: int | None = Field(description="the channel routing chose, when it was missing or disabled")
    reason: str = Field(description="why no channel took the event")


def unrouted_out(e: UnroutedEvent) -> dict[str, Any]:
    return {"received_at": ts(e.received_at), "alert_key": e.alert_key, "event_status": e.event_status,
            "title": e.title, "labels": dict(e.labels or {}), "channel_id": e.channel_id, "reason": e.reason}


@endpoint("GET", "/integrations/{id}/unrouted-events", query=Page, response=UnroutedEventOut, paged=True,
          tag="integrations", summary=f"Events this integration refused because no channel took them, newest first "
                                      f"(the latest {KEEP} are kept)")
async def list_unrouted(c: Call) -> dict:
    i = await get_or_404(c.session, Integration, c.path_int("id"), "integration")
    stmt = select(UnroutedEvent).where(UnroutedEvent.integration_id == i.id).order_by(UnroutedEvent.id.desc())
    return await paged(c.session, stmt, c.query, unrouted_out)


async def _email_integration(c: Call) -> Integration:
    i = await get_or_404(c.session, Integration, c.path_int("id"), "integration")
    if i.type != "email":
        raise InvalidInput(f"integration {i.id} is a {i.type} integration; only e-mail integrations have mail rules")
    return i


@endpoint("GET", "/integrations/{id}/mail-rules", response=mail.MailRules, tag="integrations",
          summary="How an e-mail integration turns a message into an alert (defaults until set)")
async def get_mail_rules(c: Call) -> dict:
    i = await _email_integration(c)
    row = await c.session.get(MailRules, i.id)
    return mail.MailRules.model_validate(row.rules if row is not None else {}).model_dump(mode="json")


@endpoint("PUT", "/integrations/{id}/mail-rules", body=mail.MailRules, response=mail.MailRules,
          tag="integrations", need="admin",
          summary="Set how an e-mail integration reads mail: dedup key source, severity keywords, recovery words")
async def put_mail_rules(c: Call) -> dict:
    i = await _email_integration(c)
    rules = c.body.model_dump(mode="json")
    row = await c.session.get(MailRules, i.id)
    if row is None:
        c.session.add(MailRules(integration_id=i.id, rules=rules, updated_at=c.now))
    else:
        row.rules, row.updated_at = rules, c.now
    await c.session.commit()
    return rules
