"""Incident lifecycle: the single path every action ends in (DESIGN rule 1).

`check(action, incident)` is the pure rule table; the async functions apply an action
for an actor, write the timeline and emit the domain event. Callers commit.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import events, jobs
from core.errors import IllegalTransition, InvalidInput, NotFound, PermissionDenied
from core.ingest_sql import ALERT_WEBHOOKS_EXIST, ingest_lock
from core.models import Alert, Channel, Incident, Member, Team, TimelineEntry
from core.types import Progress, Role, Severity

SNOOZE_MAX_MINUTES = 1440
COMMENT_MAX = 1024


class Action(enum.StrEnum):
    ACK = "ack"
    UNACK = "unack"
    SNOOZE = "snooze"
    WAKE = "wake"
    CLOSE = "close"
    REOPEN = "reopen"
    REASSIGN = "reassign"
    ESCALATE = "escalate"
    COMMENT = "comment"
    MERGE = "merge"


OPEN = frozenset({Progress.TRIGGERED, Progress.PROCESSING})
# action -> progress values it is allowed from
ALLOWED_FROM: dict[Action, frozenset[Progress]] = {
    Action.ACK: frozenset({Progress.TRIGGERED}),
    Action.UNACK: frozenset({Progress.PROCESSING}),
    Action.SNOOZE: OPEN,
    Action.WAKE: OPEN,
    Action.CLOSE: OPEN,
    Action.REOPEN: frozenset({Progress.CLOSED}),
    Action.REASSIGN: OPEN,
    Action.ESCALATE: OPEN,
    Action.COMMENT: frozenset(Progress),
    Action.MERGE: OPEN,
}


def check(action: Action, progress: Progress, *, merged: bool = False, snoozed: bool = False) -> None:
    """Raise IllegalTransition with a readable reason if `action` is not allowed now."""
    if merged and action is not Action.COMMENT:
        raise IllegalTransition("incident was merged into another incident; act on that one")
    if progress not in ALLOWED_FROM[action]:
        hint = {
            (Action.ACK, Progress.PROCESSING): "incident is already acknowledged",
            (Action.UNACK, Progress.TRIGGERED): "incident is not acknowledged",
            (Action.REOPEN, Progress.TRIGGERED): "incident is not closed",
            (Action.REOPEN, Progress.PROCESSING): "incident is not closed",
        }.get((action, progress), f"incident is {progress.value}")
        raise IllegalTransition(f"cannot {action.value}: {hint}")
    if action is Action.WAKE and not snoozed:
        raise IllegalTransition("cannot wake: incident is not snoozed")


def allowed_actions(progress: Progress, *, merged: bool = False, snoozed: bool = False) -> tuple[Action, ...]:
    """The actions a card or page may offer now (cards never decide lifecycle rules themselves)."""
    out = []
    for action in Action:
        try:
            check(action, progress, merged=merged, snoozed=snoozed)
        except IllegalTransition:
            continue
        out.append(action)
    return tuple(out)


async def get(session: AsyncSession, incident_id: int, *, lock: bool = False) -> Incident:
    """Load an incident (row-locked on PostgreSQL when `lock`), or raise NotFound."""
    stmt = select(Incident).where(Incident.id == incident_id)
    if lock:  # a locked read must see the latest row, even when this session loaded it before
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    incident = (await session.execute(stmt)).scalar_one_or_none()
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return incident


async def actor_may_act(session: AsyncSession, actor_id: int | None) -> Member | None:
    """Observers receive but cannot act; unknown members cannot act. None = system or admin token."""
    if actor_id is None:
        return None
    member = await session.get(Member, actor_id)
    if member is None:
        raise PermissionDenied(f"member {actor_id} does not exist")
    if member.role == Role.OBSERVER.value:
        raise PermissionDenied(f"{member.name} is an observer and cannot act on incidents")
    return member


def in_team_scope(*, team_scoped: bool, role: Role, shares_a_team: bool) -> bool:
    """Whether an actor may act on a channel's incidents: anyone may unless the channel is team-scoped;
    then only admins and members of one of the channel's teams."""
    return not team_scoped or role is Role.ADMIN or shares_a_team


async def check_team_scope(session: AsyncSession, incident: Incident, member: Member | None) -> None:
    """Raise PermissionDenied unless `member` may act on the incidents of `incident`'s channel.

    `member` None is a caller of a role below admin that acts as no member (a member-less API token):
    it belongs to no team. The system and admin tokens, which act as nobody, do not call this.
    """
    channel = await session.get(Channel, incident.channel_id)
    if channel is not None:
        await check_channel_scope(session, channel, member)


