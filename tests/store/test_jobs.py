"""Durable jobs: exactly-once claims, retries, lease expiry, and the sweeper, in-process and on arq."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import jobs
from core.clock import utcnow
from core.db import make_engine, make_sessionmaker
from core.models import Job

RAN: list[str] = []
FAIL_TIMES: dict[str, int] = {}


@jobs.job("test_record")
async def record(ctx, args):
    await asyncio.sleep(0.01)  # widen the race window
    if FAIL_TIMES.get(args["tag"], 0) > 0:
        FAIL_TIMES[args["tag"]] -= 1
        raise RuntimeError("provider said 503")
    RAN.append(args["tag"])


@pytest.fixture
async def ctx(db_url):
    RAN.clear()
    FAIL_TIMES.clear()
    engine = make_engine(db_url)
    yield jobs.JobContext(make_sessionmaker(engine))
    await engine.dispose()


async def add(ctx, tag, due=None, job_id=None):
    async with ctx.sessionmaker() as s:
        jid = await jobs.schedule(s, "test_record", {"tag": tag}, due_at=due or utcnow(), job_id=job_id)
        await s.commit()
    return jid


async def state(ctx, jid):
    async with ctx.sessionmaker() as s:
        return await s.get(Job, jid)


async def test_racing_runners_run_a_job_once(ctx):
    jid = await add(ctx, "x")
    results = await asyncio.gather(*[jobs.run_job(ctx, jid) for _ in range(8)])
    assert results.count(True) == 1
    assert RAN == ["x"]
    assert (await state(ctx, jid)).state == "done"
    assert await jobs.run_job(ctx, jid) is False  # done stays done


async def test_deterministic_ids_schedule_once(ctx):
    a = await add(ctx, "x", job_id="escalate:1:0")
    b = await add(ctx, "y", job_id="escalate:1:0")
    assert a == b
    async with ctx.sessionmaker() as s:
        assert len((await s.execute(select(Job))).scalars().all()) == 1


async def test_not_due_jobs_wait(ctx):
    jid = await add(ctx, "later", due=utcnow() + timedelta(hours=1))
    assert await jobs.run_job(ctx, jid) is False
    assert RAN == []


async def test_failures_retry_with_backoff_then_succeed(ctx):
    FAIL_TIMES["flaky"] = 2
    jid = await add(ctx, "flaky")
    clock = [utcnow()]
    ctx.now = lambda: clock[0]
    for _ in range(3):
        assert await jobs.run_job(ctx, jid) is True
        row = await state(ctx, jid)
        clock[0] = (row.due_at or clock[0]) + timedelta(seconds=1)
    row = await state(ctx, jid)
    assert row.state == "done" and row.attempts == 3
    assert "503" in row.last_error
    assert RAN == ["flaky"]


async def test_exhausted_retries_mark_failed(ctx):
    FAIL_TIMES["bad"] = 100
    jid = await add(ctx, "bad")
    clock = [utcnow()]
    ctx.now = lambda: clock[0]
    for _ in range(jobs.MAX_ATTEMPTS):
        await jobs.run_job(ctx, jid)
        clock[0] += timedelta(minutes=10)
    row = await state(ctx, jid)
    assert row.state == "failed" and row.attempts == jobs.MAX_ATTEMPTS


async def test_killed_worker_lease_expires_and_sweeper_reruns(ctx):
    jid = await add(ctx, "crash")
    async with ctx.sessionmaker() as s:
        assert await jobs.claim(s, jid, utcnow()) is not None  # a worker took it ... and died
    runner = jobs.InProcessRunner(ctx, sweep_interval=0.05)
    await runner.start()
    try:
        await asyncio.sleep(0.2)
        assert RAN == []  # lease still held
        ctx.now = lambda: utcnow() + jobs.LEASE + timedelta(seconds=1)
        for _ in range(100):
            if RAN:
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.stop()
    assert RAN == ["crash"]


async def test_in_process_runner_fires_at_due_time(ctx):
    runner = jobs.InProcessRunner(ctx, sweep_interval=5)
    jobs.attach_runner(ctx.sessionmaker, runner)
    await runner.start()
    try:
        await add(ctx, "soon", due=utcnow() + timedelta(milliseconds=200))
        await asyncio.sleep(0.05)
        assert RAN == []
        for _ in range(100):
            if RAN:
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.stop()
    assert RAN == ["soon"]


@pytest.fixture
async def redis(redis_url):
    from redis.asyncio import Redis

    r = Redis.from_url(redis_url)
    await r.flushdb()
    yield r
    await r.flushdb()
    await r.aclose()


async def _run_workers(ctx, redis_url, n, until, timeout=15.0):
    from arq.worker import Worker

    workers = [Worker(**{**jobs.arq_worker_settings(ctx, redis_url, 0.1), "burst": False}) for _ in range(n)]
    tasks = [asyncio.create_task(w.async_run()) for w in workers]
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let the worker record the outcome before it is shut down
    finally:
        for w in workers:
            await w.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_job_lost_from_redis_is_done_after_sweep(ctx, redis, redis_url):
    runner = jobs.ArqRunner(redis_url)
    await runner.start()
    jobs.attach_runner(ctx.sessionmaker, runner)
    jid = await add(ctx, "lost")
    await asyncio.sleep(0.1)
    assert await redis.exists(f"arq:job:{jid}@0")  # enqueued on commit, as the row's first offer
    await redis.flushdb()  # Redis loses it
    await runner.stop()
    await _run_workers(ctx, redis_url, 1, lambda: bool(RAN))
    assert RAN == ["lost"]
    for _ in range(50):  # the worker marks the row done right after the function returns
        if (await state(ctx, jid)).state == "done":
            break
        await asyncio.sleep(0.05)
    assert (await state(ctx, jid)).state == "done"


async def test_two_workers_never_run_a_job_twice(ctx, redis, redis_url):
    from arq import create_pool
    from arq.connections import RedisSettings

    ids = [await add(ctx, f"j{i}") for i in range(30)]
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    for jid in ids:  # duplicates under different arq ids: only the database claim can stop them
        await pool.enqueue_job(jobs.ARQ_FUNCTION, jid, _job_id=jid)
        await pool.enqueue_job(jobs.ARQ_FUNCTION, jid, _job_id=jid + "#dup")
    await pool.aclose()
    await _run_workers(ctx, redis_url, 2, lambda: len(RAN) >= 30)
    await asyncio.sleep(0.2)
    assert sorted(RAN) == sorted(f"j{i}" for i in range(30))


@jobs.job("test_chain")
async def chain(ctx, args):
    """A job that schedules a follow-up, as an escalation step schedules deliveries."""
    async with ctx.sessionmaker() as s:
        await jobs.schedule(s, "test_record", {"tag": args["tag"] + "-next"}, due_at=ctx.now())
        await s.commit()
    RAN.append(args["tag"])


async def test_a_job_created_by_a_worker_is_queued_at_once(ctx, redis, redis_url):
    async with ctx.sessionmaker() as s:
        jid = await jobs.schedule(s, "test_chain", {"tag": "first"}, due_at=utcnow())
        await s.commit()
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await jobs.enqueue_arq(pool, [jobs.Wake(jid, None, 0)])
    await pool.aclose()
    from arq.worker import Worker

    # The sweeper ticks once a minute here: only the worker's own runner can queue the follow-up.
    worker = Worker(**{**jobs.arq_worker_settings(ctx, redis_url, 60.0), "burst": False})
    task = asyncio.create_task(worker.async_run())
    try:
        for _ in range(100):
            if "first-next" in RAN:
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert RAN == ["first", "first-next"]


@jobs.job("test_slow")
async def slow(ctx, args):
    await asyncio.sleep(args["seconds"])
    RAN.append(args["tag"])


async def test_a_running_job_keeps_its_lease_and_is_not_handed_out_twice(ctx):
    async with ctx.sessionmaker() as s:
        jid = await jobs.schedule(s, "test_slow", {"tag": "slow", "seconds": 0.6}, due_at=utcnow())
        await s.commit()
    clock = [utcnow()]
    ctx.now = lambda: clock[0]
    leases = jobs.Leases(ctx, every=0.05)
    leases.start()
    try:
        running = asyncio.create_task(jobs.run_job(ctx, jid, leases))
        for _ in range(10):  # the job runs for "minutes" of virtual time while its lease is renewed
            await asyncio.sleep(0.05)
            clock[0] += jobs.LEASE / 2
            async with ctx.sessionmaker() as s:
                assert await jobs.sweep(s, clock[0], timedelta(0)) == []  # nothing to hand out again
        assert await running is True
    finally:
        await leases.stop()
    assert RAN == ["slow"]
    assert (await state(ctx, jid)).state == "done"


async def test_an_expired_lease_is_offered_under_a_new_arq_id(ctx, redis, redis_url):
    """A dead worker's arq entry lives on for arq's job timeout; the row's next offer must not wait for it."""
    from arq import create_pool
    from arq.connections import RedisSettings

    jid = await add(ctx, "orphan")
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await jobs.enqueue_arq(pool, [jobs.Wake(jid, None, 0)])
    async with ctx.sessionmaker() as s:
        assert await jobs.claim(s, jid, utcnow()) is not None  # the worker took it ... and was killed
    later = utcnow() + jobs.LEASE + timedelta(seconds=1)
    async with ctx.sessionmaker() as s:
        due = await jobs.sweep(s, later, timedelta(0))
    assert due == [jobs.Wake(jid, due[0].due_at, 1)]
    await jobs.enqueue_missing(pool, due)
    assert await redis.exists(f"arq:job:{jid}@0")  # the stale offer is still there ...
    assert await redis.exists(f"arq:job:{jid}@1")  # ... and the new one was not refused because of it
    await pool.aclose()
    await _run_workers(ctx, redis_url, 1, lambda: bool(RAN))
    assert RAN == ["orphan"]


