"""Escalation benchmark: 1,000 incidents across 100 escalation rules, in virtual time and in real time.

Prints level-change lateness p50/p99 (how long after its due time a level actually changed; target
p99 < 1 s on the in-process runner and on arq), time from incident to first page, pages sent per second,
and database rows per incident. Senders are in-memory recorders: this measures the engine, not a provider.

Real time opens incidents at `--rate` per second (0: all at once, a storm that measures raw throughput
rather than precision); each rule pages level 0, waits `--wait` seconds, then pages level 1.

    uv run python bench/escalation.py [--incidents 1000] [--rules 100] [--rate 20] [--wait 10]
                                      [--db sqlite|postgresql] [--arq]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import database  # noqa: E402
from core import events, jobs, paging  # noqa: E402
from core.db import make_engine, make_sessionmaker  # noqa: E402
from core.ingest import IntegrationRef, ingest_batch  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.models import Channel, EscalationRule, Integration, Member, TimelineEntry  # noqa: E402
from core.types import AlertEvent, EventStatus  # noqa: E402

WAIT_S = 10.0  # set from --wait


class Recorder:
    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self, recipient, page) -> str:
        self.sent += 1
        return str(self.sent)


async def seed(sessions, n_rules: int, now: datetime) -> list[IntegrationRef]:
    async with sessions() as s:
        members = [Member(name=f"m{i}", email=f"m{i}@x.io", preferences={"Critical": ["im"]}) for i in range(20)]
        s.add_all(members)
        await s.flush()
        refs = []
        for r in range(n_rules):
            ch = Channel(name=f"ch{r}", created_at=now, updated_at=now)
            s.add(ch)
            await s.flush()
            integ = Integration(name=f"i{r}", type="standard", channel_id=ch.id, key_hash=f"h{r}")
            s.add(integ)
            s.add(EscalationRule(channel_id=ch.id, name=f"r{r}", definition={"levels": [
                {"targets": {"member_ids": [members[r % 20].id]}, "wait_minutes": WAIT_S / 60},
                {"targets": {"member_ids": [members[(r + 1) % 20].id]}}]}))
            await s.flush()
            refs.append(IntegrationRef(integ.id, "standard", ch.id))
        await s.commit()
        return refs


async def open_incidents(sessions, refs, n: int, now, rate: float = 0) -> None:
    """Open n incidents: all at once (rate 0), or `rate` per second in ticks of 100 ms."""
    items = [(refs[i % len(refs)], AlertEvent(EventStatus.CRITICAL, f"incident {i}", f"key-{i}"))
             for i in range(n)]
    chunk = 200 if not rate else max(1, round(rate / 10))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k, i in enumerate(range(0, n, chunk)):
        if rate:
            await asyncio.sleep(max(0.0, start + k * chunk / rate - loop.time()))
        async with sessions() as s:
            await ingest_batch(s, items[i:i + chunk], now() if callable(now) else now)
            await s.commit()


async def lateness(sessions) -> list[float]:
    """Level 1 is due WAIT_S after level 0 fired: how much later than that did it fire?"""
    async with sessions() as s:
        rows = (await s.execute(select(TimelineEntry.incident_id, TimelineEntry.at, TimelineEntry.detail)
                                .where(TimelineEntry.kind == "i_notify"))).all()
    by_incident: dict[int, dict[int, datetime]] = {}
    for iid, at, detail in rows:
        by_incident.setdefault(iid, {})[detail["layer_idx"]] = at
    return [(lv[1] - lv[0]).total_seconds() - WAIT_S for lv in by_incident.values() if 0 in lv and 1 in lv]


async def first_page(sessions) -> list[float]:
    """From the incident's creation (i_new committed) to its first page handed to a sender."""
    async with sessions() as s:
        rows = (await s.execute(select(TimelineEntry.incident_id, TimelineEntry.kind, TimelineEntry.at)
                                .where(TimelineEntry.kind.in_(["i_new", "delivery_sent"]))
                                .order_by(TimelineEntry.id))).all()
    opened: dict[int, datetime] = {}
    first: dict[int, datetime] = {}
    for iid, kind, at in rows:
        if kind == "i_new":
            opened[iid] = at
        else:
            first.setdefault(iid, at)
    return [(first[i] - opened[i]).total_seconds() for i in first if i in opened]


