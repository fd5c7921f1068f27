"""Durable jobs and the two runners that trigger them (DESIGN rule 4).

A job is a row in the `job` table, written in the same transaction as the change that
needs it (an escalation step, a delivery, a domain event to fan out). Runners only
*trigger* rows: the in-process runner (default, `vigil serve` alone) and the arq runner
(Redis, `vigil worker`). A periodic sweeper re-triggers every due row that no runner
holds, so a job lost from Redis or a killed worker delays work by seconds, never drops it.

Exactly-once start: a runner must *claim* a row (pending -> running, one UPDATE with a
lease) before running it, so two workers racing on the same id never both run it. A
worker that dies mid-job leaves a lease that expires; the sweeper then hands the row
out again, so job functions must be idempotent against their own domain state.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import utcnow
from core.models import Job

log = logging.getLogger("vigil.jobs")

LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 8
ARQ_FUNCTION = "run_job"


@dataclass
class JobContext:
    """What a job function gets: the database, composed services (adapters...), and the clock."""

    sessionmaker: async_sessionmaker[AsyncSession]
    services: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], datetime] = utcnow


JobFn = Callable[[JobContext, dict[str, Any]], Awaitable[None]]
REGISTRY: dict[str, JobFn] = {}


def job(name: str) -> Callable[[JobFn], JobFn]:
    """Register a job function under `name` (explicit registry: every job name is grep-able)."""

    def deco(fn: JobFn) -> JobFn:
        REGISTRY[name] = fn
        return fn

    return deco


async def schedule(
    session: AsyncSession,
    name: str,
    args: dict[str, Any],
    *,
    due_at: datetime,
    job_id: str | None = None,
) -> str:
    """Add a job row in the caller's transaction; scheduling an existing id again is a no-op."""
    job_id = job_id or f"{name}:{uuid.uuid4().hex}"
    if await session.get(Job, job_id) is not None:
        return job_id
    session.add(Job(id=job_id, name=name, args=args, due_at=due_at, created_at=due_at, updated_at=due_at))
    session.info.setdefault("vigil_jobs", []).append((job_id, due_at))
    return job_id


def backoff(attempts: int) -> timedelta:
    """Exponential backoff between failed attempts: 2, 4, 8 ... seconds, capped at 5 minutes."""
    return timedelta(seconds=min(2**attempts, 300))


async def claim(session: AsyncSession, job_id: str, now: datetime) -> Job | None:
    """Atomically take a due pending job; None if another runner has it or it is not due."""
    res = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == "pending", Job.due_at <= now)
        .values(state="running", locked_until=now + LEASE, attempts=Job.attempts + 1, updated_at=now)
    )
    if res.rowcount != 1:
        await session.commit()
        return None
    row = await session.get(Job, job_id, populate_existing=True)
    await session.commit()  # no transaction stays open while the job runs
    return row


async def run_job(ctx: JobContext, job_id: str) -> bool:
    """Claim and run one job; returns whether this call ran it."""
    async with ctx.sessionmaker() as session:
        row = await claim(session, job_id, ctx.now())
        if row is None:
            return False
        fn = REGISTRY.get(row.name)
        error = ""
        try:
            if fn is None:
                raise LookupError(f"no job function named {row.name!r}")
            await fn(ctx, dict(row.args))
        except Exception as exc:  # a failing job must never take the runner down
            log.exception("job %s failed (attempt %d)", job_id, row.attempts)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        now = ctx.now()
        if not error:
            values: dict[str, Any] = {"state": "done", "locked_until": None, "updated_at": now}
        elif row.attempts >= MAX_ATTEMPTS:
            values = {"state": "failed", "locked_until": None, "last_error": error, "updated_at": now}
        else:
            values = {
                "state": "pending",
                "locked_until": None,
                "last_error": error,
                "due_at": now + backoff(row.attempts),
                "updated_at": now,
            }
        await session.execute(update(Job).where(Job.id == job_id).values(**values))
        due = values.get("due_at")
        if due is not None:
            session.info.setdefault("vigil_jobs", []).append((job_id, due))
        await session.commit()
        return True