async def test_an_offer_a_dead_worker_took_but_never_started_is_made_again(ctx, redis, redis_url):
    """arq marks a job in progress before our claim; a worker killed in between hides the offer for 5 min."""
    from arq import create_pool
    from arq.connections import RedisSettings

    jid = await add(ctx, "taken", due=utcnow() - jobs.LEASE - timedelta(seconds=1))
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await jobs.enqueue_arq(pool, [jobs.Wake(jid, None, 0)])
    async with ctx.sessionmaker() as s:
        due = await jobs.sweep(s, utcnow(), timedelta(0))
    await jobs.enqueue_missing(pool, due)
    assert await redis.keys(f"arq:job:{jid}*") == [f"arq:job:{jid}@0".encode()]  # merely queued: left alone
    await redis.set(f"arq:in-progress:{jid}@0", b"1", px=300_000)  # the dead worker's mark
    await jobs.enqueue_missing(pool, due)
    await jobs.enqueue_missing(pool, due)  # the next tick of the same lease period adds nothing more
    assert sorted(await redis.keys(f"arq:job:{jid}*")) == [f"arq:job:{jid}@0".encode(), f"arq:job:{jid}@0#1".encode()]
    await pool.aclose()


BATCHES: list[list[str]] = []


@jobs.batch_job("test_batch")
async def batch(ctx, many):
    BATCHES.append([a["tag"] for a in many])


