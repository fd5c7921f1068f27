"""Domain events: every incident transition writes a timeline entry and a durable fan-out job.

Subscribers (escalation, card updates, group bots, outgoing webhooks) are registered by
the composition root (bot/server.py) with `subscribe`; core never imports them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import jobs
from core.models import Incident, TimelineEntry

log = logging.getLogger("vigil.events")

# Flashduty incident event names (reference section 4.1).
I_NEW, I_ACK, I_UNACK, I_SNOOZE, I_WAKE = "i_new", "i_ack", "i_unack", "i_snooze", "i_wake"
I_RSLV, I_REOPEN, I_ASSIGN, I_COMM, I_MERGE = "i_rslv", "i_reopen", "i_assign", "i_comm", "i_merge"
I_STORM, I_CUSTOM = "i_storm", "i_custom"
EVENT_TYPES = (I_NEW, I_ACK, I_UNACK, I_SNOOZE, I_WAKE, I_RSLV, I_REOPEN, I_ASSIGN, I_COMM, I_MERGE, I_STORM,
               I_CUSTOM)

# A subscriber takes a batch of events' args ({"incident_id", "kind", "entry_id"}), in commit order.
Subscriber = Callable[[jobs.JobContext, list[dict[str, Any]]], Awaitable[None]]
_SUBSCRIBERS: list[tuple[str, frozenset[str] | None, Subscriber]] = []
DISPATCH_JOB = "incident_event"


def subscribe(name: str, fn: Subscriber, kinds: frozenset[str] | None = None) -> None:
    """Register `fn` for events of `kinds` (None = all); each subscriber runs as its own job."""
    _SUBSCRIBERS[:] = [s for s in _SUBSCRIBERS if s[0] != name]
    _SUBSCRIBERS.append((name, kinds, fn))


def subscribers() -> list[str]:
    return [s[0] for s in _SUBSCRIBERS]


async def emit(
    session: AsyncSession,
    incident: Incident,
    kind: str,
    *,
    now: datetime,
    actor_id: int | None = None,
    source: str = "system",
    detail: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Record `kind` on the incident's timeline and schedule its fan-out in the same transaction."""
    entry = TimelineEntry(
        incident_id=incident.id, at=now, kind=kind, actor_id=actor_id, source=source, detail=detail or {}
    )
    session.add(entry)
    await session.flush()
    if kind in EVENT_TYPES:
        await jobs.schedule(
            session,
            DISPATCH_JOB,
            {"incident_id": incident.id, "kind": kind, "entry_id": entry.id},
            due_at=now,
            job_id=f"{DISPATCH_JOB}:{entry.id}",
        )
    return entry


def note(
    session: AsyncSession,
    incident_id: int,
    kind: str,
    *,
    now: datetime,
    actor_id: int | None = None,
    source: str = "system",
    detail: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Record a timeline entry that is not a domain event (a delivery attempt, a fallback...)."""
    entry = TimelineEntry(
        incident_id=incident_id, at=now, kind=kind, actor_id=actor_id, source=source, detail=detail or {}
    )
    session.add(entry)
    return entry


@jobs.batch_job(DISPATCH_JOB)
async def dispatch(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """Fan events out to the interested subscribers, in this job.

    A subscriber gets every event of the batch it wants in one call (a storm's new incidents are
    started together: a few statements for the batch instead of a dozen per incident). Subscribers
    are quick (the slow ones, like webhooks, schedule their own jobs), so running them inline keeps
    an event at one job instead of one per subscriber. A subscriber that fails gets a job of its own
    per event, which the runner retries with backoff without re-running the others.
    """
    failed = []
    for name, kinds, fn in list(_SUBSCRIBERS):
        wanted = [a for a in batch if kinds is None or a["kind"] in kinds]
        if not wanted:
            continue
        try:
            await fn(ctx, wanted)
        except Exception:  # isolate: the other subscribers still run
            log.exception("event subscriber %s failed on %d events; retrying each on its own", name, len(wanted))
            failed += [(name, a) for a in wanted]
    if failed:
        async with ctx.sessionmaker() as session:
            for name, args in failed:
                await jobs.schedule(session, "subscriber", {**args, "subscriber": name}, due_at=ctx.now(),
                                    job_id=f"sub:{name}:{args['entry_id']}")
            await session.commit()


@jobs.job("subscriber")
async def run_subscriber(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    for name, _kinds, fn in _SUBSCRIBERS:
        if name == args["subscriber"]:
            await fn(ctx, [args])
            return
    log.warning("event subscriber %s is no longer registered", args["subscriber"])
