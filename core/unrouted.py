"""Events no channel took: why, and a bounded record of them per integration.

A shared integration whose routing rules match nothing (and that names no default channel), or an event
routed to a channel that was deleted or disabled, has nowhere to go. Flashduty refuses such pushes; Vigil
refuses them too (the pusher sees an error) and keeps the latest `KEEP` of them per integration, so an
admin can see what arrived and why it went nowhere (GET /api/v1/integrations/{id}/unrouted-events).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from prometheus_client import Counter
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import UnroutedEvent
from core.types import AlertEvent

KEEP = 100  # per integration; older records are pruned as new ones arrive

UNROUTED = Counter("vigil_events_unrouted_total", "Alert events refused because no channel took them",
                   ["reason"])


class Unrouted(StrEnum):
    """Why no channel took an event."""

    NO_ROUTE = "no_route"
    CHANNEL_MISSING = "channel_missing"
    CHANNEL_DISABLED = "channel_disabled"


def describe(why: Unrouted, channel_id: int | None) -> str:
    """The reason in words, as the pusher and the admin read it."""
    if why is Unrouted.NO_ROUTE:
        return "no routing case of the integration matched the event and it has no default channel"
    if why is Unrouted.CHANNEL_MISSING:
        return f"the event was routed to channel {channel_id}, which does not exist"
    return f"the event was routed to channel {channel_id}, which is disabled"


async def record(session: AsyncSession, integration_id: int,
                 events: Sequence[tuple[AlertEvent, Unrouted, int | None]], now: datetime) -> None:
    """Keep these events of one integration in the caller's transaction, then prune past `KEEP`."""
    for ev, why, channel_id in events[-KEEP:]:
        session.add(UnroutedEvent(
            integration_id=integration_id, received_at=now, alert_key=ev.alert_key[:255],
            event_status=ev.event_status.value, title=ev.title[:512], labels=dict(ev.labels),
            channel_id=channel_id, reason=describe(why, channel_id)))
    await session.flush()
    await prune(session, integration_id)


async def prune(session: AsyncSession, integration_id: int, keep: int = KEEP) -> None:
    """Delete all but the latest `keep` records of an integration."""
    oldest_kept = (select(UnroutedEvent.id).where(UnroutedEvent.integration_id == integration_id)
                   .order_by(UnroutedEvent.id.desc()).offset(keep - 1).limit(1).scalar_subquery())
    await session.execute(delete(UnroutedEvent).where(
        UnroutedEvent.integration_id == integration_id, UnroutedEvent.id < oldest_kept))


async def latest(session: AsyncSession, integration_id: int, limit: int) -> list[UnroutedEvent]:
    """The integration's latest records, newest first."""
    rows = await session.execute(select(UnroutedEvent).where(UnroutedEvent.integration_id == integration_id)
                                 .order_by(UnroutedEvent.id.desc()).limit(limit))
    return list(rows.scalars())