async def test_the_in_process_runner_runs_due_jobs_of_a_batched_name_together(ctx):
    BATCHES.clear()
    runner = jobs.InProcessRunner(ctx, sweep_interval=5)
    jobs.attach_runner(ctx.sessionmaker, runner)
    async with ctx.sessionmaker() as s:  # committed together, as one escalation step's deliveries are
        ids = [await jobs.schedule(s, "test_batch", {"tag": f"b{i}"}, due_at=utcnow()) for i in range(40)]
        await jobs.schedule(s, "test_record", {"tag": "alone"}, due_at=utcnow())
        await s.commit()
    await runner.start()
    try:
        for _ in range(500):
            if sum(map(len, BATCHES)) == 40 and RAN:
                break
            await asyncio.sleep(0.02)
        await runner.drain()
    finally:
        await runner.stop()
    assert sorted(t for b in BATCHES for t in b) == sorted(f"b{i}" for i in range(40))
    assert len(BATCHES) < 40 and max(map(len, BATCHES)) <= jobs.BATCH_SIZE
    assert RAN == ["alone"]
    for jid in ids:
        assert (await state(ctx, jid)).state == "done"


async def test_a_batched_job_run_alone_is_a_batch_of_one(ctx):
    BATCHES.clear()
    async with ctx.sessionmaker() as s:
        jid = await jobs.schedule(s, "test_batch", {"tag": "solo"}, due_at=utcnow())
        await s.commit()
    assert await jobs.run_job(ctx, jid) is True
    assert BATCHES == [["solo"]]


