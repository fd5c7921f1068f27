"""Actions on single alerts (Flashduty's /alert/close and /alert/merge): close one alert, move alerts into
another incident. Like core.incidents, every caller (Open API, later cards) ends here; callers commit.

Both hold the ingest lock of the channels involved first (PostgreSQL; SQLite's write gate does the same),
in ingest's order (channels by id, then incident rows), so a batch never writes back an alert these just
changed, and never waits on them in a cycle.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events, incidents, jobs
from core.errors import IllegalTransition, InvalidInput, NotFound
from core.ingest_sql import ingest_lock
from core.models import Alert, Incident
from core.types import Progress, Severity

MOVE_MAX = 100


async def _hold_ingest(session: AsyncSession, channel_ids: set[int]) -> None:
    if session.bind.dialect.name != "postgresql":
        return
    for cid in sorted(channel_ids):
        await session.execute(select(ingest_lock(cid)))


async def _alert_webhooks(session: AsyncSession, items: list[list[int | str | None]], now: datetime,
                          actor_id: int | None) -> None:
    if items and await incidents.alert_webhooks_exist(session):
        await jobs.schedule(session, "alert_webhooks", {"items": items, "at": now.isoformat(), "actor_id": actor_id},
                            due_at=now)


def _active(alert: Alert) -> bool:
    """Counted in its incident's active_alert_cnt: open and not muted (muted alerts join no incident)."""
    return alert.progress == Progress.TRIGGERED.value and not alert.muted_by


async def close_alert(session: AsyncSession, alert_id: int, actor_id: int | None, *, now: datetime,
                      source: str = "api") -> Alert:
    """Close one alert by hand: later events of its key open a new alert. The incident's timeline says so,
    and an incident left with no open alert closes, as when its alerts recover."""
    await incidents.actor_may_act(session, actor_id)
    channel_id = await session.scalar(select(Alert.channel_id).where(Alert.id == alert_id))
    if channel_id is None:
        raise NotFound(f"alert {alert_id} not found")
    await _hold_ingest(session, {channel_id})
    alert = (await session.execute(select(Alert).where(Alert.id == alert_id).with_for_update()
                                   .execution_options(populate_existing=True))).scalar_one()
    incident = await incidents.get(session, alert.incident_id, lock=True) if alert.incident_id else None
    if incident is not None:
        await incidents.may_act_on(session, incident, actor_id)
    if alert.progress == Progress.CLOSED.value:
        raise IllegalTransition(f"alert {alert_id} is already closed")
    was_active = _active(alert)
    alert.progress, alert.close_time, alert.updated_at = Progress.CLOSED.value, now, now
    if incident is not None:
        events.note(session, incident.id, "a_close", now=now, actor_id=actor_id, source=source,  # type: ignore[arg-type]
                    detail={"alert_id": alert.id, "alert_key": alert.alert_key, "title": alert.title})
        if was_active:
            incident.active_alert_cnt = max(0, incident.active_alert_cnt - 1)
        incident.updated_at = now
        if incident.active_alert_cnt == 0 and incident.progress != Progress.CLOSED.value \
                and incident.merged_into_id is None:
            await incidents.close(session, incident.id, actor_id, now=now, source=source,  # type: ignore[arg-type]
                                  resolution=f"its last open alert ({alert.alert_key}) was closed")
    await _alert_webhooks(session, [[alert.id, "a_close", alert.channel_id, alert.incident_id]], now, actor_id)
    return alert


