"""The escalation engine and delivery runner: who is paged, over what, with retries and fallback.

Everything here is driven by durable jobs (core/jobs.py) and domain events (core/events.py):

* `escalation` subscriber: i_new / i_reopen start escalation; i_ack / i_rslv stop it; i_assign
  (escalate) jumps a level now; i_assign (reassign) pages the new responders; i_wake re-pages.
* `escalate` job: one step: gate (closed / acked / snoozed) -> resolve targets (members, teams,
  schedules on call now) -> one Delivery row per member and medium -> schedule the next step.
* `deliver` job: one attempt of one Delivery; transient errors retry with backoff, permanent
  errors and exhausted retries hand over to the member's fallback chain. Every attempt is on
  the timeline. A delivery re-checks the incident right before sending, so nothing pages after
  an acknowledgement.

Decisions come from core/escalation.py and core/notify.py (pure); this module only applies them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from core import custom_fields, events, images, incidents, jobs, schedules
from core.conditions import compile_tree
from core.conditions import subject as condition_subject
from core.errors import DeliveryError, DeliveryQueued, NotFound
from core.escalation import Position, RuleDefinition, gate, next_level, plan_step, select_rule
from core.links import incident_link
from core.models import (
    Channel,
    Delivery,
    EscalationRule,
    Incident,
    Job,
    Member,
    Schedule,
    Team,
    Template,
    TimelineEntry,
)
from core.notify import DEFAULT_FALLBACK, RetryPolicy, after_failure, media_for, next_fallback
from core.template_sandbox import render_all
from core.templates import Rendered, Scope, TemplateSet, incident_context
from core.types import Progress, urgency_of

log = logging.getLogger("vigil.paging")

DELIVERIES_FAILED = Counter("vigil_deliveries_failed_total", "Deliveries given up on a medium", ["medium"])
PAGES_UNDELIVERABLE = Counter("vigil_pages_undeliverable_total",
                              "Pages to a member that no medium could deliver (the next level is paged at once)")
PAGE_EVENTS = frozenset({"i_new", "i_reopen", "i_assign", "i_wake", "escalation"})
# A subscription notice (core/subscription_notices.py) is a delivery at no escalation level: an ack or a close
# does not cancel it, its failure does not escalate, and its event type ("sub_i_new"...) is not a page's.
SUBSCRIPTION_LEVEL = -2
SUBSCRIPTION_PREFIX = "sub_"
SUBSCRIPTION_MARK = "[Subscription]"


@dataclass(frozen=True)
class Recipient:
    member_id: int
    name: str
    email: str | None
    phone: str | None
    time_zone: str


@dataclass(frozen=True)
class Page:
    """A rendered notification, ready for a sender."""

    incident_id: int
    delivery_id: int
    event_type: str
    severity: str
    subject: str | None
    text: str
    html: str | None
    url: str


@dataclass(frozen=True)
class Sent:
    """A page a provider took: its message id, which provider of the medium sent it, and the providers that
    failed before it in the same attempt ("<provider>: <error>; ...", recorded on the delivery)."""

    message_id: str
    provider: str = ""
    skipped: str = ""


# A sender returns the provider's message id, or a Sent when it knows more (bot/media/senders.py).
Sender = Callable[[Recipient, Page], Awaitable[str | Sent]]


def _snapshot(incident: Incident) -> tuple[RuleDefinition, int] | None:
    snap = incident.escalation_snapshot
    if not snap:
        return None
    return _definition(_frozen(snap["definition"])), int(snap.get("gen", 0))


def _frozen(value: Any) -> bytes:
    """A JSON value as a canonical key (sorted keys), for the caches below."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@functools.lru_cache(maxsize=512)
def _definition(frozen: bytes) -> RuleDefinition:
    """A frozen rule definition, parsed once: every incident of a rule carries the same JSON, and
    validating it cost more than the rest of an escalation step. Nothing mutates a definition."""
    return RuleDefinition.model_validate_json(frozen)


def _step_job_id(incident_id: int, gen: int, at: Position) -> str:
    return f"escalate:{incident_id}:{gen}:{at.level}:{at.loop}"


async def _schedule_step(session: AsyncSession, incident: Incident, gen: int, at: Position, due: datetime,
                         *, wake: bool = False) -> None:
    incident.escalation_level, incident.escalation_loop = at.level, at.loop
    incident.escalation_due_at = due
    incident.escalation_state = "running"
    await jobs.schedule(session, "escalate", {"incident_id": incident.id, "gen": gen, "level": at.level,
                                              "loop": at.loop, "wake": wake},
                        due_at=due, job_id=_step_job_id(incident.id, gen, at), urgency=urgency_of(incident.severity))


async def channel_rules(session: AsyncSession, channel_id: int) -> list[tuple[int, int, RuleDefinition]]:
    """The channel's enabled escalation rules as (id, priority, definition)."""
    return (await channel_rules_many(session, {channel_id})).get(channel_id, [])


async def channel_rules_many(session: AsyncSession, channel_ids: set[int]
                             ) -> dict[int, list[tuple[int, int, RuleDefinition]]]:
    """Enabled escalation rules of several channels, in one query."""
    rows = (await session.execute(
        select(EscalationRule.id, EscalationRule.priority, EscalationRule.channel_id, EscalationRule.definition)
        .where(EscalationRule.channel_id.in_(channel_ids), EscalationRule.status == "enabled"))).all()
    found: dict[int, list[tuple[int, int, RuleDefinition]]] = {}
    for rule_id, prio, channel_id, definition in rows:
        found.setdefault(channel_id, []).append(
            (rule_id, prio, _definition(_frozen(definition))))
    return found


