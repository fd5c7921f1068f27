"""Durable jobs and the two runners that trigger them (DESIGN rule 4).

A job is a row in the `job` table, written in the same transaction as the change that
needs it (an escalation step, a delivery, a domain event to fan out). Runners only
*trigger* rows: the in-process runner (default, `vigil serve` alone) and the arq runner
(Redis, `vigil worker`). A periodic sweeper re-triggers every due row that no runner
holds, so a job lost from Redis or a killed worker delays work by seconds, never drops it.

Exactly-once start: a runner must *claim* a row (pending -> running, one UPDATE with a
lease) before running it, so two workers racing on the same id never both run it. The lease
is short (LEASE) and the process running the job renews it while it runs (`Leases`); a worker
that dies mid-job stops renewing, its lease expires within seconds, and the sweeper hands the
row out again, so job functions must be idempotent against their own domain state.

Correctness never rests on the queue's own bookkeeping: arq only carries wake-ups, under an arq
id that names the row *and* its attempt (`arq_id`), so a dead worker's stale arq entry (held by
arq for its job timeout) never hides the row's next offer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import utcnow
from core.db import is_postgres
from core.models import Job

log = logging.getLogger("vigil.jobs")

# A running job's claim lasts LEASE unless renewed; its process renews every RENEW_EVERY, so a
# killed worker's jobs are handed out again LEASE + one sweep interval after it died.
LEASE = timedelta(seconds=10)
RENEW_EVERY = 2.5
MAX_ATTEMPTS = 8
ARQ_FUNCTION = "run_job"


class Wake(NamedTuple):
    """A job row to trigger: its id, when it is due, its attempts so far (which names its arq offer), and its
    urgency (Job.urgency: lower first when work piles up)."""

    id: str
    due_at: datetime | None
    attempts: int = 0
    urgency: int = 1


@dataclass
class JobContext:
    """What a job function gets: the database, composed services (adapters...), and the clock."""

    sessionmaker: async_sessionmaker[AsyncSession]
    services: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], datetime] = utcnow


JobFn = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
REGISTRY: dict[str, JobFn] = {}


# The states the partial index ix_job_open_due covers; queries over open rows name them so that SQLite,
# which does not infer `state IN (...)` from `state = 'pending'`, uses that index too.
OPEN = ("pending", "running")
BatchFn = Callable[[JobContext, list[dict[str, Any]]], Awaitable[None]]
BATCHED: dict[str, BatchFn] = {}
BATCH_SIZE = 32


def job(name: str) -> Callable[[JobFn], JobFn]:
    """Register a job function under `name` (explicit registry: every job name is grep-able)."""

    def deco(fn: JobFn) -> JobFn:
        REGISTRY[name] = fn
        return fn

    return deco


def batch_job(name: str) -> Callable[[BatchFn], BatchFn]:
    """Register a job function that takes many jobs' args at once (a runner holding several due jobs of
    `name` runs them in one call; alone, a job is a batch of one). It records each job's own outcome in
    the domain (a failed send is retried by its own row), so it raises only when the whole batch failed."""

    def deco(fn: BatchFn) -> BatchFn:
        BATCHED[name] = fn

        async def one(ctx: JobContext, args: dict[str, Any]) -> None:
            await fn(ctx, [args])

        REGISTRY[name] = one
        return fn

    return deco


def insert_for(session: AsyncSession) -> Any:
    """The dialect's INSERT, for ON CONFLICT DO NOTHING (both SQLite and PostgreSQL have it)."""
    if session.bind is not None and is_postgres(session.bind):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


