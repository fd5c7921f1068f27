"""Subscription notices: the incident fan-out's subscriber that tells subscribers about matching incidents.

For a batch of incident events it reads every enabled subscription rule in one query (compiled once per
rule version and kept), the batch's incidents in another, and the members (and teams) the matched rules
reach; then writes one delivery per subscriber and medium, which the `deliver` job sends with retries
and fallback like a page. A notice is keyed by (incident, event, member, medium): a re-run fan-out, two
matching rules or a second acknowledgement never notify a subscriber twice. Subscribers are not added
to the incident's responders, and their deliveries sit at no escalation level (core/paging.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import custom_fields, events, jobs, paging
from core.conditions import ConditionError
from core.conditions import subject as condition_subject
from core.models import Delivery, Incident, Member, Team
from core.models.subscriptions import SubscriptionRule
from core.subscriptions import EVENTS, CompiledRule, Subscriber, compile_rule, subscribers

log = logging.getLogger("vigil.subscriptions")

# rule id -> (version, compiled rule, or None when its stored filters no longer compile)
_COMPILED: dict[int, tuple[str, CompiledRule | None]] = {}


async def enabled_rules(session: AsyncSession) -> list[CompiledRule]:
    """Every enabled rule, compiled: one query; a rule compiles again only when its version changed."""
    rows = (await session.execute(select(
        SubscriptionRule.id, SubscriptionRule.version, SubscriptionRule.member_id, SubscriptionRule.team_id,
        SubscriptionRule.channel_ids, SubscriptionRule.filters, SubscriptionRule.events, SubscriptionRule.media)
        .where(SubscriptionRule.status == "enabled").order_by(SubscriptionRule.id))).all()
    live = {row.id for row in rows}
    for gone in [i for i in _COMPILED if i not in live]:
        del _COMPILED[gone]
    out = []
    for row in rows:
        cached = _COMPILED.get(row.id)
        if cached is None or cached[0] != row.version:
            try:
                compiled: CompiledRule | None = compile_rule(
                    row.id, member_id=row.member_id, team_id=row.team_id, channel_ids=row.channel_ids,
                    filters=row.filters, events=row.events, media=row.media)
            except ConditionError:  # validated when saved; one bad rule must not stop the others
                log.exception("subscription rule %s does not compile; it notifies nobody", row.id)
                compiled = None
            cached = _COMPILED[row.id] = (row.version, compiled)
        if cached[1] is not None:
            out.append(cached[1])
    return out


async def on_events(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """Subscriber of the incident fan-out: notices for the batch's new, acknowledged and closed incidents."""
    now = ctx.now()
    async with ctx.sessionmaker() as session:
        rules = await enabled_rules(session)
        if not rules:
            return
        ids = sorted({a["incident_id"] for a in batch})
        incidents = {i.id: i for i in (await session.execute(select(Incident).where(Incident.id.in_(ids)))).scalars()}
        wanted: list[tuple[Incident, str, list[CompiledRule]]] = []
        fields = await custom_fields.for_conditions(session, incidents.values(), (r.filters for r in rules))
        for args in batch:
            incident = incidents.get(args["incident_id"])
            if incident is None:
                continue
            subj = condition_subject(title=incident.title, description=incident.description,
                                     severity=incident.severity, labels=incident.labels,
                                     channel_id=incident.channel_id, fields=fields.get(incident.id))
            matched = [r for r in rules if r.wants(args["kind"], incident.channel_id, subj)]
            if matched:
                wanted.append((incident, args["kind"], matched))
        if not wanted:
            return
        team_members = await _team_members(session, {r.team_id for _, _, m in wanted for r in m if r.team_id})
        reached = [(incident, kind, subscribers(matched, team_members)) for incident, kind, matched in wanted]
        members = await _members(session, {s.member_id for _, _, subs in reached for s in subs})
        await _notify(session, reached, members, now)
        await session.commit()


async def _team_members(session: AsyncSession, team_ids: Iterable[int]) -> dict[int, list[int]]:
    team_ids = list(team_ids)
    if not team_ids:
        return {}
    rows = (await session.execute(select(Team.id, Team.member_ids).where(Team.id.in_(team_ids)))).all()
    return {team_id: list(member_ids or []) for team_id, member_ids in rows}


async def _members(session: AsyncSession, ids: set[int]) -> dict[int, Member]:
    if not ids:
        return {}
    return {m.id: m for m in (await session.execute(select(Member).where(Member.id.in_(ids)))).scalars()}


async def _notify(session: AsyncSession, reached: list[tuple[Incident, str, list[Subscriber]]],
                  members: dict[int, Member], now: datetime) -> None:
    """Write the deliveries not written before (one query to tell, one to insert) and note each event's
    notices on its incident's timeline."""
    planned: list[tuple[Incident, str, Member, list[int], list[dict[str, Any]]]] = []
    for incident, kind, subs in reached:
        for sub in subs:
            member = members.get(sub.member_id)
            if member is None:  # a team still lists a member who was deleted
                continue
            media = sub.chosen_media(incident.severity, member.preferences)
            rows = [paging.delivery_row(
                incident.id, member, medium, now, event_type=paging.SUBSCRIPTION_PREFIX + kind,
                level=paging.SUBSCRIPTION_LEVEL, loop=EVENTS.index(kind),
                key=f"sub:{incident.id}:{kind}:{member.id}:{medium}") for medium in media]
            planned.append((incident, kind, member, sub.rule_ids, rows))
    keys = [r["dedup_key"] for *_, rows in planned for r in rows]
    if not keys:
        return
    done = set((await session.execute(select(Delivery.dedup_key).where(Delivery.dedup_key.in_(keys)))).scalars())
    notes: dict[tuple[int, str], list[dict[str, Any]]] = {}
    fresh: list[dict[str, Any]] = []
    for incident, kind, member, rule_ids, rows in planned:
        new = [r for r in rows if r["dedup_key"] not in done]
        if not new:
            continue
        fresh += new
        notes.setdefault((incident.id, kind), []).append({
            "person_id": member.id, "person_name": member.name, "media": [r["medium"] for r in new],
            "rule_ids": rule_ids})
    await paging.insert_deliveries(session, fresh, now)
    for (incident_id, kind), persons in notes.items():
        events.note(session, incident_id, "subscription_notify", now=now, detail={
            "event": kind, "persons": persons,
            "reason": "subscription rules matched: subscribers are told, not paged, and are not responders"})


def register() -> None:
    """Subscribe to incident events (called by the composition root, after the escalation engine)."""
    events.subscribe("subscriptions", on_events, frozenset(EVENTS))
