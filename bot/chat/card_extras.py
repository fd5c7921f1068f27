"""What a card shows beyond the incident itself: its channel's custom actions and the Timeline button (on every
card), and the latest timeline entries when a clicker asked to read them (bot/chat/card_view.py adds these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cards.model import MAX_CUSTOM_ACTIONS, MAX_TIMELINE, CustomButton, TimelineLine
from bot.cards.timeline_words import headline, note, people
from core.models import CustomAction, Incident, Member, TimelineEntry


async def card_extras(session: AsyncSession, incident: Incident, now: datetime, *, timeline: bool) -> dict[str, Any]:
    """IncidentCard fields: custom_actions (none on a merged incident, as on the web page: act on the one it was
    merged into), timeline_button, and with `timeline` the latest MAX_TIMELINE entries, newest first."""
    extras: dict[str, Any] = {"timeline_button": True}
    if incident.merged_into_id is None:
        rows = await session.execute(select(CustomAction.id, CustomAction.name)
                                     .where(CustomAction.channel_id == incident.channel_id)
                                     .order_by(CustomAction.id).limit(MAX_CUSTOM_ACTIONS))
        extras["custom_actions"] = tuple(CustomButton(i, n) for i, n in rows.all() if n.strip())
    if timeline:
        extras["timeline"] = await latest_timeline(session, incident.id, now)
    return extras


async def latest_timeline(session: AsyncSession, incident_id: int, now: datetime) -> tuple[TimelineLine, ...]:
    """The latest entries of the incident's timeline, newest first, in the words of the incident page."""
    entries = (await session.execute(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)
                                     .order_by(TimelineEntry.id.desc()).limit(MAX_TIMELINE))).scalars().all()
    ids = people(entries)
    names = {i: n for i, n in (await session.execute(select(Member.id, Member.name).where(Member.id.in_(ids)))).all()} \
        if ids else {}
    return tuple(TimelineLine(_aware(e.at or now), headline(e.kind, e.actor_id, e.source, e.detail, names),
                              note(e.kind, e.detail)) for e in entries)


def _aware(moment: datetime) -> datetime:
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