async def test_an_arq_worker_handed_one_batched_job_gathers_the_other_due_ones(ctx):
    BATCHES.clear()
    async with ctx.sessionmaker() as s:
        ids = [await jobs.schedule(s, "test_batch", {"tag": f"g{i}"}, due_at=utcnow()) for i in range(5)]
        await jobs.schedule(s, "test_batch", {"tag": "later"}, due_at=utcnow() + timedelta(hours=1))
        await s.commit()
    assert await jobs.run_job(ctx, ids[2], gather=True) is True
    assert len(BATCHES) == 1 and sorted(BATCHES[0]) == [f"g{i}" for i in range(5)]  # not the one due later
    assert [await jobs.run_job(ctx, i, gather=True) for i in ids] == [False] * 5  # their own offers: taken
    for jid in ids:
        assert (await state(ctx, jid)).state == "done"


async def test_gathered_rows_have_their_arq_offers_withdrawn(ctx, redis, redis_url):
    from arq import create_pool
    from arq.connections import RedisSettings

    BATCHES.clear()
    async with ctx.sessionmaker() as s:
        ids = [await jobs.schedule(s, "test_batch", {"tag": f"w{i}"}, due_at=utcnow()) for i in range(4)]
        await s.commit()
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await jobs.enqueue_missing(pool, [jobs.Wake(i, utcnow(), 0) for i in ids])  # the sweeper's own offers
    assert await redis.zcard("arq:queue") == 4
    assert await jobs.run_job(ctx, ids[0], gather=True, withdraw=lambda got: jobs.withdraw_offers(pool, got))
    await pool.aclose()
    assert len(BATCHES) == 1 and len(BATCHES[0]) == 4
    assert await redis.zrange("arq:queue", 0, -1) == [f"{ids[0]}@0".encode()]  # only the offer being run
    assert await redis.keys("arq:job:test_batch*") == [f"arq:job:{ids[0]}@0".encode()]


@jobs.batch_job("test_picky")
async def picky(ctx, many):
    if any(a["tag"] == "bad" for a in many):
        raise RuntimeError("bad row")
    BATCHES.append([a["tag"] for a in many])


async def test_one_bad_job_fails_alone_instead_of_its_whole_batch(ctx):
    BATCHES.clear()
    async with ctx.sessionmaker() as s:
        ids = [await jobs.schedule(s, "test_picky", {"tag": t}, due_at=utcnow()) for t in ("a", "bad", "c")]
        await s.commit()
    assert await jobs.run_job(ctx, ids[0], gather=True) is True
    assert sorted(BATCHES) == [["a"], ["c"]]  # the batch failed, then each ran on its own
    a, bad, c = [await state(ctx, i) for i in ids]
    assert (a.state, c.state) == ("done", "done")
    assert bad.state == "pending" and "bad row" in bad.last_error  # retried later, with backoff


