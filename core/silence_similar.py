"""Silence similar: a one-off silence rule for alerts like an incident's, the action a card, the incident
page and the Open API offer ("Silence similar").

The rule matches every label of the incident (its title when it has none) on the incident's channel for
`minutes`. Whoever asks must be allowed to act on the incident (role and the channel's team scope, as for
every incident action); the incident's timeline says who silenced what, from where.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core import events, incidents
from core.errors import IllegalTransition
from core.models import SilenceRule

SILENCE_SIMILAR = "silence_similar"  # its timeline entry (not a domain event: the incident does not change)
DEFAULT_MINUTES = 1440


async def silence_similar(session: AsyncSession, incident_id: int, actor_id: int | None, *, minutes: int,
                          now: datetime, source: str) -> SilenceRule:
    """Create the rule and its timeline entry in the caller's transaction; `actor_id` None is the system or
    an admin token (callers check a member-less token of a lower role against the team scope first)."""
    incident = await incidents.get(session, incident_id)
    await incidents.may_act_on(session, incident, actor_id)
    if incident.merged_into_id is not None:
        raise IllegalTransition("incident was merged into another incident; act on that one")
    conds = [{"field": f"labels.{k}", "op": "equals", "values": [v]} for k, v in sorted(incident.labels.items())]
    conds = conds or [{"field": "title", "op": "equals", "values": [incident.title]}]
    rule = SilenceRule(channel_id=incident.channel_id, name=f"similar to #{incident.num}"[:100], filters=[conds],
                       starts_at=now, ends_at=now + timedelta(minutes=minutes), from_incident_id=incident.id,
                       created_at=now, updated_at=now)
    session.add(rule)
    await session.flush()
    events.note(session, incident_id, SILENCE_SIMILAR, now=now, actor_id=actor_id, source=source,
                detail={"rule_id": rule.id, "minutes": minutes})
    return rule