async def check_channel_scope(session: AsyncSession, channel: Channel, member: Member | None) -> None:
    """check_team_scope for a channel itself (opening an incident on it by hand)."""
    if not channel.team_scoped:
        return
    teams = (await session.execute(select(Team.id, Team.name, Team.member_ids)
                                   .where(Team.id.in_(channel.team_ids or [])).order_by(Team.id))).all()
    role = Role(member.role) if member is not None else Role.RESPONDER
    shares = member is not None and any(member.id in (ids or []) for _, _, ids in teams)
    if in_team_scope(team_scoped=channel.team_scoped, role=role, shares_a_team=shares):
        return
    who = member.name if member is not None else "a token that acts as no member"
    names = ", ".join(repr(name) for _, name, _ in teams) or "none left"
    raise PermissionDenied(f"{who} cannot act on incidents of channel {channel.name!r}: it is team-scoped, "
                           f"so only admins and members of its teams ({names}) can")


async def may_act_on(session: AsyncSession, incident: Incident, actor_id: int | None) -> None:
    """Raise PermissionDenied unless the actor may act on this incident: a member who is no observer and,
    on a team-scoped channel, an admin or a member of one of its teams. None = system or admin token."""
    member = await actor_may_act(session, actor_id)
    if member is not None:
        await check_team_scope(session, incident, member)


async def _begin(session: AsyncSession, incident_id: int, action: Action, actor_id: int | None) -> Incident:
    await actor_may_act(session, actor_id)  # before the row lock: a refused actor never waits for it
    incident = await get(session, incident_id, lock=True)
    await may_act_on(session, incident, actor_id)
    check(
        action,
        Progress(incident.progress),
        merged=incident.merged_into_id is not None,
        snoozed=incident.snoozed_until is not None,
    )
    return incident


begin = _begin  # for actions kept in their own modules (core/manual_incidents.py)


def _touch_responder(incident: Incident, actor_id: int | None, now: datetime, *, acked: bool) -> None:
    if actor_id is None:
        return
    responders = [dict(r) for r in incident.responders]
    for r in responders:
        if r.get("person_id") == actor_id:
            if acked and not r.get("acknowledged_at"):
                r["acknowledged_at"] = int(now.timestamp())
            break
    else:
        responders.append(
            {"person_id": actor_id, "assigned_at": int(now.timestamp()),
             "acknowledged_at": int(now.timestamp()) if acked else 0}
        )
    incident.responders = responders


async def ack(session: AsyncSession, incident_id: int, actor_id: int | None, *, now: datetime,
              source: str = "api") -> Incident:
    """Triggered -> Processing; stops escalation (the escalation subscriber reacts to i_ack)."""
    incident = await _begin(session, incident_id, Action.ACK, actor_id)
    incident.progress = Progress.PROCESSING.value
    incident.ack_time = incident.ack_time or now
    incident.updated_at = now
    _touch_responder(incident, actor_id, now, acked=True)
    await events.emit(session, incident, events.I_ACK, now=now, actor_id=actor_id, source=source)
    return incident


async def unack(session: AsyncSession, incident_id: int, actor_id: int | None, *, now: datetime,
                source: str = "api") -> Incident:
    """Processing -> Triggered; clears acknowledgements and any snooze."""
    incident = await _begin(session, incident_id, Action.UNACK, actor_id)
    incident.progress = Progress.TRIGGERED.value
    incident.snoozed_until = None
    incident.responders = [{**r, "acknowledged_at": 0} for r in incident.responders]
    incident.updated_at = now
    await events.emit(session, incident, events.I_UNACK, now=now, actor_id=actor_id, source=source)
    return incident


async def snooze(session: AsyncSession, incident_id: int, actor_id: int | None, *, minutes: int,
                 now: datetime, source: str = "api") -> Incident:
    """Keep the incident Processing and silence re-notification until now + minutes."""
    if not isinstance(minutes, int) or not 1 <= minutes <= SNOOZE_MAX_MINUTES:
        raise InvalidInput(f"minutes must be an integer from 1 to {SNOOZE_MAX_MINUTES}")
    incident = await _begin(session, incident_id, Action.SNOOZE, actor_id)
    until = now + timedelta(minutes=minutes)
    if incident.progress == Progress.TRIGGERED.value:
        incident.progress = Progress.PROCESSING.value
        incident.ack_time = incident.ack_time or now
    _touch_responder(incident, actor_id, now, acked=True)
    incident.snoozed_until = until
    incident.updated_at = now
    await events.emit(session, incident, events.I_SNOOZE, now=now, actor_id=actor_id, source=source,
                      detail={"minutes": minutes, "until": int(until.timestamp())})
    await jobs.schedule(session, "wake", {"incident_id": incident.id, "until": until.isoformat()},
                        due_at=until, job_id=f"wake:{incident.id}:{int(until.timestamp())}")
    return incident