async def schedule(
    session: AsyncSession,
    name: str,
    args: dict[str, Any],
    *,
    due_at: datetime,
    job_id: str | None = None,
    urgency: int = 1,
) -> str:
    """Add a job row in the caller's transaction; scheduling an existing id again is a no-op. `urgency`:
    core.types.urgency_of the incident's severity, for jobs that serve one."""
    job_id = job_id or f"{name}:{uuid.uuid4().hex}"
    # One statement instead of a lookup then an insert: jobs are on every hot path (events, pages).
    stmt = (
        insert_for(session)(Job)
        .values(id=job_id, name=name, args=args, state="pending", attempts=0, last_error="", due_at=due_at,
                created_at=due_at, updated_at=due_at, urgency=urgency)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    res = await session.execute(stmt)
    if res.rowcount:
        session.info.setdefault("vigil_jobs", []).append(Wake(job_id, due_at, 0, urgency))
    return job_id


async def schedule_many(session: AsyncSession, name: str, jobs: list[tuple[str, dict[str, Any], int]], *,
                        due_at: datetime) -> None:
    """Add many job rows of one name, as (id, args, urgency), in one statement (ids that exist already are
    skipped)."""
    if not jobs:
        return
    # One statement with many parameter sets (the driver batches the rows), not a multi-row VALUES built
    # per call: SQLAlchemy cannot cache the compiled form of those, and compiling cost more than the insert.
    table = Job.__table__  # type: ignore[attr-defined]
    stmt = insert_for(session)(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
    added = (await session.execute(stmt, [
        {"id": job_id, "name": name, "args": args, "state": "pending", "attempts": 0, "last_error": "",
         "due_at": due_at, "created_at": due_at, "updated_at": due_at, "urgency": urgency}
        for job_id, args, urgency in jobs])).scalars().all()
    urgency_of = {job_id: urgency for job_id, _args, urgency in jobs}
    session.info.setdefault("vigil_jobs", []).extend(Wake(job_id, due_at, 0, urgency_of[job_id]) for job_id in added)


def backoff(attempts: int) -> timedelta:
    """Exponential backoff between failed attempts: 2, 4, 8 ... seconds, capped at 5 minutes."""
    return timedelta(seconds=min(2**attempts, 300))


@dataclass(frozen=True)
class Claimed:
    """A job row this runner holds the lease on."""

    id: str
    name: str
    args: dict[str, Any]
    attempts: int
    urgency: int = 1


async def claim_many(session: AsyncSession, job_ids: list[str], now: datetime) -> list[Claimed]:
    """Atomically take the due pending jobs among `job_ids` (one UPDATE ... RETURNING), in the order of
    `job_ids` (the runner's order: RETURNING's is the table's); the caller commits."""
    if not job_ids:
        return []
    got = await _take(session, now, Job.id.in_(job_ids), Job.due_at <= now)
    place = {job_id: i for i, job_id in enumerate(job_ids)}
    return sorted(got, key=lambda c: place[c.id])


async def _take(session: AsyncSession, now: datetime, *where: Any) -> list[Claimed]:
    """Move the pending rows matching `where` to running under a fresh lease, counting an attempt."""
    res = await session.execute(
        update(Job)
        .where(*where, Job.state == "pending")
        .values(state="running", locked_until=now + LEASE, attempts=Job.attempts + 1, updated_at=now)
        .returning(Job.id, Job.name, Job.args, Job.attempts, Job.urgency)
        .execution_options(synchronize_session=False)
    )
    return [Claimed(r[0], r[1], dict(r[2] or {}), r[3], r[4]) for r in res.all()]


async def claim(session: AsyncSession, job_id: str, now: datetime) -> Claimed | None:
    """Take one due pending job; None if another runner has it or it is not due."""
    got = await claim_many(session, [job_id], now)
    await session.commit()  # no transaction stays open while the job runs
    return got[0] if got else None


async def execute(ctx: JobContext, claimed: Claimed) -> str:
    """Run a claimed job's function; returns "" on success, else the error to record."""
    fn = REGISTRY.get(claimed.name)
    try:
        if fn is None:
            raise LookupError(f"no job function named {claimed.name!r}")
        await fn(ctx, dict(claimed.args))
    except Exception as exc:  # a failing job must never take the runner down
        log.exception("job %s failed (attempt %d)", claimed.id, claimed.attempts)
        return f"{type(exc).__name__}: {exc}"[:2000] or type(exc).__name__
    return ""


async def execute_group(ctx: JobContext, group: list[Claimed]) -> dict[str, str]:
    """Run a unit of claimed jobs (one job, or several of one batched name in one call); returns the
    errors of the jobs that failed. A failing batch is run again job by job, so one bad job fails alone
    instead of holding back the pages batched with it."""
    if len(group) == 1:
        error = await execute(ctx, group[0])
        return {group[0].id: error} if error else {}
    try:
        await BATCHED[group[0].name](ctx, [dict(c.args) for c in group])
    except Exception:  # a failing batch must never take the runner down
        log.exception("batch of %d %s jobs failed; running them one by one", len(group), group[0].name)
        errors = {}
        for c in group:
            if error := await execute(ctx, c):
                errors[c.id] = error
        return errors
    return {}


async def mark_done(session: AsyncSession, job_ids: list[str], now: datetime) -> None:
    """Record finished jobs (one UPDATE for a batch); the caller commits."""
    if job_ids:
        await session.execute(
            update(Job).where(Job.id.in_(job_ids), Job.state == "running")
            .values(state="done", locked_until=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )


async def mark_failed(session: AsyncSession, claimed: Claimed, error: str, now: datetime) -> None:
    """Record a failed attempt: back off and retry, or give up after MAX_ATTEMPTS; the caller commits."""
    values: dict[str, Any] = {"locked_until": None, "last_error": error, "updated_at": now}
    if claimed.attempts >= MAX_ATTEMPTS:
        values["state"] = "failed"
    else:
        values.update(state="pending", due_at=now + backoff(claimed.attempts))
        session.info.setdefault("vigil_jobs", []).append(Wake(claimed.id, values["due_at"], claimed.attempts,
                                                                      claimed.urgency))
    await session.execute(
        update(Job).where(Job.id == claimed.id).values(**values).execution_options(synchronize_session=False)
    )


async def run_job(ctx: JobContext, job_id: str, leases: Leases | None = None, *, gather: bool = False,
                  withdraw: Callable[[list[Claimed]], Awaitable[None]] | None = None) -> bool:
    """Claim and run one job, recording its outcome at once; returns whether this call ran it.

    With `leases`, the claims are renewed while the job runs (a slow provider must not let them expire).
    With `gather` (arq workers, which are handed one job at a time), a job of a batched name also claims
    other due jobs of its name and runs them together, and `withdraw` takes back their own offers.
    """
    return bool(await run_jobs(ctx, [job_id], leases, gather=gather, withdraw=withdraw))


async def run_jobs(ctx: JobContext, job_ids: list[str], leases: Leases | None = None, *, gather: bool = False,
                   withdraw: Callable[[list[Claimed]], Awaitable[None]] | None = None) -> int:
    """Claim the due pending jobs among `job_ids` and run them (batched names together); returns how many ran."""
    async with ctx.sessionmaker() as session:
        now = ctx.now()
        got = await claim_many(session, job_ids, now)
        names = {c.name for c in got}
        if gather and len(names) == 1 and got[0].name in BATCHED and len(got) < BATCH_SIZE:
            # A worker is handed what one commit offered; rows other commits offered since join the batch.
            got += await claim_due(session, got[0].name, now, BATCH_SIZE - len(got), not_ids=job_ids)
        await session.commit()
        if not got:
            return 0
        gathered = [c for c in got if c.id not in job_ids]
        if withdraw is not None and gathered:
            try:
                await withdraw(gathered)
            except Exception:  # only an optimisation: a stale offer just finds its row taken
                log.warning("could not withdraw %d gathered offers", len(gathered), exc_info=True)
        for c in got:
            if leases is not None:
                leases.hold(c.id)
        errors: dict[str, str] = {}
        try:
            for group in _groups(got):
                errors.update(await execute_group(ctx, group))
        finally:
            for c in got:
                if leases is not None:
                    leases.release(c.id)
        for c in got:
            if c.id in errors:
                await mark_failed(session, c, errors[c.id], ctx.now())
        await mark_done(session, [c.id for c in got if c.id not in errors], ctx.now())
        await session.commit()
        return len(got)


async def claim_due(session: AsyncSession, name: str, now: datetime, limit: int, *,
                    not_ids: list[str] | None = None) -> list[Claimed]:
    """Take up to `limit` due pending jobs of `name`, most urgent then oldest first, skipping rows another
    worker is taking."""
    due = (select(Job.id).where(Job.name == name, Job.state.in_(OPEN), Job.state == "pending", Job.due_at <= now,
                                Job.id.not_in(not_ids or []))
           .order_by(Job.urgency, Job.due_at).limit(limit))
    if session.bind is not None and is_postgres(session.bind):
        due = due.with_for_update(skip_locked=True)
    return await _take(session, now, Job.id.in_(due.scalar_subquery()))


class Leases:
    """The job rows this process is running, whose leases it renews every RENEW_EVERY seconds.

    One UPDATE per tick for all of them. Only rows still `running` are renewed, so a row the
    sweeper already released (this process stalled past its lease) is not taken back.
    """

    def __init__(self, ctx: JobContext, every: float = RENEW_EVERY) -> None:
        self.ctx, self.every = ctx, every
        self._held: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def hold(self, job_id: str) -> None:
        self._held.add(job_id)

    def release(self, job_id: str) -> None:
        self._held.discard(job_id)

    async def renew(self) -> int:
        ids = list(self._held)
        if not ids:
            return 0
        now = self.ctx.now()
        async with self.ctx.sessionmaker() as session:
            res = await session.execute(
                update(Job).where(Job.id.in_(ids), Job.state == "running")
                .values(locked_until=now + LEASE).execution_options(synchronize_session=False))
            await session.commit()
        return int(res.rowcount or 0)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; the lease still has a few seconds
                log.exception("could not renew %d job leases", len(self._held))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vigil-leases")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


async def sweep(session: AsyncSession, now: datetime, horizon: timedelta, limit: int = 1000) -> list[Wake]:
    """Release expired leases and list pending jobs due before now + horizon (oldest first)."""
    released = await session.execute(
        update(Job)
        .where(Job.state.in_(OPEN), Job.state == "running", Job.locked_until < now)
        .values(state="pending", locked_until=None, updated_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    lost = released.scalars().all()
    await session.commit()
    if lost:
        log.warning("%d job leases expired (their worker died or stalled); handing them out again: %s",
                    len(lost), ", ".join(lost[:10]))
    rows = await session.execute(
        select(Job.id, Job.due_at, Job.attempts, Job.urgency)
        .where(Job.state.in_(OPEN), Job.state == "pending", Job.due_at <= now + horizon)
        .order_by(Job.due_at)
        .limit(limit)
    )
    return [Wake(r[0], r[1], r[2], r[3]) for r in rows]


def run_order(job_id: str, urgency: int) -> tuple[int, int, int]:
    """The in-process runner's order when work piles up (lower first; first come first served within).

    In a storm, pages go out by severity, then arrival: all the work towards a page (fan-out, escalation
    steps, sends) of a more severe incident comes before that of a less severe one, so an unacknowledged
    Critical incident still escalates while Info ones queue. Within one severity, first pages come before
    later levels and repeats (someone has been paged for those already), and `priority` keeps pages
    flowing out progressively rather than all at the end.
    """
    kind = priority(job_id)
    return (urgency, 1 if kind == LATER_LEVEL else 0, kind)


LATER_LEVEL = 3


def priority(job_id: str) -> int:
    """The kind of work a job is, in the order it runs within one urgency (lower first).

    An incident's first page matters most: sends go first, then the first step of a new escalation,
    then event fan-out (which starts escalations), and later levels and repeats last.
    """
    name, _, rest = job_id.partition(":")
    if name == "deliver":
        return 0
    if name == "escalate":  # escalate:{incident}:{gen}:{level}:{loop}
        return 1 if rest.split(":")[2:] == ["0", "0"] else LATER_LEVEL
    return 2


def _groups(claimed: list[Claimed]) -> list[list[Claimed]]:
    """Claimed jobs as units of work, in claim (priority) order: jobs of a batched name together, up to
    BATCH_SIZE, every other job alone."""
    units: list[list[Claimed]] = []
    open_batch: dict[str, list[Claimed]] = {}
    for c in claimed:
        if c.name not in BATCHED:
            units.append([c])
            continue
        batch = open_batch.get(c.name)
        if batch is None or len(batch) >= BATCH_SIZE:
            batch = open_batch[c.name] = []
            units.append(batch)
        batch.append(c)
    return units


class Runner(Protocol):
    """Triggers job rows; `wake` is called after a commit that added or rescheduled jobs."""

    def wake(self, jobs: list[Wake]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def attach_runner(sessionmaker: async_sessionmaker[AsyncSession], runner: Runner) -> Callable[[], None]:
    """Make every commit through `sessionmaker` wake `runner` for the jobs it wrote; returns the undo."""
    sync_cls = sessionmaker.kw["sync_session_class"]

    def _after_commit(sync_session: Any) -> None:
        jobs = sync_session.info.pop("vigil_jobs", None)
        if jobs:
            runner.wake(jobs)

    def _after_rollback(sync_session: Any, _transaction: Any) -> None:
        sync_session.info.pop("vigil_jobs", None)

    event.listen(sync_cls, "after_commit", _after_commit)
    event.listen(sync_cls, "after_soft_rollback", _after_rollback)

    def detach() -> None:
        event.remove(sync_cls, "after_commit", _after_commit)
        event.remove(sync_cls, "after_soft_rollback", _after_rollback)

    return detach


class Sweeper:
    """Periodically hands every due job row to `trigger` (both runners use it)."""

    def __init__(self, ctx: JobContext, trigger: Callable[[list[Wake]], Any], interval: float) -> None:
        self.ctx, self.trigger, self.interval = ctx, trigger, interval
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        async with self.ctx.sessionmaker() as session:
            due = await sweep(session, self.ctx.now(), timedelta(seconds=self.interval * 2))
        if due:
            result = self.trigger(due)
            if asyncio.iscoroutine(result):
                await result
        return len(due)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; try again next tick
                log.exception("sweep failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vigil-sweeper")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class InProcessRunner:
    """Runs jobs inside this process: timers for due times, batched claims, a few workers, a sweeper.

    Per-job bookkeeping is batched, because it used to cost more than most jobs: the pump claims
    every queued id in one UPDATE ... RETURNING, and successes are marked done in the next claim's
    transaction (or by a short timer). A crash before that mark only re-runs a finished job once
    its lease expires, which job functions tolerate (they are idempotent against domain state).
    """

    def __init__(self, ctx: JobContext, *, concurrency: int = 8, sweep_interval: float = 1.0,
                 batch: int = 64) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self.batch = batch
        self._queue: asyncio.PriorityQueue[tuple[tuple[int, int, int], int, str]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._queued: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._inflight: set[str] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._room = asyncio.Event()
        self._room.set()
        self._done: list[str] = []
        self._inflight_rank: dict[str, tuple[int, int]] = {}  # run_order's (urgency, stage) of each job running
        self._eased = asyncio.Event()  # set when running work finishes or new work queues
        self._tasks: set[asyncio.Task[None]] = set()
        self._pump_task: asyncio.Task[None] | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self.sweeper = Sweeper(ctx, self.wake, sweep_interval)
        self.leases = Leases(ctx)

    def wake(self, jobs: list[Wake]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # committed outside a loop (e.g. a CLI script): the sweeper will pick it up
        now = self.ctx.now()
        for job_id, due_at, _attempts, urgency in jobs:
            delay = (due_at - now).total_seconds() if due_at else 0.0
            old = self._timers.pop(job_id, None)
            if old:
                old.cancel()
            if delay <= 0:
                self._enqueue(job_id, urgency)
            else:
                # A hair late: the loop's timer may fire a little before the wall clock says "due",
                # and a claim that finds the row not yet due leaves it to the next sweep.
                self._timers[job_id] = loop.call_later(delay + 0.005, self._fire, job_id, urgency)

    def _enqueue(self, job_id: str, urgency: int) -> None:
        if job_id not in self._queued and job_id not in self._inflight:
            self._queued.add(job_id)
            self._queue.put_nowait((run_order(job_id, urgency), next(self._seq), job_id))
            self._eased.set()

    def _fire(self, job_id: str, urgency: int) -> None:
        self._timers.pop(job_id, None)
        self._enqueue(job_id, urgency)

    def _take(self, first: tuple[tuple[int, int, int], int, str]) -> list[str]:
        """The first queued job and more of its urgency and stage (`run_order`), up to a batch: a take never
        carries less urgent work along, which would then run beside the urgent work, not after it."""
        ids = [first[2]]
        while len(ids) < self.batch and not self._queue.empty():
            item = self._queue.get_nowait()
            if item[0][:2] != first[0][:2]:
                self._queue.put_nowait(item)  # its place is kept: same key, same sequence number
                break
            ids.append(item[2])
        self._queued.difference_update(ids)
        return [i for i in dict.fromkeys(ids) if i not in self._inflight]

    async def _pump(self) -> None:
        while True:
            await self._room.wait()
            first = await self._queue.get()
            rank = first[0][:2]
            if any(held < rank for held in self._inflight_rank.values()):
                # More urgent work is running: this waits for it (or for more urgent work to queue), so a
                # storm's Critical pages get the process before the Info ones, not merely beside them.
                self._queue.put_nowait(first)
                self._eased.clear()
                await self._eased.wait()
                continue
            ids = self._take(first)
            try:
                claimed = await self._claim(ids)
            except asyncio.CancelledError:
                raise
            except Exception:  # database hiccup while claiming: the sweeper hands the ids out again
                log.exception("runner could not claim %d jobs", len(ids))
                await asyncio.sleep(0.1)
                continue
            for c in claimed:
                self._inflight.add(c.id)
                self._inflight_rank[c.id] = rank
                self.leases.hold(c.id)  # claimed work waiting for a slot keeps its lease too
            for group in _groups(claimed):
                task = asyncio.create_task(self._run(group))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(self._inflight) >= self.concurrency * 2:
                self._room.clear()  # enough claimed work waiting for a slot: let it drain first

    async def _claim(self, ids: list[str]) -> list[Claimed]:
        done, self._done = self._done, []
        try:
            async with self.ctx.sessionmaker() as session:
                now = self.ctx.now()
                await mark_done(session, done, now)
                claimed = await claim_many(session, ids, now)
                await session.commit()
        except BaseException:
            self._done = done + self._done
            raise
        return claimed

    async def _run(self, group: list[Claimed]) -> None:
        try:
            async with self._slots:
                errors = await execute_group(self.ctx, group)
                if errors:
                    async with self.ctx.sessionmaker() as session:
                        for c in group:
                            if c.id in errors:
                                await mark_failed(session, c, errors[c.id], self.ctx.now())
                        await session.commit()
                self._done.extend(c.id for c in group if c.id not in errors)
                self._schedule_flush()
        except asyncio.CancelledError:
            raise
        except Exception:  # recording the outcome failed: the lease expires and the sweeper retries
            log.exception("runner failed on %s", ", ".join(c.id for c in group))
        finally:
            for c in group:
                self._inflight.discard(c.id)
                self._inflight_rank.pop(c.id, None)
                self.leases.release(c.id)
            self._eased.set()
            if len(self._inflight) < self.concurrency * 2:
                self._room.set()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(0.05, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        task = asyncio.create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Mark finished jobs done now (normally piggybacks on the next claim)."""
        done, self._done = self._done, []
        if not done:
            return
        try:
            async with self.ctx.sessionmaker() as session:
                await mark_done(session, done, self.ctx.now())
                await session.commit()
        except Exception:  # try again with the next batch; at worst the lease expires and the job re-runs
            log.exception("could not mark %d jobs done", len(done))
            self._done = done + self._done

    async def start(self) -> None:
        self._pump_task = asyncio.create_task(self._pump(), name="vigil-jobs")
        self.sweeper.start()
        self.leases.start()

    async def stop(self) -> None:
        await self.sweeper.stop()
        await self.leases.stop()
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
            self._pump_task = None
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.flush()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until nothing is queued or running (tests and graceful shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while loop.time() < deadline and quiet < 3:  # idle for a few ticks: follow-up jobs had their chance
            busy = not self._queue.empty() or bool(self._inflight)
            quiet = 0 if busy else quiet + 1
            await asyncio.sleep(0.01)
        await self.flush()


class ArqRunner:
    """Hands jobs to arq on Redis; `vigil worker` runs them. `vigil serve` owns a pool from `redis_url`;
    a worker passes its own arq pool, so jobs its jobs create are queued at once, not at the next sweep."""

    def __init__(self, redis_url: str = "", pool: Any = None) -> None:
        self.redis_url = redis_url
        self.pool: Any = pool
        self._own_pool = pool is None
        self._pending: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        if self.pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            self.pool = await create_pool(RedisSettings.from_dsn(self.redis_url))

    async def stop(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self.pool is not None and self._own_pool:
            await self.pool.aclose()

    def wake(self, jobs: list[Wake]) -> None:
        task = asyncio.ensure_future(self._enqueue(jobs))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _enqueue(self, jobs: list[Wake]) -> None:
        try:
            await enqueue_arq(self.pool, jobs)
        except Exception:  # Redis away: the rows are durable and the sweeper offers them again
            log.exception("could not queue %d jobs on arq; the sweeper will", len(jobs))


def arq_id(job: Wake) -> str:
    """The arq job id of one offer of a row: the row id and its attempts so far.

    arq refuses an id it still holds, and after a worker dies it holds that id for its job timeout.
    The next offer of the same row (after a failure, or after its lease expired) has a new attempts
    count, so it is never refused because of an old one; the row's claim keeps it exactly-once.
    """
    return f"{job.id}@{job.attempts}"


ARQ_BATCH_FUNCTION = "run_jobs"
# arq hands out offers by score (the time they are due), oldest first. An offer of a row that is due already
# is scored this much earlier per step of urgency, so in a backlog a Critical page offered a minute after an
# Info one still comes first (worker logs then show these as "delayed"). Rows not yet due keep their due time.
URGENCY_LEAD = timedelta(seconds=60)
LEAST_URGENT = 2

OFFER_MARK = "vigil:offer:"  # + arq_id: a row offered inside a batch offer, for LEASE


def offer_at(job: Wake, now: datetime) -> datetime:
    """The arq score of an offer of `job`: a hair past its due time (a worker must never find it not yet
    due), or for a due row, its due time less its urgency's lead."""
    due = job.due_at or now
    if due > now:
        return due + timedelta(milliseconds=5)
    return due - URGENCY_LEAD * max(0, LEAST_URGENT - job.urgency)


async def enqueue_arq(pool: Any, jobs: list[Wake]) -> None:
    """Offer rows on arq: due rows of a batched name as batch offers (one arq job, one Redis transaction,
    for up to BATCH_SIZE rows, each row marked as offered for LEASE), every other row on its own under
    `arq_id`, which dedups repeated offers of a row."""
    now = utcnow()
    batches: dict[str, list[Wake]] = {}
    singles = []
    for j in jobs:
        name = j.id.partition(":")[0]  # batched jobs' ids start with their name (deliver:, escalate:, ...)
        if name in BATCHED and (j.due_at is None or j.due_at <= now):
            batches.setdefault(name, []).append(j)
        else:
            singles.append(j)
    await _offer(pool, [(j, arq_id(j)) for j in singles], now)
    for same in batches.values():
        same.sort(key=lambda j: j.urgency)  # a chunk's rows share an urgency where they can
    chunks = [same[i:i + BATCH_SIZE] for same in batches.values() for i in range(0, len(same), BATCH_SIZE)]
    if not chunks:
        return
    async with pool.pipeline(transaction=False) as pipe:
        for j in (j for chunk in chunks for j in chunk):
            pipe.set(OFFER_MARK + arq_id(j), b"1", px=int(LEASE.total_seconds() * 1000))
        await pipe.execute()
    # Every row of a batch offer is due (see above): scored by its most urgent row.
    await asyncio.gather(*[pool.enqueue_job(ARQ_BATCH_FUNCTION, [j.id for j in chunk],
                                            _job_id=f"{chunk[0].id}@{chunk[0].attempts}+{uuid.uuid4().hex[:8]}",
                                            _defer_until=min(offer_at(j, now) for j in chunk))
                           for chunk in chunks])


async def _offer(pool: Any, offers: list[tuple[Wake, str]], now: datetime) -> None:
    # Concurrent, because each enqueue is a few Redis round trips and a burst of pages must not queue
    # behind them.
    for i in range(0, len(offers), 50):
        await asyncio.gather(*[pool.enqueue_job(ARQ_FUNCTION, j.id, _job_id=offer_id, _defer_until=offer_at(j, now))
                               for j, offer_id in offers[i:i + 50]])


async def enqueue_missing(pool: Any, jobs: list[Wake], now: datetime | None = None) -> None:
    """The sweeper's enqueue: offers arq does not hold, and offers a dead worker took but never started.

    Re-offering every due row each tick would cost a backlog of N jobs N enqueue attempts a tick,
    which is how a backlog used to feed itself; so a row whose offer simply waits in arq's queue is
    left alone. But an arq worker takes jobs (marks them in progress) before it claims their rows, and
    one killed in between leaves offers that arq hides from every other worker for its job timeout:
    a due row whose offer is "in progress" yet still unclaimed after LEASE is offered again, under an
    id that changes once per LEASE, so each such row costs at most one extra offer per lease period.
    """
    if not jobs:
        return
    from arq.constants import in_progress_key_prefix, job_key_prefix

    now = now or utcnow()
    async with pool.pipeline(transaction=False) as pipe:
        for j in jobs:
            pipe.exists(job_key_prefix + arq_id(j), OFFER_MARK + arq_id(j))
            pipe.exists(in_progress_key_prefix + arq_id(j))
        found = await pipe.execute()
    offers = []
    for j, held, taken in zip(jobs, found[::2], found[1::2], strict=True):
        # A row inside a batch offer is marked for LEASE only: a batch a dead worker took expires with it.
        overdue = (now - j.due_at).total_seconds() if j.due_at else 0.0
        if not held:
            offers.append((j, arq_id(j)))
        elif taken and overdue > LEASE.total_seconds():
            offers.append((j, f"{arq_id(j)}#{int(overdue // LEASE.total_seconds())}"))
    await _offer(pool, offers, now)


async def withdraw_offers(pool: Any, gathered: list[Claimed]) -> None:
    """Take the arq offers of rows a worker gathered into its batch off the queue, in one round trip, so
    no worker spends a dequeue and a claim on each of them. Their offer was made before the claim that
    counted one more attempt."""
    from arq.constants import default_queue_name, job_key_prefix

    offers = [arq_id(Wake(c.id, None, c.attempts - 1)) for c in gathered]
    async with pool.pipeline(transaction=False) as pipe:
        pipe.zrem(default_queue_name, *offers)
        pipe.delete(*[job_key_prefix + o for o in offers])
        await pipe.execute()


def arq_worker_settings(ctx: JobContext, redis_url: str, sweep_interval: float) -> dict[str, Any]:
    """Keyword arguments for arq.Worker: two functions (`run_job`, `run_jobs`) plus, started with them, a sweeper,
    the renewal of this worker's leases, and a runner so jobs created here are queued at once."""
    from arq.connections import RedisSettings
    from arq.worker import func

    leases = Leases(ctx)

    async def run_job_arq(arq_ctx: dict[str, Any], job_id: str) -> None:
        await run_job(ctx, job_id, leases, gather=True, withdraw=lambda got: withdraw_offers(arq_ctx["redis"], got))

    async def run_jobs_arq(arq_ctx: dict[str, Any], job_ids: list[str]) -> None:
        await run_jobs(ctx, job_ids, leases, gather=True, withdraw=lambda got: withdraw_offers(arq_ctx["redis"], got))

    async def on_startup(arq_ctx: dict[str, Any]) -> None:
        runner = ArqRunner(pool=arq_ctx["redis"])
        arq_ctx["detach"] = attach_runner(ctx.sessionmaker, runner)
        arq_ctx["runner"] = runner
        sweeper = Sweeper(ctx, lambda due: enqueue_missing(arq_ctx["redis"], due), sweep_interval)
        arq_ctx["sweeper"] = sweeper
        sweeper.start()
        leases.start()

    async def on_shutdown(arq_ctx: dict[str, Any]) -> None:
        if "sweeper" in arq_ctx:
            await arq_ctx["sweeper"].stop()
        await leases.stop()
        if "detach" in arq_ctx:
            arq_ctx["detach"]()
            await arq_ctx["runner"].stop()

    return {
        "functions": [func(run_job_arq, name=ARQ_FUNCTION, max_tries=1),
                      func(run_jobs_arq, name=ARQ_BATCH_FUNCTION, max_tries=1)],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "keep_result": 0,  # frees the arq job id at once
        "max_jobs": 20,
        "handle_signals": False,
        "poll_delay": 0.05,
    }