async def test_due_rows_of_a_batched_name_are_offered_as_one_arq_job(ctx, redis, redis_url):
    from arq import create_pool
    from arq.connections import RedisSettings

    BATCHES.clear()
    async with ctx.sessionmaker() as s:
        ids = [await jobs.schedule(s, "test_batch", {"tag": f"o{i}"}, due_at=utcnow()) for i in range(5)]
        await s.commit()
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    wakes = [jobs.Wake(i, utcnow(), 0) for i in ids]
    await jobs.enqueue_arq(pool, wakes)
    assert await redis.zcard("arq:queue") == 1  # one offer, one Redis transaction, for the five rows
    await jobs.enqueue_missing(pool, wakes)  # the sweeper sees them offered: no row is offered again
    assert await redis.zcard("arq:queue") == 1
    await pool.aclose()
    await _run_workers(ctx, redis_url, 1, lambda: sum(map(len, BATCHES)) == 5)
    assert [sorted(b) for b in BATCHES] == [[f"o{i}" for i in range(5)]]
    for jid in ids:
        assert (await state(ctx, jid)).state == "done"


@pytest.mark.parametrize(("job_id", "rank"), [
    ("deliver:17:0", 0),              # a planned page goes out first
    ("deliver:17:3", 0),              # its retries too
    ("escalate:5:1:0:0", 1),          # an escalation's first step: somebody's first page
    ("incident_event:99", 2),         # fan-out (starts escalations, updates cards)
    ("bot_queue:3", 2),
    ("escalate:5:1:1:0", 3),          # a later level: somebody was already paged
    ("escalate:5:2:0:1", 3),          # a repeat of level 0
])
def test_first_pages_come_before_later_levels(job_id, rank):
    assert jobs.priority(job_id) == rank


# ---- storms: first pages by severity, then arrival (issue 10 point 5) ----------------------------------

@pytest.mark.parametrize(("earlier", "later"), [
    (("deliver:1:0", 0), ("deliver:2:0", 2)),            # a Critical page before an Info one
    (("incident_event:9", 0), ("deliver:2:0", 2)),       # ...even the fan-out towards a Critical page
    (("escalate:5:1:0:0", 1), ("deliver:2:0", 2)),       # a Warning's first step before an Info send
    (("escalate:5:1:1:0", 0), ("deliver:3:0", 2)),       # a Critical incident escalates before Info first pages
    (("incident_event:4", 1), ("escalate:5:1:1:0", 1)),  # within one severity: first pages before later levels
    (("deliver:3:0", 1), ("incident_event:4", 1)),       # ...and sends, then first steps, then fan-out
    (("escalate:5:1:1:0", 0), ("escalate:6:1:1:0", 2)),  # later levels by severity too
])
def test_work_runs_by_severity_and_first_pages_first(earlier, later):
    assert jobs.run_order(*earlier) < jobs.run_order(*later)


def test_arq_offers_of_due_rows_are_scored_by_urgency_and_future_ones_at_their_due_time():
    now = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    info = jobs.offer_at(jobs.Wake("deliver:1:0", now, 0, 2), now)
    critical_later = jobs.offer_at(jobs.Wake("deliver:2:0", now + timedelta(seconds=50), 0, 0), now + timedelta(seconds=50))
    assert critical_later < info  # offered 50 s after a backlog of Info pages, it is still handed out first
    assert jobs.offer_at(jobs.Wake("deliver:3:0", now - timedelta(seconds=5), 0, 1), now) < now
    future = now + timedelta(seconds=30)
    assert jobs.offer_at(jobs.Wake("escalate:4:1:1:0", future, 0, 0), now) == future + timedelta(milliseconds=5)
