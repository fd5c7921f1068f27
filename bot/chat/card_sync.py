"""Keeps every posted card of an incident in step with it, on every platform (DESIGN rule 2).

Subscribed to all incident domain events: re-render the card once per platform and update each
recorded CardRef in place. Failures are recorded on the timeline; transient ones fail the job so
the job runner retries it (updates are idempotent). A platform whose updates each spend a single-use
code (WeCom) gets one claimed from the CardRef first (bot/chat/card_codes.py), so no code is used twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.adapters.base import Adapter, MessageRef, with_update_codes
from bot.cards import render
from bot.chat import card_codes
from bot.chat.card_view import incident_card
from core import events, incidents, jobs
from core.errors import DeliveryError, NotFound
from core.models import CardRef
from core.types import Platform

log = logging.getLogger("vigil.card_sync")


async def update_cards(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """Update every recorded card of the incidents named by the events."""
    adapters: dict[Platform, Adapter] = ctx.services.get("adapters", {})
    if not any(a.supports_update for a in adapters.values()):
        return  # without an adapter that updates cards there is nothing to do
    retry: DeliveryError | None = None
    for args in {a["incident_id"]: a for a in batch if a["kind"] != events.I_NEW}.values():
        try:  # a new incident has no card yet; one update per incident shows its latest state
            await _update_incident_cards(ctx, adapters, args)
        except DeliveryError as exc:
            retry = exc
    if retry is not None:
        raise retry


async def _update_incident_cards(ctx: jobs.JobContext, adapters: dict[Platform, Adapter],
                                 args: dict[str, Any]) -> None:
    base_url = ctx.services.get("base_url", "")
    async with ctx.sessionmaker() as session:
        # Cards first: most events of most incidents have none, and then the incident is never loaded.
        refs = (await session.execute(select(CardRef).where(CardRef.incident_id == args["incident_id"]))
                ).scalars().all()
        if not refs:
            return
        try:
            incident = await incidents.get(session, args["incident_id"])
        except NotFound:
            return
        card = await incident_card(session, incident, base_url, ctx.now())
        rendered: dict[Platform, dict] = {}
        failed: list[tuple[CardRef, DeliveryError]] = []
        for ref in refs:
            platform = Platform(ref.platform)
            adapter = adapters.get(platform)
            if adapter is None or not adapter.supports_update:
                continue
            if platform not in rendered:
                rendered[platform] = render(platform, card)
            extra, claimed = dict(ref.extra), None
            if getattr(adapter, "spends_update_codes", False):
                # Claimed (and committed) in its own transaction before the platform sees it.
                claimed = await card_codes.claim(ctx.sessionmaker, ref.id)
                extra = with_update_codes(extra, [claimed] if claimed else [])
            try:
                await adapter.update_card(MessageRef(platform, ref.conversation_id, ref.message_id, extra),
                                          rendered[platform])
            except DeliveryError as exc:
                if claimed is not None and exc.retryable:
                    await card_codes.give_back(ctx.sessionmaker, ref.id, claimed)
                failed.append((ref, exc))
        # Written after the loop: on SQLite a flushed write here would hold the lock the claims need.
        for ref, exc in failed:
            events.note(session, incident.id, "card_update_failed", now=ctx.now(), detail={
                "platform": ref.platform, "conversation_id": ref.conversation_id, "error": str(exc),
                "will_retry": exc.retryable})
        await session.commit()
    retry = next((exc for _ref, exc in failed if exc.retryable), None)
    if retry is not None:
        raise retry


def register() -> None:
    events.subscribe("cards", update_cards)
