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
from core.types import urgency_of

log = logging.getLogger("vigil.events")

# Flashduty incident event names (reference section 4.1).
I_NEW, I_ACK, I_UNACK, I_SNOOZE, I_WAKE = "i_new", "i_ack", "i_unack", "i_snooze", "i_wake"
I_RSLV, I_REOPEN, I_ASSIGN, I_COMM, I_MERGE = "i_rslv", "i_reopen", "i_assign", "i_comm", "i_merge"
I_STORM, I_CUSTOM = "i_storm", "i_custom"
# Added responders and edits of title, description and severity (core/manual_incidents.py).
I_A_RSPD, I_R_TITLE, I_R_DESC, I_R_SEVERITY = "i_a_rspd", "i_r_title", "i_r_desc", "i_r_severity"
I_R_FIELD = "i_r_field"  # a custom field's value set or cleared (core/custom_fields.py)
EVENT_TYPES = (I_NEW, I_ACK, I_UNACK, I_SNOOZE, I_WAKE, I_RSLV, I_REOPEN, I_ASSIGN, I_COMM, I_MERGE, I_STORM,
               I_CUSTOM, I_A_RSPD, I_R_TITLE, I_R_DESC, I_R_SEVERITY, I_R_FIELD)

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
            urgency=urgency_of(incident.severity),
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


# emit_many's statements, built once. SQLite: entries, then their fan-out jobs, each one multi-row
# INSERT (ids come unordered: SQLite gives a batch's rows max(id)+1 onwards in VALUES order, and no
# other writer interleaves, so the sorted ids are the rows' ids in order). PostgreSQL: both in one
# statement, each entry's id drawn from the sequence first and returned in parameter order.
import json  # noqa: E402

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: E402

from core.models import Job  # noqa: E402


def _many_statements() -> tuple[Any, Any, Any]:
    entry, job = TimelineEntry.__table__, Job.__table__  # type: ignore[attr-defined]
    entries = insert(entry).returning(entry.c.id)
    fanout = sqlite_insert(job).on_conflict_do_nothing(index_elements=["id"]).returning(job.c.id)
    pg = text("""
WITH e AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('timeline_entry', 'id')) AS id, u.incident_id, u.detail, u.urgency, u.ord
    FROM unnest(CAST(:incident_ids AS INTEGER[]), CAST(:details AS TEXT[]), CAST(:urgencies AS SMALLINT[]))
         WITH ORDINALITY AS u(incident_id, detail, urgency, ord)
), entries AS (
    INSERT INTO timeline_entry (id, incident_id, at, kind, actor_id, source, detail)
    SELECT e.id, e.incident_id, CAST(:at AS TIMESTAMPTZ), CAST(:kind AS VARCHAR), CAST(:actor_id AS INTEGER),
           CAST(:source AS VARCHAR), CAST(e.detail AS JSON)
    FROM e
), fanout AS (
    INSERT INTO job (id, name, args, state, attempts, last_error, due_at, created_at, updated_at, urgency)
    SELECT CAST(:job AS VARCHAR) || ':' || CAST(e.id AS VARCHAR), CAST(:job AS VARCHAR),
           json_build_object('incident_id', e.incident_id, 'kind', CAST(:kind AS VARCHAR), 'entry_id', e.id),
           'pending', 0, '', CAST(:at AS TIMESTAMPTZ), CAST(:at AS TIMESTAMPTZ), CAST(:at AS TIMESTAMPTZ), e.urgency
    FROM e WHERE CAST(:fan_out AS BOOLEAN)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
SELECT CAST(e.id AS INTEGER), fanout.id, e.urgency FROM e
LEFT JOIN fanout ON fanout.id = CAST(:job AS VARCHAR) || ':' || CAST(e.id AS VARCHAR)
ORDER BY e.ord
""")
    return entries, fanout, pg


_MANY_SQLITE_ENTRIES, _MANY_SQLITE_JOBS, _MANY_PG = _many_statements()


async def emit_many(
    session: AsyncSession,
    kind: str,
    incident_ids: list[int],
    *,
    now: datetime,
    actor_id: int | None = None,
    source: str = "system",
    details: list[dict[str, Any]] | None = None,
    urgencies: list[int] | None = None,
) -> list[int]:
    """`emit` for many incidents at once: one timeline entry each (`details[i]` for `incident_ids[i]`)
    and, for a domain event, each entry's fan-out job (its urgency `urgencies[i]`: core.types.urgency_of
    the incident's severity), in a few multi-row statements in the caller's
    transaction; the jobs are woken after its commit as `jobs.schedule` does. Returns the entry ids,
    in the order of `incident_ids`. Nothing goes through the ORM: the session's objects are neither
    flushed nor told of the new rows."""
    if not incident_ids:
        return []
    details = details if details is not None else [{} for _ in incident_ids]
    urgencies = urgencies if urgencies is not None else [1 for _ in incident_ids]
    fan_out = kind in EVENT_TYPES
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        rows = (await conn.execute(_MANY_PG, {
            "incident_ids": incident_ids, "details": [json.dumps(d) for d in details], "urgencies": urgencies,
            "at": now, "kind": kind, "actor_id": actor_id, "source": source, "job": DISPATCH_JOB,
            "fan_out": fan_out})).all()
        entry_ids = [r[0] for r in rows]
        woken = [(r[1], r[2]) for r in rows if r[1] is not None]
    else:
        result = await conn.execute(_MANY_SQLITE_ENTRIES, [
            {"incident_id": i, "at": now, "kind": kind, "actor_id": actor_id, "source": source, "detail": d}
            for i, d in zip(incident_ids, details, strict=True)])
        entry_ids = sorted(r[0] for r in result.all())
        woken = []
        if fan_out:
            result = await conn.execute(_MANY_SQLITE_JOBS, [
                {"id": f"{DISPATCH_JOB}:{e}", "name": DISPATCH_JOB, "args": {"incident_id": i, "kind": kind, "entry_id": e},
                 "state": "pending", "attempts": 0, "last_error": "", "due_at": now, "created_at": now, "updated_at": now,
                 "urgency": u}
                for i, e, u in zip(incident_ids, entry_ids, urgencies, strict=True)])
            inserted = {r[0] for r in result.all()}
            woken = [(job_id, u) for e, u in zip(entry_ids, urgencies, strict=True)
                     if (job_id := f"{DISPATCH_JOB}:{e}") in inserted]
    if woken:
        session.info.setdefault("vigil_jobs", []).extend(jobs.Wake(job_id, now, 0, u) for job_id, u in woken)
    return entry_ids
