"""Builds the IncidentCard view model of an incident (the only card code that reads the database)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cards.model import IncidentCard
from bot.cards.timeline_words import headline, people
from bot.chat.actions import to_card_actions
from bot.chat.card_extras import card_extras
from bot.chat.card_fields import card_fields
from core import images as alert_images
from core.incidents import allowed_actions
from core.models import Channel, Incident, Member, TimelineEntry
from core.types import Progress, Severity

# What a member did that the card says it did last ("Acknowledged by Ann via Slack"): the lifecycle, not comments.
LAST_ACTION_KINDS = ("i_ack", "i_unack", "i_rslv", "i_reopen", "i_snooze", "i_wake", "i_assign", "i_merge",
                     "silence_similar")


async def incident_card(session: AsyncSession, incident: Incident, base_url: str, now: datetime, *,
                        timeline: bool = False) -> IncidentCard:
    """The card of `incident` as it is now; with `timeline`, carrying its latest timeline entries too."""
    channel = await session.get(Channel, incident.channel_id)
    ids = [r["person_id"] for r in incident.responders]
    last = (await session.execute(
        select(TimelineEntry).where(TimelineEntry.incident_id == incident.id, TimelineEntry.kind.in_(LAST_ACTION_KINDS))
        .order_by(TimelineEntry.id.desc()).limit(1))).scalar_one_or_none()
    wanted = set(ids) | (people([last]) if last else set())
    names = {m.id: m.name for m in (await session.execute(select(Member).where(Member.id.in_(wanted)))).scalars()} \
        if wanted else {}
    images = (await alert_images.of_incidents(session, [incident.id]))[incident.id]
    progress = Progress(incident.progress)
    actions = allowed_actions(progress, merged=incident.merged_into_id is not None,
                              snoozed=incident.snoozed_until is not None)
    return IncidentCard(
        incident_id=incident.id, num=incident.num or str(incident.id), title=incident.title,
        severity=Severity(incident.severity), progress=progress, url=f"{base_url}/incidents/{incident.id}",
        updated_at=incident.updated_at or now, channel_name=channel.name if channel else "",
        responders=tuple(names.get(i, f"member {i}") for i in ids),
        acknowledged_by=tuple(names.get(r["person_id"], "") for r in incident.responders if r.get("acknowledged_at")),
        labels=dict(incident.labels), alert_count=incident.alert_cnt, description=incident.description,
        snoozed_until=incident.snoozed_until, actions=to_card_actions(a.value for a in actions), images=images,
        **await card_extras(session, incident, now, timeline=timeline),
        **await card_fields(session, incident),
        last_action=headline(last.kind, last.actor_id, last.source, last.detail, names) if last else "",
    )