async def rows_per_incident(sessions, n: int) -> float:
    async with sessions() as s:
        total = 0
        for table in ("incident", "alert", "alert_event", "timeline_entry", "delivery", "job"):
            total += (await s.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    return total / n


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else float("nan")


async def virtual(url: str, n: int, n_rules: int) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    clock = [datetime(2026, 1, 1, tzinfo=UTC)]
    rec = Recorder()
    ctx = jobs.JobContext(sessions, services={"senders": {"im": rec}}, now=lambda: clock[0])
    refs = await seed(sessions, n_rules, clock[0])
    await open_incidents(sessions, refs, n, clock[0])
    started = time.perf_counter()
    for _ in range(3):  # now, then after the wait
        while True:
            async with sessions() as s:
                due = await jobs.sweep(s, clock[0], timedelta(0), limit=5000)
            if not due:
                break
            for job_id, *_ in due:
                await jobs.run_job(ctx, job_id)
        clock[0] += timedelta(seconds=WAIT_S)
    elapsed = time.perf_counter() - started
    print(f"virtual time : {rec.sent} pages in {elapsed:.1f} s = {rec.sent / elapsed:.0f} pages/s; "
          f"rows per incident {await rows_per_incident(sessions, n):.1f}")
    await engine.dispose()


async def real(url: str, n: int, n_rules: int, redis_url: str | None, rate: float) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    rec = Recorder()
    ctx = jobs.JobContext(sessions, services={"senders": {"im": rec}})
    if redis_url:
        from arq.worker import Worker
        from redis.asyncio import Redis

        await Redis.from_url(redis_url).flushdb()
        runner = jobs.ArqRunner(redis_url)
        workers = [Worker(**{**jobs.arq_worker_settings(ctx, redis_url, 0.5), "burst": False}) for _ in range(2)]
        tasks = [asyncio.create_task(w.async_run()) for w in workers]
    else:
        runner = jobs.InProcessRunner(ctx, concurrency=16, sweep_interval=0.5)
    jobs.attach_runner(sessions, runner)
    await runner.start()
    refs = await seed(sessions, n_rules, datetime.now(UTC))
    started = time.perf_counter()
    await open_incidents(sessions, refs, n, lambda: datetime.now(UTC), rate)
    while rec.sent < 2 * n and time.perf_counter() - started < 300:
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    late = await lateness(sessions)
    first = await first_page(sessions)
    await runner.stop()
    if redis_url:
        for w in workers:
            await w.close()
        for t in tasks:
            t.cancel()
    kind = "arq" if redis_url else "in-process"
    pace = f"{rate:g} incidents/s" if rate else "all at once"
    print(f"real time ({kind}, {pace}, wait {WAIT_S:g} s): {rec.sent} pages in {elapsed:.1f} s "
          f"= {rec.sent / elapsed:.0f} pages/s")
    print(f"    level-change lateness p50 {pct(late, 50) * 1000:.0f} ms  p99 {pct(late, 99) * 1000:.0f} ms; "
          f"incident to first page p50 {pct(first, 50) * 1000:.0f} ms  p99 {pct(first, 99) * 1000:.0f} ms "
          f"({len(late)} incidents)")
    await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=1000)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--rate", type=float, default=20, help="incidents opened per second in real time; 0 = at once")
    ap.add_argument("--wait", type=float, default=10, help="seconds between level 0 and level 1")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--arq", action="store_true", help="also run on arq (Redis at 127.0.0.1:6379/14)")
    args = ap.parse_args()
    global WAIT_S
    WAIT_S = args.wait
    events._SUBSCRIBERS.clear()
    paging.register()
    with database(args.db) as url:
        asyncio.run(virtual(url, args.incidents, args.rules))
    with database(args.db) as url:
        asyncio.run(real(url, args.incidents, args.rules, None, args.rate))
    if args.arq:
        with database(args.db) as url:
            asyncio.run(real(url, args.incidents, args.rules, "redis://127.0.0.1:6379/14", args.rate))


if __name__ == "__main__":
    main()