async def move_alerts(session: AsyncSession, alert_ids: list[int], target_id: int, actor_id: int | None, *,
                      now: datetime, source: str = "api", comment: str = "") -> Incident:
    """Move alerts into incident `target_id` (open). Counts and severity follow the alerts; an incident left
    with no alert closes as merged into the target. Both timelines say which alerts moved."""
    ids = list(dict.fromkeys(alert_ids))
    if not ids or len(ids) > MOVE_MAX:
        raise InvalidInput(f"alert_ids must name 1 to {MOVE_MAX} alerts")
    await incidents.actor_may_act(session, actor_id)
    found = {a: c for a, c in (await session.execute(select(Alert.id, Alert.channel_id).where(Alert.id.in_(ids))))}
    for i in ids:
        if i not in found:
            raise NotFound(f"alert_ids: alert {i} not found")
    target_channel = await session.scalar(select(Incident.channel_id).where(Incident.id == target_id))
    if target_channel is None:
        raise NotFound(f"incident {target_id} not found")
    await _hold_ingest(session, {*found.values(), target_channel})
    alerts = list((await session.execute(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id)
                                         .with_for_update().execution_options(populate_existing=True))).scalars())
    # incident rows in id order, as ingest and incidents.merge lock them
    sources = sorted({a.incident_id for a in alerts if a.incident_id is not None and a.incident_id != target_id})
    locked = {i: await incidents.get(session, i, lock=True) for i in sorted({*sources, target_id})}
    target = locked[target_id]
    await incidents.may_act_on(session, target, actor_id)
    incidents.check(incidents.Action.MERGE, Progress(target.progress), merged=target.merged_into_id is not None)
    for sid in sources:
        await incidents.may_act_on(session, locked[sid], actor_id)  # moving out of an incident acts on it too
    moving = [a for a in alerts if a.incident_id != target_id]
    if not moving:
        raise InvalidInput(f"alert_ids: every alert named is already in incident {target_id}")
    origin = {a.id: a.incident_id for a in moving}
    for a in moving:
        src = locked.get(a.incident_id) if a.incident_id is not None else None
        if src is not None:
            src.alert_cnt = max(0, src.alert_cnt - 1)
            src.alert_event_cnt = max(0, src.alert_event_cnt - a.event_cnt)
            if _active(a):
                src.active_alert_cnt = max(0, src.active_alert_cnt - 1)
        target.alert_cnt += 1
        target.alert_event_cnt += a.event_cnt
        if a.progress == Progress.TRIGGERED.value:
            # moved by a person: it belongs to the target now and counts there, even if it had been muted
            a.muted_by = ""
            target.active_alert_cnt += 1
            if Severity(a.severity).rank > Severity(target.severity).rank:
                target.severity = a.severity
            if target.status != "Ok" or target.active_alert_cnt == 1:
                target.status = target.severity  # an open alert came in: no longer all recovered
        a.incident_id, a.updated_at = target_id, now
    closed = []
    for sid in sources:
        src = locked[sid]
        src.updated_at = now
        events.note(session, sid, "a_merge", now=now, actor_id=actor_id, source=source,
                    detail={"alert_ids": [i for i, o in origin.items() if o == sid], "moved_to": target_id})
        if src.alert_cnt == 0 and src.merged_into_id is None:
            # nothing left in it: it ends as merged into the target, as a merge of whole incidents does
            src.merged_into_id = target_id
            if src.progress != Progress.CLOSED.value:
                src.progress, src.close_time, src.closer_id = Progress.CLOSED.value, now, actor_id
                src.snoozed_until, src.active_alert_cnt = None, 0
            await events.emit(session, src, events.I_MERGE, now=now, actor_id=actor_id, source=source,
                              detail={"merged_into": target_id, "reason": "all its alerts were moved"})
            closed.append(sid)
    target.updated_at = now
    events.note(session, target_id, "a_merge", now=now, actor_id=actor_id, source=source,
                detail={"alert_ids": list(origin), "from_incidents": sources, "comment": comment[:1024]})
    if closed:  # the domain event that updates the target's cards and tells incident webhooks
        await events.emit(session, target, events.I_MERGE, now=now, actor_id=actor_id, source=source,
                          detail={"merged": closed, "comment": comment[:1024]})
    await _alert_webhooks(session, [[a.id, "a_merge", a.channel_id, target_id] for a in moving], now, actor_id)
    return target

