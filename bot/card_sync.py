"""Keeps every posted card of an incident in step with it, on every platform (DESIGN rule 2).

Subscribed to all incident domain events: re-render the card once per platform and update each
recorded CardRef in place. Failures are recorded on the timeline; transient ones fail the job so
the job runner retries it (updates are idempotent).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.adapters.base import Adapter, MessageRef
from bot.card_view import incident_card
from bot.cards import render
from core import events, incidents, jobs
from core.errors import DeliveryError, NotFound
from core.models import CardRef
from core.types import Platform

log = logging.getLogger("vigil.card_sync")


async def update_cards(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    """Update every recorded card of the incident named by the event."""
    adapters: dict[Platform, Adapter] = ctx.services.get("adapters", {})
    base_url = ctx.services.get("base_url", "")
    async with ctx.sessionmaker() as session:
        try:
            incident = await incidents.get(session, args["incident_id"])
        except NotFound:
            return
        refs = (await session.execute(select(CardRef).where(CardRef.incident_id == incident.id))).scalars().all()
        if not refs:
            return
        card = await incident_card(session, incident, base_url, ctx.now())
        rendered: dict[Platform, dict] = {}
        retry = None
        for ref in refs:
            platform = Platform(ref.platform)
            adapter = adapters.get(platform)
            if adapter is None or not adapter.supports_update:
                continue
            if platform not in rendered:
                rendered[platform] = render(platform, card)
            try:
                await adapter.update_card(MessageRef(platform, ref.conversation_id, ref.message_id, ref.extra),
                                          rendered[platform])
            except DeliveryError as exc:
                events.note(session, incident.id, "card_update_failed", now=ctx.now(), detail={
                    "platform": platform.value, "conversation_id": ref.conversation_id, "error": str(exc),
                    "will_retry": exc.retryable})
                retry = retry or (exc if exc.retryable else None)
        await session.commit()
    if retry is not None:
        raise retry


def register() -> None:
    events.subscribe("cards", update_cards)
