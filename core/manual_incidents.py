"""Manual paging: incidents a person opens by hand, their edits, and responders added to them.

A manual incident has no alerts, but it is the same row and starts with the same `i_new` event as one
ingest opens, so escalation, cards, group bots and outgoing webhooks all follow from it. Who is paged is
frozen on the incident as `assigned_to` (Flashduty's AssignedTo): named members (`person_ids`), one
escalation rule of the channel (`escalate_rule_id`), or, when neither is named, the channel's rules as
for any incident (core/paging.py reads it when escalation starts).
Edits and added responders go through the rules of every other action (core.incidents): observers are
refused, team-scoped channels are enforced, and each change is a timeline entry and a domain event
(Flashduty's i_r_title, i_r_desc, i_r_severity, i_a_rspd) that re-renders the incident's cards.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events, incidents
from core.errors import IllegalTransition, InvalidInput, NotFound
from core.incidents import Action
from core.models import Channel, EscalationRule, Incident, Member
from core.types import Progress, Severity

TITLE_MAX = 512
DESCRIPTION_MAX = 6144
RESPONDERS_MAX = 100
# What an edit of each field is called on the timeline and in webhooks (Flashduty's event types).
EDIT_EVENTS = {"title": events.I_R_TITLE, "description": events.I_R_DESC, "severity": events.I_R_SEVERITY}


def clean_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise InvalidInput("title must not be empty")
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"title is longer than {TITLE_MAX} characters")
    return title


def clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(f"description is longer than {DESCRIPTION_MAX} characters")
    return description


def clean_severity(severity: str) -> str:
    if severity not in Severity._value2member_map_:
        raise InvalidInput(f"severity must be Critical, Warning or Info, not {severity!r}")
    return severity


async def _members_exist(session: AsyncSession, member_ids: list[int], field: str) -> list[int]:
    ids = list(dict.fromkeys(member_ids))
    if len(ids) > RESPONDERS_MAX:
        raise InvalidInput(f"{field}: at most {RESPONDERS_MAX} members")
    found = set((await session.execute(select(Member.id).where(Member.id.in_(ids)))).scalars()) if ids else set()
    missing = [m for m in ids if m not in found]
    if missing:
        raise InvalidInput(f"{field}: unknown member {missing[0]}")
    return ids


async def create(session: AsyncSession, actor_id: int | None, *, channel_id: int, title: str, severity: str,
                 now: datetime, description: str = "", responder_ids: list[int] | None = None,
                 escalation_rule_id: int | None = None, source: str = "api") -> Incident:
    """Open an incident by hand on `channel_id` and page `responder_ids`, or through `escalation_rule_id`
    (a rule of that channel), or through the channel's matching rule when neither is given."""
    title, description, severity = clean_title(title), clean_description(description), clean_severity(severity)
    if responder_ids and escalation_rule_id is not None:
        raise InvalidInput("name responder_ids or escalation_rule_id, not both")
    member = await incidents.actor_may_act(session, actor_id)
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    if member is not None:
        await incidents.check_channel_scope(session, channel, member)
    assigned_to: dict | None = None
    ts = int(now.timestamp())
    responders: list[dict] = []
    if responder_ids:
        ids = await _members_exist(session, responder_ids, "responder_ids")
        assigned_to = {"type": "assign", "person_ids": ids, "assigned_at": ts}
        responders = [{"person_id": m, "assigned_at": ts, "acknowledged_at": 0} for m in ids]
    elif escalation_rule_id is not None:
        rule = await session.get(EscalationRule, escalation_rule_id)
        if rule is None or rule.channel_id != channel.id:
            raise InvalidInput(f"escalation_rule_id: channel {channel.id} has no escalation rule {escalation_rule_id}")
        if rule.status != "enabled":
            raise InvalidInput(f"escalation_rule_id: escalation rule {rule.id} is disabled")
        assigned_to = {"type": "assign", "escalate_rule_id": rule.id, "assigned_at": ts}
    incident = Incident(
        channel_id=channel.id, title=title, description=description, severity=severity, status=severity,
        progress=Progress.TRIGGERED.value, labels={}, dedup_key="",
        # Never a key grouping computes (those are digests), so no alert is ever grouped into it.
        group_key=f"manual:{uuid.uuid4().hex}", group_method="m", responders=responders, assigned_to=assigned_to,
        creator_id=actor_id, start_time=now, last_time=now, created_at=now, updated_at=now)
    session.add(incident)
    await session.flush()
    incident.num = str(incident.id)  # what responders type, as for an ingested incident
    channel.last_incident_at = now
    await events.emit(session, incident, events.I_NEW, now=now, actor_id=actor_id, source=source,
                      detail={"manual": True, **({"assigned_to": assigned_to} if assigned_to else {})})
    return incident


async def edit(session: AsyncSession, incident_id: int, actor_id: int | None, *, now: datetime,
               title: str | None = None, description: str | None = None, severity: str | None = None,
               source: str = "api") -> Incident:
    """Change the title, description or severity; each changed field is its own timeline entry and event.
    Allowed in every progress (a closed incident's record is still corrected), but not on a merged one."""
    wanted = {"title": None if title is None else clean_title(title),
              "description": None if description is None else clean_description(description),
              "severity": None if severity is None else clean_severity(severity)}
    if all(v is None for v in wanted.values()):
        raise InvalidInput("name at least one of title, description, severity")
    await incidents.actor_may_act(session, actor_id)
    incident = await incidents.get(session, incident_id, lock=True)
    await incidents.may_act_on(session, incident, actor_id)
    if incident.merged_into_id is not None:
        raise IllegalTransition("incident was merged into another incident; act on that one")
    for field, value in wanted.items():
        old = getattr(incident, field)
        if value is None or value == old:
            continue
        setattr(incident, field, value)
        if field == "severity" and incident.status in Severity._value2member_map_:
            incident.status = value  # status is the severity until every alert recovered (then "Ok")
        incident.updated_at = now
        await events.emit(session, incident, EDIT_EVENTS[field], now=now, actor_id=actor_id, source=source,
                          detail={"from": old, "to": value})
    return incident


async def add_responders(session: AsyncSession, incident_id: int, actor_id: int | None, *, member_ids: list[int],
                         now: datetime, source: str = "api") -> Incident:
    """Add members to the responders of an open incident and page them; the others stay (unlike reassign)."""
    if not member_ids:
        raise InvalidInput("member_ids must name at least one member")
    ids = await _members_exist(session, member_ids, "member_ids")
    incident = await incidents.begin(session, incident_id, Action.REASSIGN, actor_id)
    present = {r.get("person_id") for r in incident.responders}
    added = [m for m in ids if m not in present]
    if not added:
        raise InvalidInput("member_ids: every member named is already a responder")
    ts = int(now.timestamp())
    incident.responders = [*incident.responders,
                           *({"person_id": m, "assigned_at": ts, "acknowledged_at": 0} for m in added)]
    incident.updated_at = now
    await events.emit(session, incident, events.I_A_RSPD, now=now, actor_id=actor_id, source=source,
                      detail={"person_ids": added})
    return incident