async def start(session: AsyncSession, incident: Incident, now: datetime,
                rules: list[tuple[int, int, RuleDefinition]] | None = None, *, entry_id: int | None = None) -> None:
    """Pick the channel's first matching rule, freeze it onto the incident, and page level 0: at once, in
    this transaction, when the rule has no delay (one queue hop and one transaction fewer per first
    page), else by a job at its due time. `incident` must be locked.

    `entry_id` is the event that starts it: a fan-out re-run after a crash (its commit done, its job not
    yet marked done) finds the escalation already started by that event and pages nobody twice."""
    if entry_id is not None and (incident.escalation_snapshot or {}).get("entry_id") == entry_id:
        return
    assigned = incident.assigned_to or {}
    if assigned.get("type") == "assign" and assigned.get("person_ids"):
        # Paged by hand (core/manual_incidents.py): the named members, through their own preferences.
        # Keyed by the starting event, so a re-run pages nobody twice and a reopen pages them again.
        members = await _members(session, assigned["person_ids"])
        await _page_members(session, incident, members, None, now, level=-1, loop=entry_id or 0,
                            event_type="i_new")
        return
    if rules is None:
        rules = await channel_rules(session, incident.channel_id)
    forced = assigned.get("escalate_rule_id") if assigned.get("type") == "assign" else None
    if forced is not None:  # a rule chosen by hand applies whatever its filters say
        rule_id = forced if any(i == forced for i, _, _ in rules) else None
        reason = f"the escalation rule chosen for this incident ({forced}) is disabled or gone"
    else:
        fields = await custom_fields.for_conditions(session, [incident], (compile_tree(d.filters) for _, _, d in rules))
        subj = condition_subject(title=incident.title, description=incident.description, severity=incident.severity,
                                 labels=incident.labels, channel_id=incident.channel_id, fields=fields.get(incident.id))
        rule_id = select_rule(rules, subj, now)
        reason = "no escalation rule of the channel matches this incident"
    if rule_id is None:
        incident.escalation_state = "none"
        events.note(session, incident.id, "escalation_none", now=now, detail={"reason": reason})
        return
    definition = next(d for i, _, d in rules if i == rule_id)
    gen = int((incident.escalation_snapshot or {}).get("gen", 0)) + 1
    incident.escalation_rule_id = rule_id
    incident.escalation_snapshot = {"rule_id": rule_id, "definition": definition.model_dump(mode="json"), "gen": gen,
                                    "entry_id": entry_id}
    due = now + timedelta(seconds=definition.delay_seconds)
    if due > now:
        await _schedule_step(session, incident, gen, Position(0, 0), due)
        return
    incident.escalation_level, incident.escalation_loop = 0, 0
    incident.escalation_due_at, incident.escalation_state = now, "running"
    members = await _oncall(session, definition.levels[0].targets.model_dump(), now)
    await _run_step(session, incident, Position(0, 0), members, now, woken=False)


async def stop(session: AsyncSession, incident: Incident, now: datetime, reason: str) -> None:
    """Stop escalating and cancel every pending page of the incident."""
    if incident.escalation_state == "running":
        incident.escalation_state = "stopped"
        incident.escalation_due_at = None
        events.note(session, incident.id, "escalation_stopped", now=now, detail={"reason": reason})
    await session.execute(
        update(Delivery).where(Delivery.incident_id == incident.id, Delivery.state == "pending",
                               Delivery.member_id.is_not(None), Delivery.level != SUBSCRIPTION_LEVEL)
        .values(state="canceled", last_error=reason, updated_at=now).execution_options(synchronize_session=False))


STARTS = frozenset({"i_new", "i_reopen"})