async def wake(session: AsyncSession, incident_id: int, actor_id: int | None, *, now: datetime,
               source: str = "system") -> Incident:
    """End a snooze (at its due time, or early by hand); re-notification resumes (i_wake)."""
    incident = await _begin(session, incident_id, Action.WAKE, actor_id)
    incident.snoozed_until = None
    incident.updated_at = now
    await events.emit(session, incident, events.I_WAKE, now=now, actor_id=actor_id, source=source)
    return incident


async def close(session: AsyncSession, incident_id: int, actor_id: int | None, *, now: datetime,
                source: str = "api", root_cause: str = "", resolution: str = "") -> Incident:
    """Close the incident and all its active alerts (no further events merge into them)."""
    await _hold_ingest(session, incident_id)
    incident = await _begin(session, incident_id, Action.CLOSE, actor_id)
    await _close(session, incident, actor_id, now=now, source=source,
                 detail={"root_cause": root_cause[:1024], "resolution": resolution[:1024]})
    return incident


async def _hold_ingest(session: AsyncSession, incident_id: int) -> None:
    """Closing closes the incident's alerts, and an ingest batch writes back the alerts it has read: on
    PostgreSQL, wait out a batch of the incident's channel and keep the next one out until this commits.
    Taken before the incident's row lock, in ingest's own order (channel, then incident rows), so the
    two never wait on each other. (On SQLite a batch holds the write gate from its start.)"""
    if session.bind.dialect.name != "postgresql":
        return
    channel_id = await session.scalar(select(Incident.channel_id).where(Incident.id == incident_id))
    if channel_id is not None:
        await session.execute(select(ingest_lock(channel_id)))


