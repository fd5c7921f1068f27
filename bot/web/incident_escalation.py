"""The incident page's escalation state: where escalation stands (rule, level, next step and when) and every
delivery: who or which bot was paged, when, through which medium, and what came of it.

The same rows as GET /api/v1/incidents/{id}/deliveries, read in one bounded query: a storm that re-paged a
level for hours shows its latest MAX_DELIVERIES rows and says how many it left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Bot, Delivery, EscalationRule, Incident, Member

MAX_DELIVERIES = 50
# Deliveries below level 0 belong to no level of the rule (core/paging.py): -1 pages members assigned by hand;
# other negative levels are notices (subscriptions), not pages.
ASSIGNED_LEVEL = -1

MEDIA = {"im": "IM direct message", "sms": "SMS", "voice": "Voice call", "email": "E-mail",
         "app": "Vigil app (push)", "bot": "Group-chat bot", "im_chat": "IM app card in a group chat"}
OUTCOMES = {"pending": "Pending", "sent": "Delivered", "failed": "Failed", "canceled": "Canceled"}


@dataclass(frozen=True)
class Standing:
    """Where escalation stands, in words; `next_level` and `next_at` only while a next step is scheduled."""

    state: str
    current_level: str
    next_level: str
    next_at: datetime | None


def _level(level: int, loop: int, levels: int = 0) -> str:
    if level == ASSIGNED_LEVEL:
        return "assigned"  # its loop is the id of the event that assigned, not a round
    if level < 0:
        return "notice"
    return f"level {level + 1}" + (f" of {levels}" if levels else "") + (f", round {loop + 1}" if loop else "")


def standing(incident: Incident, last_paged: tuple[int, int] | None) -> Standing:
    """Escalation state of an incident in words. While running, the incident holds the *next* position and its
    due time (core/paging.py schedules it once the current one is paged); the current level is the last one
    a delivery went out for."""
    levels = len(((incident.escalation_snapshot or {}).get("definition") or {}).get("levels") or [])
    current = _level(*last_paged, levels) if last_paged else "none paged yet"
    state = incident.escalation_state
    if state == "running":
        return Standing("Escalating", current, _level(incident.escalation_level, incident.escalation_loop, levels),
                        incident.escalation_due_at)
    words = {"stopped": "Stopped (acknowledged or closed)", "done": "Finished: every level was paged",
             "none": "No escalation rule applied"}
    return Standing(words.get(state, state), current, "", None)


async def escalation_view(db: AsyncSession, incident: Incident) -> dict[str, Any]:
    rows = list((await db.execute(select(Delivery).where(Delivery.incident_id == incident.id)
                                  .order_by(Delivery.id.desc()).limit(MAX_DELIVERIES))).scalars())
    total = len(rows)
    if total == MAX_DELIVERIES:
        total = (await db.execute(select(func.count()).where(Delivery.incident_id == incident.id))).scalar_one()
    members = {d.member_id for d in rows if d.member_id is not None}
    bots = {d.bot_id for d in rows if d.bot_id is not None}
    names = dict((await db.execute(select(Member.id, Member.name).where(Member.id.in_(members)))).all()) \
        if members else {}
    aliases = dict((await db.execute(select(Bot.id, Bot.alias).where(Bot.id.in_(bots)))).all()) if bots else {}
    rule = await db.get(EscalationRule, incident.escalation_rule_id) if incident.escalation_rule_id else None
    paged = [(d.level, d.loop) for d in rows if d.level >= 0]
    return {
        "escalation": standing(incident, max(paged) if paged else None),
        "escalation_rule": rule.name if rule else "",
        "deliveries": [{
            "at": d.created_at,
            "to": names.get(d.member_id, f"member {d.member_id}") if d.member_id is not None
            else f"chat {d.address}" if d.medium == "im_chat" else aliases.get(d.bot_id, f"bot {d.bot_id}"),
            "medium": MEDIA.get(d.medium, d.medium), "level": _level(d.level, d.loop),
            "state": d.state, "outcome": OUTCOMES.get(d.state, d.state), "attempts": d.attempts,
            "error": d.last_error[:200], "fallback": d.fallback_from_id is not None,
            "updated_at": d.updated_at} for d in reversed(rows)],  # in the order they were sent
        "deliveries_left_out": total - len(rows),
    }