async def on_events(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """Escalation subscriber for a batch of incident domain events, in commit order.

    Incidents whose only events here are starts (new, reopened) are started together in one
    transaction: their rules, on-call targets and first pages cost a few statements for the batch.
    Every other event goes one by one, in order, so an incident's events never overtake each other.
    """
    busy = {a["incident_id"] for a in batch if a["kind"] not in STARTS}
    starts, rest = [], []
    for a in batch:
        (starts if a["kind"] in STARTS and a["incident_id"] not in busy else rest).append(a)
    if starts:
        await _start_many(ctx, starts)
    for args in rest:
        await on_event(ctx, args)


async def _start_many(ctx: jobs.JobContext, starts: list[dict[str, Any]]) -> None:
    now = ctx.now()
    async with ctx.sessionmaker() as session:
        ids = sorted({a["incident_id"] for a in starts})
        # Read first, lock last (see on_event); locks are taken in id order, like every batch lock here.
        channel_ids = set((await session.execute(
            select(Incident.channel_id).where(Incident.id.in_(ids)))).scalars().all())
        rules = await channel_rules_many(session, channel_ids)
        locked = (await session.execute(
            select(Incident).where(Incident.id.in_(ids)).order_by(Incident.id).with_for_update()
            .execution_options(populate_existing=True))).scalars().all()
        by_id = {i.id: i for i in locked}
        # No autoflush: the incidents' changes and timeline notes go in one flush at the commit.
        with session.no_autoflush:
            async with deliveries_together(session, now):
                for args in starts:
                    incident = by_id.get(args["incident_id"])
                    if incident is not None:
                        await start(session, incident, now, rules.get(incident.channel_id, []),
                                    entry_id=args["entry_id"])
        await session.commit()


async def on_event(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    """Escalation subscriber for one incident domain event."""
    kind, now = args["kind"], ctx.now()
    async with ctx.sessionmaker() as session:
        # Read first, lock last: ingest updates this incident row on every event of its alerts, and
        # on PostgreSQL it would wait for our lock through every await taken while holding it.
        entry = await session.get(TimelineEntry, args["entry_id"])
        detail = entry.detail if entry else {}
        rules = None
        if kind in ("i_new", "i_reopen"):
            channel_id = (await session.execute(
                select(Incident.channel_id).where(Incident.id == args["incident_id"]))).scalar_one_or_none()
            rules = await channel_rules(session, channel_id) if channel_id is not None else []
        try:
            incident = await incidents.get(session, args["incident_id"], lock=True)
        except NotFound:
            return
        snap = _snapshot(incident)
        if kind in ("i_new", "i_reopen"):
            await start(session, incident, now, rules, entry_id=args["entry_id"])
        elif kind == "i_ack" and snap and snap[0].stop_on == "ack":
            await stop(session, incident, now, "acknowledged")
        elif kind in ("i_rslv", "i_merge") and incident.progress == Progress.CLOSED.value:
            await stop(session, incident, now, "closed")
        elif kind == "i_assign" and detail.get("type") == "escalate":
            if snap is None:
                events.note(session, incident.id, "escalation_none", now=now,
                            detail={"reason": "manual escalate: the incident has no escalation rule"})
            else:
                rule, gen = snap
                target = next_level(rule, Position(incident.escalation_level, incident.escalation_loop))
                if target.level == incident.escalation_level and target.loop > rule.repeat and not rule.repeat_until_ack:
                    target = Position(target.level, rule.repeat)  # already at the end: page the last level again
                incident.escalation_snapshot = {**incident.escalation_snapshot, "gen": gen + 1}
                await _schedule_step(session, incident, gen + 1, target, now)
        elif (kind == "i_assign" and detail.get("type") == "reassign") or kind == "i_a_rspd":
            members = await _members(session, detail.get("person_ids", []))
            await _page_members(session, incident, members, None, now, level=-1, loop=entry.id if entry else 0,
                                event_type=kind)
        elif kind == "i_wake" and snap and incident.progress != Progress.CLOSED.value:
            _rule, gen = snap
            incident.escalation_snapshot = {**incident.escalation_snapshot, "gen": gen + 1}
            await _schedule_step(session, incident, gen + 1,
                                 Position(incident.escalation_level, incident.escalation_loop), now, wake=True)
        await session.commit()


@jobs.batch_job("escalate")
async def escalate_steps(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """Run escalation steps whose incidents are still where each step expects them, in one transaction:
    when a storm's incidents all reach their next level at once, their steps share their statements."""
    now = ctx.now()

    def superseded(incident: Incident, args: dict[str, Any]) -> bool:  # acked, re-escalated, restarted
        snap = _snapshot(incident)
        return (snap is None or snap[1] != args["gen"] or incident.escalation_state != "running"
                or (incident.escalation_level, incident.escalation_loop) != (args["level"], args["loop"]))

    async with ctx.sessionmaker() as session:
        # Read first, lock last (as in on_event): who is on call is resolved before the row locks.
        ids = sorted({a["incident_id"] for a in batch})
        seen = {i.id: i for i in (await session.execute(select(Incident).where(Incident.id.in_(ids)))).scalars()}
        wanted = [a for a in batch if a["incident_id"] in seen and not superseded(seen[a["incident_id"]], a)]
        if not wanted:
            return
        members = [await _oncall(session, _snapshot(seen[a["incident_id"]])[0].levels[a["level"]].targets.model_dump(),
                                 now) for a in wanted]
        locked = {i.id: i for i in (await session.execute(
            select(Incident).where(Incident.id.in_(sorted({a["incident_id"] for a in wanted})))
            .order_by(Incident.id).with_for_update().execution_options(populate_existing=True))).scalars()}
        with session.no_autoflush:
            async with deliveries_together(session, now):
                for a, who in zip(wanted, members, strict=True):
                    incident = locked.get(a["incident_id"])
                    if incident is None or superseded(incident, a):
                        continue
                    await _run_step(session, incident, Position(a["level"], a["loop"]), who, now,
                                    woken=bool(a.get("wake")))
        await session.commit()


async def _run_step(session: AsyncSession, incident: Incident, at: Position, members: list[Member], now: datetime,
                    *, woken: bool) -> None:
    """Page level `at` of a locked incident that stands there (gate first: acked, closed, snoozed), and
    schedule the next step; the caller commits."""
    rule, gen = _snapshot(incident)
    level = rule.levels[at.level]
    verdict = gate(rule, Progress(incident.progress), incident.snoozed_until, now)
    if woken and verdict == "stop" and incident.progress != Progress.CLOSED.value:
        verdict = "go"  # a snooze ended: re-notify the current level once
    if verdict == "stop":
        await stop(session, incident, now, "acknowledged" if incident.progress == "Processing" else "closed")
        return
    if verdict == "wait":
        incident.escalation_snapshot = {**incident.escalation_snapshot, "gen": gen + 1}
        await _schedule_step(session, incident, gen + 1, at, incident.snoozed_until)
        return
    step = plan_step(rule, at, now)
    paged = await _page_members(session, incident, members, level.media, now, level=at.level, loop=at.loop,
                                event_type="escalation" if not woken else "i_wake")
    bots = await _post_bots(session, incident, level.bot_ids, now, level=at.level, loop=at.loop)
    chats = await _post_im_chats(session, incident, level.im_chats, now, level=at.level, loop=at.loop)
    notify: dict[str, Any] = {"rule_id": incident.escalation_rule_id, "layer_idx": at.level, "loop": at.loop,
                              "fire_type": "fire" if at.loop == 0 else "refire", "persons": paged, "bots": bots}
    if chats:
        notify["im_chats"] = chats
    events.note(session, incident.id, "i_notify", now=now, detail=notify)
    nobody = not members and not level.bot_ids and not level.im_chats
    if nobody:
        events.note(session, incident.id, "escalation_empty", now=now,
                    detail={"layer_idx": at.level, "reason": "nobody is on call for this level"})
    disabled = _disabled_targets(session, level.targets.model_dump())
    if disabled:  # a disabled schedule has nobody on call: say so, or an empty level would be a mystery
        events.note(session, incident.id, "schedule_disabled", now=now,
                    detail={"layer_idx": at.level, "schedule_ids": disabled, "reason": "disabled, so nobody is "
                            f"on call in it: schedule {', '.join(str(i) for i in disabled)}"})
    if step.after is None:
        incident.escalation_state = "done"
        incident.escalation_due_at = None
    else:
        due = now if (nobody and step.after.level != at.level) else step.due
        await _schedule_step(session, incident, gen, step.after, due)


async def _oncall(session: AsyncSession, targets: dict[str, Any], now: datetime) -> list[Member]:
    """The members of a level's targets now, resolved once per transaction: who is on call is the same for
    every incident a batch pages in it."""
    cache: dict[bytes, list[Member]] = session.info.setdefault("vigil_oncall", {})
    key = _frozen(targets)
    if key not in cache:
        cache[key] = await _resolve_targets(session, targets, now)
    return cache[key]


async def _members(session: AsyncSession, ids: list[int]) -> list[Member]:
    if not ids:
        return []
    rows = (await session.execute(select(Member).where(Member.id.in_(ids)))).scalars().all()
    by_id = {m.id: m for m in rows}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


async def _team_members(session: AsyncSession, team_ids: list[int]) -> list[int]:
    if not team_ids:
        return []
    teams = (await session.execute(select(Team).where(Team.id.in_(team_ids)))).scalars().all()
    return [m for t in teams for m in t.member_ids]


def _schedule_targets(targets: dict[str, Any]) -> list[tuple[int, int | None]]:
    """(schedule id, role id or None for everyone on call) of a level's targets."""
    return [(sid, None) for sid in targets.get("schedule_ids", [])] + \
        [(r["schedule_id"], r["role_id"]) for r in targets.get("schedule_roles", [])]


def _disabled_targets(session: AsyncSession, targets: dict[str, Any]) -> list[int]:
    """The level's schedules found disabled when its targets were resolved in this session."""
    seen: set[int] = session.info.get("vigil_disabled_schedules", set())
    return sorted({sid for sid, _ in _schedule_targets(targets) if sid in seen})


async def _resolve_targets(session: AsyncSession, targets: dict[str, Any], now: datetime) -> list[Member]:
    """Members of a level now: named members, team members, and whoever the schedules have on call (in one
    role of a schedule, for a schedule role target). A disabled schedule has nobody on call."""
    ids = list(targets.get("member_ids", []))
    ids += await _team_members(session, targets.get("team_ids", []))
    for sid, role_id in _schedule_targets(targets):
        row = await session.get(Schedule, sid)
        if row is None:
            continue
        if row.status != "enabled":
            session.info.setdefault("vigil_disabled_schedules", set()).add(sid)
            continue
        oncall = schedules.oncall_at(schedules.Schedule.model_validate(row.definition), now, role_id)
        for p in oncall.participants:
            if getattr(p, "member_id", None) is not None:
                ids.append(p.member_id)
            elif getattr(p, "team_id", None) is not None:
                ids += await _team_members(session, [p.team_id])
    return await _members(session, ids)


async def _page_members(session: AsyncSession, incident: Incident, members: list[Member], explicit: Any,
                        now: datetime, *, level: int, loop: int, event_type: str) -> list[dict[str, Any]]:
    paged = []
    gen = int((incident.escalation_snapshot or {}).get("gen", 0))
    ts = int(now.timestamp())
    responders = {r["person_id"]: dict(r) for r in incident.responders}
    for m in members:
        media = media_for(incident.severity, m.preferences, explicit)
        for medium in media:
            await _new_delivery(session, incident, m, medium, now, event_type=event_type, level=level, loop=loop,
                                key=f"{incident.id}:{gen}:{level}:{loop}:{m.id}:{medium}")
        responders.setdefault(m.id, {"person_id": m.id, "assigned_at": ts, "acknowledged_at": 0})
        paged.append({"person_id": m.id, "person_name": m.name, "media": media})
    incident.responders = list(responders.values())
    return paged


async def _new_delivery(session: AsyncSession, incident: Incident, member: Member, medium: str, now: datetime, *,
                        event_type: str, level: int, loop: int, key: str, fallback_from: int | None = None
                        ) -> int | None:
    """Add a delivery and its first send job; None if its dedup key exists (a step re-run after a crash).

    Inside `deliveries_together` the row is only collected (None) and written with the others at its end.
    """
    row = delivery_row(incident.id, member, medium, now, event_type=event_type, level=level, loop=loop, key=key,
                       fallback_from=fallback_from)
    collected = session.info.get("vigil_deliveries")
    if collected is not None:
        collected.append(row)
        return None
    added = await insert_deliveries(session, [row], now)
    return added[0] if added else None


def delivery_row(incident_id: int, member: Member, medium: str, now: datetime, *, event_type: str, level: int,
                 loop: int, key: str, fallback_from: int | None = None) -> dict[str, Any]:
    """A pending delivery's columns, for `insert_deliveries`."""
    return dict(dedup_key=key, incident_id=incident_id, member_id=member.id, medium=medium,
                address=_address(member, medium), event_type=event_type, level=level, loop=loop, state="pending",
                attempts=0, next_attempt_at=now, provider="", provider_message_id="", last_error="",
                fallback_from_id=fallback_from, created_at=now, updated_at=now)


async def insert_deliveries(session: AsyncSession, rows: list[dict[str, Any]], now: datetime) -> list[int]:
    """Insert delivery rows (skipping dedup keys that exist) and their first send jobs: two statements."""
    if not rows:
        return []
    table = Delivery.__table__  # type: ignore[attr-defined]
    # Many parameter sets for one cached statement (see jobs.schedule_many), not a VALUES list per call.
    added = (await session.execute(
        jobs.insert_for(session)(table).on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(table.c.id, table.c.incident_id), rows)).all()
    urgency = await _urgencies(session, {incident_id for _id, incident_id in added})
    await jobs.schedule_many(session, "deliver", [(f"deliver:{i}:0", {"delivery_id": i}, urgency[incident_id])
                                                  for i, incident_id in added], due_at=now)
    return [i for i, _incident_id in added]


async def _urgencies(session: AsyncSession, incident_ids: set[int]) -> dict[int, int]:
    """Each incident's job urgency (core.types.urgency_of its severity): from the incidents this session
    holds already (every caller has loaded them), else in one read."""
    found, missing = {}, []
    for incident_id in incident_ids:
        incident = session.sync_session.identity_map.get(identity_key(Incident, incident_id))
        if incident is not None:
            found[incident_id] = urgency_of(incident.severity)
        else:
            missing.append(incident_id)
    if missing:
        found.update((i, urgency_of(severity)) for i, severity in (await session.execute(
            select(Incident.id, Incident.severity).where(Incident.id.in_(missing)))).all())
    return found


@contextlib.asynccontextmanager
async def deliveries_together(session: AsyncSession, now: datetime) -> AsyncIterator[None]:
    """Collect the deliveries created inside, and write them all at the end (one INSERT for the lot)."""
    session.info["vigil_deliveries"] = []
    try:
        yield
        rows = session.info["vigil_deliveries"]
    finally:
        session.info.pop("vigil_deliveries", None)
    await insert_deliveries(session, rows, now)


def _address(member: Member, medium: str) -> str:
    if medium == "email":
        return member.email or ""
    if medium in ("sms", "voice"):
        return member.phone or ""
    return ""


async def _post_bots(session: AsyncSession, incident: Incident, bot_ids: list[int], now: datetime, *, level: int,
                     loop: int) -> list[int]:
    gen = int((incident.escalation_snapshot or {}).get("gen", 0))
    for bot_id in bot_ids:
        key = f"{incident.id}:{gen}:{level}:{loop}:bot{bot_id}"
        if (await session.execute(select(Delivery.id).where(Delivery.dedup_key == key))).first():
            continue
        d = Delivery(dedup_key=key, incident_id=incident.id, bot_id=bot_id, medium="bot", event_type="escalation",
                     level=level, loop=loop, next_attempt_at=now, created_at=now, updated_at=now)
        session.add(d)
        await session.flush()
        await jobs.schedule(session, "deliver", {"delivery_id": d.id}, due_at=now, job_id=f"deliver:{d.id}:0",
                            urgency=urgency_of(incident.severity))
    return list(bot_ids)


# A card posted into a group chat of an IM app (bot/chat/group_cards.py): a delivery with no member, so like a
# group bot's post it is retried but never handed over to a fallback medium nor counted as a member's page.
IM_CHAT = "im_chat"


async def _post_im_chats(session: AsyncSession, incident: Incident, chats: list[Any], now: datetime, *,
                         level: int, loop: int) -> list[dict[str, Any]]:
    gen = int((incident.escalation_snapshot or {}).get("gen", 0))
    rows = [dict(dedup_key=f"{incident.id}:{gen}:{level}:{loop}:chat{c.im_app_id}:{c.chat_id}",
                 incident_id=incident.id, member_id=None, im_app_id=c.im_app_id, medium=IM_CHAT, address=c.chat_id,
                 event_type="escalation", level=level, loop=loop, state="pending", attempts=0, next_attempt_at=now,
                 provider="", provider_message_id="", last_error="", fallback_from_id=None, created_at=now,
                 updated_at=now) for c in chats]
    # Written now, not with the members' pages (deliveries_together): one statement takes rows of one shape.
    await insert_deliveries(session, rows, now)
    return [{"im_app_id": c.im_app_id, "chat_id": c.chat_id} for c in chats]


def _chat(d: Delivery) -> dict[str, Any]:
    """A group-chat card's chat, for its delivery's timeline entries (the page says where it went)."""
    return {"chat_id": d.address} if d.medium == IM_CHAT else {}


def _still_wanted(incident: Incident, delivery: Delivery) -> str | None:
    """Why a page must not go out any more (None: send it)."""
    if delivery.event_type not in PAGE_EVENTS:
        return None
    if incident.progress == Progress.CLOSED.value:
        return "incident closed"
    snap = _snapshot(incident)
    stop_on = snap[0].stop_on if snap else "ack"
    if incident.progress == Progress.PROCESSING.value and stop_on == "ack" and delivery.event_type != "i_wake":
        return "incident acknowledged"
    return None


@jobs.batch_job("deliver")
async def deliver(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """One attempt of each delivery of a batch: one read of everything, the sends at once, one write.

    The in-process runner hands over every due delivery it claimed together (arq, one at a time): a page
    then costs a few statements shared by the batch instead of ten of its own.
    """
    now = ctx.now()
    senders: dict[str, Sender] = ctx.services.get("senders", {})
    base_url = ctx.services.get("base_url", "")
    async with ctx.sessionmaker() as session:
        rows = (await session.execute(
            select(Delivery, Incident, Member, Channel.name)
            .join(Incident, Incident.id == Delivery.incident_id)
            .outerjoin(Member, Member.id == Delivery.member_id)
            .outerjoin(Channel, Channel.id == Incident.channel_id)
            .where(Delivery.id.in_([a["delivery_id"] for a in batch]), Delivery.state == "pending"))).all()
        media = {d.medium for d, *_ in rows if d.medium != "bot"}
        templates = (await session.execute(select(Template).where(Template.medium.in_(media)))).scalars().all() \
            if media else []
        overrides = TemplateSet({(t.medium, t.event_type, t.channel_id, t.escalation_rule_id): t.source
                                 for t in templates})
        wanted: list[tuple[Delivery, Incident, Member | None, str]] = []
        for d, incident, member, channel_name in rows:
            reason = _still_wanted(incident, d)
            if reason:
                d.state, d.last_error, d.updated_at = "canceled", reason, now
                events.note(session, incident.id, "delivery_canceled", now=now, detail={
                    "delivery_id": d.id, "medium": d.medium, "person_id": d.member_id, "reason": reason})
                continue
            wanted.append((d, incident, member, channel_name or ""))
        rendering = [(d, incident, channel_name) for d, incident, member, channel_name in wanted
                     if _renders(d, member, senders)]
        extras = await _page_extras(session, rendering)
        # End the read transaction before rendering and the network calls: no row lock or write gate is held
        # while an override renders in the sandbox or a provider takes its time, and no connection either
        # (a sender may need one of its own: a pool of N would deadlock under N such batches). Each attempt
        # is recorded with its outcome in the one write below; a crash mid-send re-runs the batch, and the
        # pages on the wire then may reach their provider twice.
        await session.commit()
        pages = await _render(ctx, session, rendering, overrides, extras, base_url, now)
        secret = ctx.services.get("secret_key", "")
        work = [(d, incident, member, _prepare(d, incident, member, senders, pages.get(d.id), base_url,
                                               incident_link(base_url, secret, d.member_id, incident.id, now)))
                for d, incident, member, _channel_name in wanted]
        outcomes = await asyncio.gather(*(send(prepared) for _d, _i, _m, prepared in work))
        for (d, incident, member, _prepared), outcome in zip(work, outcomes, strict=True):
            if outcome is None:
                continue  # a group bot's rate-limit queue took it over (bot/group_bots/sender.py) and will finish it
            d.attempts += 1
            if isinstance(outcome, DeliveryError):
                await _failed(ctx, session, d, incident, member, outcome, now)
                continue
            sent = outcome if isinstance(outcome, Sent) else Sent(outcome)
            d.state, d.provider_message_id, d.updated_at = "sent", sent.message_id[:200], ctx.now()
            detail = {"delivery_id": d.id, "medium": d.medium, "person_id": d.member_id, "bot_id": d.bot_id,
                      **_chat(d),
                      "attempt": d.attempts, "provider_message_id": d.provider_message_id}
            if sent.provider:
                d.provider = detail["provider"] = sent.provider[:64]
            if sent.skipped:  # sent, but a provider before it failed: what failed and why stays on the row
                d.last_error = detail["skipped"] = sent.skipped[:2000]
            events.note(session, incident.id, "delivery_sent", now=ctx.now(), detail=detail)
        await session.commit()


# Group bots render their platform's own template; an app push carries the incident's fields, not text.
UNTEMPLATED = frozenset({"bot", "app", IM_CHAT})
GROUP_MEDIA = frozenset({"bot", IM_CHAT})  # deliveries to a group, not to a member


def _renders(d: Delivery, member: Member | None, senders: dict[str, Sender]) -> bool:
    """Whether the delivery's page is rendered here."""
    return d.medium not in UNTEMPLATED and member is not None and d.medium in senders


def _prepare(d: Delivery, incident: Incident, member: Member | None, senders: dict[str, Sender],
             page: Page | None, base_url: str, link: str) -> tuple[Sender, Recipient, Page] | DeliveryError:
    """The sender, recipient and rendered page of one delivery, or why it cannot be sent."""
    sender = senders.get(d.medium)
    if sender is None:
        return DeliveryError(f"no {d.medium} provider is configured", retryable=False)
    if d.medium in GROUP_MEDIA:
        # A group bot renders its own platform's template (bot/group_bots/sender.py), a group chat gets the
        # incident's card; either link signs nobody in (a whole group reads it).
        name = f"bot {d.bot_id}" if d.medium == "bot" else f"chat {d.address}"
        return sender, Recipient(0, name, None, None, "UTC"), Page(
            incident.id, d.id, d.event_type, incident.severity, None, "", None, f"{base_url}/incidents/{incident.id}")
    if member is None:
        return DeliveryError("the member no longer exists", retryable=False)
    recipient = Recipient(member.id, member.name, member.email, member.phone, member.time_zone)
    if d.medium == "app":  # bot/media/web_push.py builds the push from the incident's fields
        title = f"{SUBSCRIPTION_MARK} {incident.title}" if is_subscription(d) else incident.title
        return sender, recipient, Page(incident.id, d.id, d.event_type, incident.severity, title, "", None, link)
    assert page is not None
    return sender, recipient, page


async def send(prepared: tuple[Sender, Recipient, Page] | DeliveryError) -> str | Sent | DeliveryError | None:
    """One send, which never raises: the provider's message id, the error, or None when a queue took the page
    over. Shift notices (core/shift_notices.py) go through it too."""
    if isinstance(prepared, DeliveryError):
        return prepared
    sender, recipient, page = prepared
    try:
        return await sender(recipient, page) or ""
    except DeliveryQueued:
        return None
    except DeliveryError as exc:
        return exc
    except Exception as exc:  # a bug in a sender must not lose the page: treat as transient
        log.exception("sender for delivery %s crashed", page.delivery_id)
        return DeliveryError(f"{type(exc).__name__}", retryable=True)


async def _page_extras(session: AsyncSession, deliveries: list[tuple[Delivery, Incident, str]]
                       ) -> tuple[list[Any], dict[int, Any]]:
    """What templates see besides the incident, read with the rest of a delivery batch: the custom field
    definitions and each incident's images."""
    if not deliveries:
        return [], {}
    return (await custom_fields.definitions(session),
            await images.of_incidents(session, {incident.id for _d, incident, _c in deliveries}))


async def _render(ctx: jobs.JobContext, session: AsyncSession, deliveries: list[tuple[Delivery, Incident, str]],
                  overrides: TemplateSet, extras: tuple[list[Any], dict[int, Any]], base_url: str,
                  now: datetime) -> dict[int, Page]:
    """The page of each delivery by id, rendered with the template overrides in the database (shipped defaults
    otherwise): the overrides in the template sandbox, all in one round trip; a fallback is noted in the
    timeline. `extras`: `_page_extras`, read before the batch's read transaction ended."""
    requests = []
    secret = ctx.services.get("secret_key", "")
    defs, shown = extras
    for d, incident, channel_name in deliveries:
        mapping = {c: getattr(incident, c) for c in ("title", "description", "severity", "progress", "labels",
                                                     "alert_cnt", "num", "start_time", "ack_time", "close_time")}
        mapping["fields"] = custom_fields.effective(defs, incident.fields or {})
        mapping["images"] = shown[incident.id]
        # The page goes to one member: its link signs them in (core/links.py), no sign-in wall at 3 a.m.
        mapping.update(incident_id=incident.id, incident_severity=incident.severity, channel_name=channel_name,
                       detail_url=incident_link(base_url, secret, d.member_id, incident.id, now))
        event_type = _template_event(d)
        requests.append((d.medium, event_type, incident_context(mapping, event_type=event_type, base_url=base_url),
                         Scope(incident.channel_id or 0, incident.escalation_rule_id or 0)))
    rendered = await render_all(ctx.services.get("template_sandbox"), overrides, requests)
    return {d.id: _page(session, d, incident, r, incident_link(base_url, secret, d.member_id, incident.id, now), now)
            for (d, incident, _channel_name), r in zip(deliveries, rendered, strict=True)}


def _template_event(d: Delivery) -> str:
    return "i_new" if d.event_type == "escalation" else d.event_type.removeprefix(SUBSCRIPTION_PREFIX)


def is_subscription(d: Delivery) -> bool:
    return d.level == SUBSCRIPTION_LEVEL


def _subscription_wording(rendered: Rendered) -> tuple[str | None, str, str | None]:
    """A subscription notice says so first: the reader is told, not paged, and is not a responder."""
    note = "Subscription notice: you are subscribed to incidents like this; you are not paged for it."
    subject = f"{SUBSCRIPTION_MARK} {rendered.subject}" if rendered.subject else rendered.subject
    html = f"<p><em>{note}</em></p>\n{rendered.html}" if rendered.html else rendered.html
    return subject, f"{SUBSCRIPTION_MARK} {rendered.text}\n\n{note}", html


def _page(session: AsyncSession, d: Delivery, incident: Incident, rendered: Rendered, link: str,
          now: datetime) -> Page:
    if rendered.used_fallback:
        events.note(session, incident.id, "template_fallback", now=now, detail={
            "medium": d.medium, "event_type": _template_event(d), "error": rendered.error})
    subject, text, html = (_subscription_wording(rendered) if is_subscription(d)
                           else (rendered.subject, rendered.text, rendered.html))
    return Page(incident.id, d.id, d.event_type, incident.severity, subject, text, html, link)


def _failing_for(d: Delivery, now: datetime) -> timedelta:
    return now - d.created_at if d.created_at else timedelta(0)


def retry_in(d: Delivery, exc: DeliveryError, now: datetime, policy: RetryPolicy = RetryPolicy()) -> float | None:
    """Seconds until a failed delivery's next attempt (jittered backoff, or the provider's Retry-After if
    longer); None when it must not be retried (a permanent error, or its time budget is spent)."""
    return after_failure(policy, attempts=d.attempts, failing_for=_failing_for(d, now), retryable=exc.retryable,
                         retry_after=exc.retry_after, jitter=random.random()).retry_in


async def _failed(ctx: jobs.JobContext, session: AsyncSession, d: Delivery, incident: Incident,
                  member: Member | None, exc: DeliveryError, now: datetime) -> None:
    """Record a failed attempt: retry within the time budget, hand over to the member's next medium once
    this one has failed for a while (or for good), and when no medium is left, escalate at once. The
    caller commits."""
    d.last_error = str(exc)[:2000]
    d.updated_at = now
    policy: RetryPolicy = ctx.services.get("retry_policy") or RetryPolicy()
    plan = after_failure(policy, attempts=d.attempts, failing_for=_failing_for(d, now), retryable=exc.retryable,
                         retry_after=exc.retry_after, jitter=random.random())
    if plan.retry_in is not None:
        d.next_attempt_at = now + timedelta(seconds=plan.retry_in)
        events.note(session, incident.id, "delivery_retry", now=now, detail={
            "delivery_id": d.id, "medium": d.medium, "person_id": d.member_id, **_chat(d), "attempt": d.attempts,
            "error": d.last_error, "retry_in_seconds": plan.retry_in})
        await jobs.schedule(session, "deliver", {"delivery_id": d.id}, due_at=d.next_attempt_at,
                            job_id=f"deliver:{d.id}:{d.attempts}", urgency=urgency_of(incident.severity))
    else:
        d.state = "failed"
        DELIVERIES_FAILED.labels(d.medium).inc()
        events.note(session, incident.id, "delivery_failed", now=now, detail={
            "delivery_id": d.id, "medium": d.medium, "person_id": d.member_id, "bot_id": d.bot_id, **_chat(d),
            "attempt": d.attempts, "error": d.last_error, "retryable": exc.retryable})
    if member is not None and plan.hand_over and _still_wanted(incident, d) is None:
        await _hand_over(session, incident, d, member, now, still_retrying=plan.retry_in is not None)
        if d.state == "failed":
            await _undeliverable_check(session, incident, d, member, now)


async def _hand_over(session: AsyncSession, incident: Incident, d: Delivery, member: Member, now: datetime, *,
                     still_retrying: bool) -> None:
    """Start the member's next medium for this page, once per failing delivery (its own failures continue
    the chain), while `d` may still be retrying."""
    if (await session.execute(select(Delivery.id).where(Delivery.fallback_from_id == d.id))).first():
        return
    tried = (await session.execute(select(Delivery.medium).where(*_same_page(d, member.id)))).scalars().all()
    medium = next_fallback(d.medium, tried, member.fallback or DEFAULT_FALLBACK)
    if medium is None:
        return
    gen = int((incident.escalation_snapshot or {}).get("gen", 0))
    nd = await _new_delivery(session, incident, member, medium, now, event_type=d.event_type, level=d.level,
                             loop=d.loop, key=f"{incident.id}:{gen}:{d.level}:{d.loop}:{member.id}:{medium}",
                             fallback_from=d.id)
    if nd is not None:
        events.note(session, incident.id, "fallback", now=now, detail={
            "person_id": member.id, "from": d.medium, "to": medium, "reason": d.last_error,
            "from_still_retrying": still_retrying})


def _same_page(d: Delivery, member_id: int) -> tuple[Any, ...]:
    """Conditions for the deliveries of one page to one member: every medium of it, fallbacks included."""
    return (Delivery.incident_id == d.incident_id, Delivery.member_id == member_id, Delivery.level == d.level,
            Delivery.loop == d.loop, Delivery.event_type == d.event_type)


async def _undeliverable_check(session: AsyncSession, incident: Incident, d: Delivery, member: Member,
                               now: datetime) -> None:
    """If nothing of this member's page was sent and nothing is left to try, say so loudly and escalate now."""
    await session.flush()
    page = (await session.execute(select(Delivery.medium, Delivery.state).where(*_same_page(d, member.id)))).all()
    if any(state in ("pending", "sent") for _, state in page):
        return
    media = [medium for medium, _ in page]
    PAGES_UNDELIVERABLE.inc()
    log.warning("page undeliverable: incident %s, member %s (%s), level %s: every medium failed (%s); last error: %s",
                incident.id, member.id, member.name, d.level, ", ".join(media), d.last_error)
    detail: dict[str, Any] = {"person_id": member.id, "person_name": member.name, "layer_idx": d.level,
                              "media": list(media), "reason": "every medium of the fallback chain failed",
                              "error": d.last_error}
    await _escalate_now(session, incident, d, now, detail)
    events.note(session, incident.id, "page_undeliverable", now=now, detail=detail)


async def _escalate_now(session: AsyncSession, incident: Incident, d: Delivery, now: datetime,
                        detail: dict[str, Any]) -> None:
    """Bring the incident's next escalation step forward to now, if it is the step after the failed page's."""
    detail["escalated"] = False
    if d.event_type not in ("escalation", "i_wake"):
        return  # a reassignment or a subscription page has no "next level"
    incident = await incidents.get(session, incident.id, lock=True)
    snap = _snapshot(incident)
    if snap is None or incident.escalation_state != "running":
        return  # stopped (acknowledged, closed) or finished: nothing further to page
    rule, gen = snap
    upcoming = Position(incident.escalation_level, incident.escalation_loop)
    if upcoming != next_level(rule, Position(d.level, d.loop)):
        return  # escalation already moved on past this page
    detail.update(escalated=True, to_layer_idx=upcoming.level)
    if incident.escalation_due_at is not None and incident.escalation_due_at <= now:
        return  # already due
    incident.escalation_due_at = now
    job_id = _step_job_id(incident.id, gen, upcoming)
    await session.execute(update(Job).where(Job.id == job_id, Job.state == "pending")
                          .values(due_at=now, updated_at=now).execution_options(synchronize_session=False))
    session.info.setdefault("vigil_jobs", []).append(jobs.Wake(job_id, now, 0, urgency_of(incident.severity)))


def register() -> None:
    """Subscribe the engine to incident events (called by the composition root)."""
    events.subscribe("escalation", on_events, frozenset({"i_new", "i_reopen", "i_ack", "i_rslv", "i_merge",
                                                         "i_assign", "i_wake", "i_a_rspd"}))
