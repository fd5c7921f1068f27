"""/api/v1/integrations/{id}/unrouted-events: what an integration could not route."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from core.models import Integration, UnroutedEvent
from core.unrouted import KEEP


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