async def _close(session: AsyncSession, incident: Incident, actor_id: int | None, *, now: datetime,
                 source: str, detail: dict[str, Any]) -> None:
    incident.progress = Progress.CLOSED.value
    incident.close_time = now
    incident.closer_id = actor_id
    incident.snoozed_until = None
    incident.updated_at = now
    await session.execute(
        update(Alert)
        .where(Alert.incident_id == incident.id, Alert.progress == Progress.TRIGGERED.value)
        .values(progress=Progress.CLOSED.value, close_time=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    incident.active_alert_cnt = 0
    await events.emit(session, incident, events.I_RSLV, now=now, actor_id=actor_id, source=source, detail=detail)


async def close_recovered(session: AsyncSession, incident: Incident, *, now: datetime) -> None:
    """Auto-close: every alert of the incident recovered and the channel says so."""
    await _close(session, incident, None, now=now, source="system", detail={"reason": "all alerts recovered"})


async def reopen(session: AsyncSession, incident_id: int, actor_id: int | None, *, now: datetime,
                 source: str = "api", reason: str = "") -> Incident:
    """Closed -> Triggered; acknowledgements are cleared and escalation starts again."""
    incident = await _begin(session, incident_id, Action.REOPEN, actor_id)
    incident.progress = Progress.TRIGGERED.value
    incident.close_time = None
    incident.closer_id = None
    incident.ack_time = None
    incident.responders = [{**r, "acknowledged_at": 0} for r in incident.responders]
    incident.updated_at = now
    await events.emit(session, incident, events.I_REOPEN, now=now, actor_id=actor_id, source=source,
                      detail={"reason": reason[:1024]})
    return incident


async def reassign(session: AsyncSession, incident_id: int, actor_id: int | None, *, member_ids: list[int],
                   now: datetime, source: str = "api") -> Incident:
    """Replace the responders with `member_ids` (they are notified by the escalation subscriber)."""
    if not member_ids:
        raise InvalidInput("member_ids must name at least one member")
    if len(member_ids) > 100:
        raise InvalidInput("member_ids: at most 100 members")
    incident = await _begin(session, incident_id, Action.REASSIGN, actor_id)
    found = set((await session.execute(select(Member.id).where(Member.id.in_(member_ids)))).scalars())
    missing = [m for m in member_ids if m not in found]
    if missing:
        raise InvalidInput(f"member_ids: unknown member {missing[0]}")
    ts = int(now.timestamp())
    incident.responders = [{"person_id": m, "assigned_at": ts, "acknowledged_at": 0} for m in dict.fromkeys(member_ids)]
    incident.assigned_to = {"type": "reassign", "person_ids": list(dict.fromkeys(member_ids)), "assigned_at": ts}
    if incident.progress == Progress.PROCESSING.value:
        incident.progress = Progress.TRIGGERED.value  # the new responders have not acknowledged yet
    incident.updated_at = now
    await events.emit(session, incident, events.I_ASSIGN, now=now, actor_id=actor_id, source=source,
                      detail={"type": "reassign", "person_ids": list(dict.fromkeys(member_ids))})
    return incident


async def escalate(session: AsyncSession, incident_id: int, actor_id: int | None, *, now: datetime,
                   source: str = "api", reason: str = "") -> Incident:
    """Ask for the next escalation level now; the escalation engine acts on the i_assign event."""
    incident = await _begin(session, incident_id, Action.ESCALATE, actor_id)
    incident.updated_at = now
    await events.emit(session, incident, events.I_ASSIGN, now=now, actor_id=actor_id, source=source,
                      detail={"type": "escalate", "reason": reason[:1024]})
    return incident


async def comment(session: AsyncSession, incident_id: int, actor_id: int | None, *, text: str,
                  now: datetime, source: str = "api") -> Incident:
    """Add a comment to the timeline (allowed in every state)."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("comment must not be empty")
    if len(text) > COMMENT_MAX:
        raise InvalidInput(f"comment is longer than {COMMENT_MAX} characters")
    incident = await _begin(session, incident_id, Action.COMMENT, actor_id)
    incident.updated_at = now
    await events.emit(session, incident, events.I_COMM, now=now, actor_id=actor_id, source=source,
                      detail={"comment": text})
    return incident


async def merge(session: AsyncSession, target_id: int, source_ids: list[int], actor_id: int | None, *,
                now: datetime, source: str = "api", comment: str = "") -> Incident:
    """Move the alerts of `source_ids` into `target_id`; the sources close, pointing at the target."""
    if not source_ids or len(source_ids) > 100:
        raise InvalidInput("source_incident_ids must name 1 to 100 incidents")
    if target_id in source_ids:
        raise InvalidInput("source_incident_ids must not contain the target incident")
    target = await _begin(session, target_id, Action.MERGE, actor_id)
    collect = await alert_webhooks_exist(session)  # then note which alerts move, for a_merge
    moved: list[tuple[int, int]] = []
    for sid in dict.fromkeys(source_ids):
        src = await get(session, sid, lock=True)
        await may_act_on(session, src, actor_id)  # merging closes the source: acting on it as on the target
        check(Action.MERGE, Progress(src.progress), merged=src.merged_into_id is not None)
        if collect:
            moved += (await session.execute(select(Alert.id, Alert.channel_id).where(Alert.incident_id == src.id)
                                            .order_by(Alert.id))).all()
        await session.execute(
            update(Alert).where(Alert.incident_id == src.id).values(incident_id=target.id, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        target.alert_cnt += src.alert_cnt
        target.active_alert_cnt += src.active_alert_cnt
        target.alert_event_cnt += src.alert_event_cnt
        if Severity(src.severity).rank > Severity(target.severity).rank:
            target.severity = src.severity
        src.merged_into_id = target.id
        src.progress = Progress.CLOSED.value
        src.close_time = now
        src.closer_id = actor_id
        src.alert_cnt = src.active_alert_cnt = 0
        src.updated_at = now
        await events.emit(session, src, events.I_MERGE, now=now, actor_id=actor_id, source=source,
                          detail={"merged_into": target.id})
    target.updated_at = now
    await events.emit(session, target, events.I_MERGE, now=now, actor_id=actor_id, source=source,
                      detail={"merged": list(dict.fromkeys(source_ids)), "comment": comment[:1024]})
    for i in range(0, len(moved), ALERT_WEBHOOK_CHUNK):  # alert webhooks: a_merge per moved alert
        await jobs.schedule(session, "alert_webhooks", {
            "items": [[aid, "a_merge", cid, target.id] for aid, cid in moved[i:i + ALERT_WEBHOOK_CHUNK]],
            "at": now.isoformat(), "actor_id": actor_id}, due_at=now)
    return target


ALERT_WEBHOOK_CHUNK = 1000  # alerts per alert_webhooks job when a merge moves many


async def alert_webhooks_exist(session: AsyncSession) -> bool:
    """Whether any enabled alert webhook exists (else alert events are not even collected)."""
    return bool(await session.scalar(select(ALERT_WEBHOOKS_EXIST)))


async def timeline(session: AsyncSession, incident_id: int) -> list[TimelineEntry]:
    rows = await session.execute(
        select(TimelineEntry).where(TimelineEntry.incident_id == incident_id).order_by(TimelineEntry.id)
    )
    return list(rows.scalars())


async def alerts_of(session: AsyncSession, incident_id: int) -> list[Alert]:
    rows = await session.execute(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id))
    return list(rows.scalars())


@jobs.job("wake")
async def _wake_job(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    """Snooze timer: wake the incident if it is still snoozed until that same time."""
    async with ctx.sessionmaker() as session:
        try:
            incident = await get(session, args["incident_id"], lock=True)
        except NotFound:
            return
        until = incident.snoozed_until
        if until is None or until.isoformat() != args["until"] or incident.progress == Progress.CLOSED.value:
            return  # woken by hand, snoozed again, or closed: nothing to do
        await wake(session, incident.id, None, now=ctx.now(), source="system")
        await session.commit()