async def sweep(session: AsyncSession, now: datetime, horizon: timedelta, limit: int = 1000) -> list[tuple[str, datetime]]:
    """Release expired leases and list pending jobs due before now + horizon."""
    await session.execute(
        update(Job)
        .where(Job.state == "running", Job.locked_until < now)
        .values(state="pending", locked_until=None, updated_at=now)
    )
    await session.commit()
    rows = await session.execute(
        select(Job.id, Job.due_at)
        .where(Job.state == "pending", Job.due_at <= now + horizon)
        .order_by(Job.due_at)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


class Runner(Protocol):
    """Triggers job rows; `wake` is called after a commit that added or rescheduled jobs."""

    def wake(self, jobs: list[tuple[str, datetime]]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def attach_runner(sessionmaker: async_sessionmaker[AsyncSession], runner: Runner) -> None:
    """Make every commit through `sessionmaker` wake `runner` for the jobs it wrote."""
    sync_cls = sessionmaker.kw["sync_session_class"]

    def _after_commit(sync_session: Any) -> None:
        jobs = sync_session.info.pop("vigil_jobs", None)
        if jobs:
            runner.wake(jobs)

    def _after_rollback(sync_session: Any) -> None:
        sync_session.info.pop("vigil_jobs", None)

    event.listen(sync_cls, "after_commit", _after_commit)
    event.listen(sync_cls, "after_soft_rollback", lambda s, _t: _after_rollback(s))


class Sweeper:
    """Periodically hands every due job row to `trigger` (both runners use it)."""

    def __init__(self, ctx: JobContext, trigger: Callable[[list[tuple[str, datetime]]], Any], interval: float) -> None:
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
    """Runs jobs inside this process: timers for due times, a few worker tasks, and a sweeper."""

    def __init__(self, ctx: JobContext, *, concurrency: int = 8, sweep_interval: float = 1.0) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._inflight: set[str] = set()
        self.sweeper = Sweeper(ctx, self.wake, sweep_interval)

    def wake(self, jobs: list[tuple[str, datetime]]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # committed outside a loop (e.g. a CLI script): the sweeper will pick it up
        now = self.ctx.now()
        for job_id, due_at in jobs:
            delay = (due_at - now).total_seconds() if due_at else 0.0
            old = self._timers.pop(job_id, None)
            if old:
                old.cancel()
            if delay <= 0:
                self._queue.put_nowait(job_id)
            else:
                self._timers[job_id] = loop.call_later(delay, self._fire, job_id)

    def _fire(self, job_id: str) -> None:
        self._timers.pop(job_id, None)
        self._queue.put_nowait(job_id)

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            if job_id in self._inflight:
                continue
            self._inflight.add(job_id)
            try:
                await run_job(self.ctx, job_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # database hiccup while claiming: the sweeper retries
                log.exception("runner failed on %s", job_id)
            finally:
                self._inflight.discard(job_id)

    async def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        self.sweeper.start()

    async def stop(self) -> None:
        await self.sweeper.stop()
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until nothing is queued or running (tests and graceful shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while loop.time() < deadline and quiet < 3:  # idle for a few ticks: follow-up jobs had their chance
            busy = not self._queue.empty() or bool(self._inflight)
            quiet = 0 if busy else quiet + 1
            await asyncio.sleep(0.01)


class ArqRunner:
    """Hands jobs to arq on Redis (web side of a distributed deployment); `vigil worker` runs them."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.pool: Any = None
        self._pending: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.pool = await create_pool(RedisSettings.from_dsn(self.redis_url))

    async def stop(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self.pool is not None:
            await self.pool.aclose()

    def wake(self, jobs: list[tuple[str, datetime]]) -> None:
        task = asyncio.ensure_future(enqueue_arq(self.pool, jobs))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)


async def enqueue_arq(pool: Any, jobs: list[tuple[str, datetime]]) -> None:
    """Enqueue rows on arq with the row id as arq job id, so a row is queued at most once."""
    for job_id, due_at in jobs:
        # arq refuses a second job with the same id while one is queued: free dedup.
        await pool.enqueue_job(ARQ_FUNCTION, job_id, _job_id=job_id, _defer_until=due_at)


def arq_worker_settings(ctx: JobContext, redis_url: str, sweep_interval: float) -> dict[str, Any]:
    """Keyword arguments for arq.Worker: one function (`run_job`) plus a sweeper started with it."""
    from arq.connections import RedisSettings
    from arq.worker import func

    async def run_job_arq(_arq_ctx: dict[str, Any], job_id: str) -> None:
        await run_job(ctx, job_id)

    async def on_startup(arq_ctx: dict[str, Any]) -> None:
        sweeper = Sweeper(ctx, lambda due: enqueue_arq(arq_ctx["redis"], due), sweep_interval)
        arq_ctx["sweeper"] = sweeper
        sweeper.start()

    async def on_shutdown(arq_ctx: dict[str, Any]) -> None:
        if "sweeper" in arq_ctx:
            await arq_ctx["sweeper"].stop()

    return {
        "functions": [func(run_job_arq, name=ARQ_FUNCTION, max_tries=1)],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "keep_result": 0,  # frees the arq job id at once, so a rescheduled row can be queued again
        "max_jobs": 20,
        "handle_signals": False,
        "poll_delay": 0.05,
    }
