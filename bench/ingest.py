"""Ingest benchmark: standard events over HTTP with keep-alive and concurrency, every event committed.

Prints, for SQLite and PostgreSQL: sustained events/s at full load, and p50/p99 latency at a fixed
1,000 events/s. Targets (issue 2): >= 3,000 events/s on one process; p99 < 50 ms at 1,000 events/s.

    uv run python bench/ingest.py [--seconds 10] [--concurrency 64,128] [--db sqlite|postgresql|both]
                                  [--mode standard|distinct]

`--mode distinct` sends alerts never seen before, each in a group of its own, so every event opens a
new incident (with its timeline entry and fan-out job): the full-load figures are then new incidents/s
and server CPU per new incident (the fan-out jobs the server runs meanwhile included). Targets (issue
"Throughput with headroom"): >= 2,000 new incidents/s on SQLite, >= 1,500/s on PostgreSQL.
`--jobs arq` gives the server VIGIL_REDIS_URL (a Redis database of its own, flushed) and runs no
worker: the fan-out jobs are committed and offered on arq but not run, as in a web process whose jobs
run in `vigil worker` processes (the server still pays for each offer to Redis).

Full load runs once per concurrency level: group commit gathers more events per transaction when
more requests wait, which matters most on PostgreSQL, where a batch costs round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import (  # noqa: E402
    SERVER_PIDS,
    api,
    cpu_seconds,
    database,
    flush_redis,
    redis_url,
    vigil,
    wait_ready,
)

MODE = "standard"
_NEW_KEYS = itertools.count()  # distinct mode: across every run of this process, never a key twice


def make_event(i: int) -> dict:
    if MODE == "distinct":  # a key never sent before, in a group of its own: a new incident each
        i = next(_NEW_KEYS)
        return {"event_status": random.choice(["Critical", "Warning", "Info"]), "title_rule": f"disk full on {i}",
                "alert_key": f"disk-{i}", "labels": {"service": f"svc-{i}", "host": f"host-{i}"},
                "description": f"event {i}"}
    # 2,000 distinct alerts, grouped by service: dedup, grouping and new incidents all happen.
    n = random.randrange(2000)
    return {"event_status": random.choice(["Critical", "Warning", "Info"]), "title_rule": f"cpu high on host-{n}",
            "alert_key": f"cpu-{n}", "labels": {"service": f"svc-{n % 50}", "host": f"host-{n}"},
            "description": f"event {i}"}


async def setup(base: str) -> str:
    async with aiohttp.ClientSession() as s:
        ch = await api(s, base, "POST", "/channels",
                       {"name": "bench", "grouping": {"method": "p", "equals": [["labels.service"]]}})
        integ = await api(s, base, "POST", f"/channels/{ch['channel_id']}/integrations",
                          {"type": "standard", "name": "bench"})
        return integ["push_url"]


async def flood(url: str, seconds: float, concurrency: int) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def worker(w: int) -> None:
            nonlocal errors
            i = 0
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                async with s.post(url, json=make_event(w * 10_000_000 + i)) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)
                i += 1

        await asyncio.gather(*[worker(w) for w in range(concurrency)])
    return len(latencies), latencies, errors


async def paced(url: str, seconds: float, rate: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def one(i: int) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            async with s.post(url, json=make_event(i)) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        for i in range(int(seconds * rate)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies, errors


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] * 1000 if len(values) > 1 else float("nan")


async def run(kind: str, base: str, seconds: float, levels: list[int]) -> None:
    await wait_ready(base)
    url = await setup(base)
    await flood(url, 1.0, levels[0])  # warm-up
    unit = "new incidents" if MODE == "distinct" else "events"
    per = "new incident" if MODE == "distinct" else "event"
    for concurrency in levels:
        cpu0 = cpu_seconds(SERVER_PIDS[base])
        n, lat, errors = await flood(url, seconds, concurrency)
        cpu = cpu_seconds(SERVER_PIDS[base]) - cpu0
        print(f"{kind:10s} full load   : {n / seconds:8.0f} {unit}/s  p50 {pct(lat, 50):6.1f} ms  "
              f"p99 {pct(lat, 99):6.1f} ms  errors {errors}  (concurrency {concurrency}, {seconds:.0f}s)")
        # The load generator shares this machine's cores: what the server itself spends per event tells
        # what one Vigil process sustains when it has a core to itself.
        print(f"{'':10s} server CPU  : {cpu / seconds * 100:5.0f}% of a core, {cpu / n * 1e6:.0f} us per {per} "
              f"= {n / cpu:.0f} {unit} per CPU-second")
    lat, errors = await paced(url, seconds, 1000)
    print(f"{kind:10s} 1000/s paced: p50 {pct(lat, 50):6.1f} ms  p99 {pct(lat, 99):6.1f} ms  errors {errors}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", default="64,128", help="comma-separated levels for the full-load runs")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--mode", choices=["standard", "distinct"], default="standard",
                    help="distinct: every event a new alert opening a new incident")
    ap.add_argument("--jobs", choices=["inprocess", "arq"], default="inprocess",
                    help="arq: jobs are offered on Redis and not run here")
    ap.add_argument("--redis-db", type=int, default=10, help="Redis database number for --jobs arq (flushed)")
    args = ap.parse_args()
    global MODE
    MODE = args.mode
    env = {}
    if args.jobs == "arq":
        env["VIGIL_REDIS_URL"] = redis_url(args.redis_db)
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        if env:
            flush_redis(env["VIGIL_REDIS_URL"])
        try:
            with database(kind) as url, vigil(url, **env) as base:
                asyncio.run(run(kind, base, args.seconds, [int(c) for c in args.concurrency.split(",")]))
        finally:
            if env:
                flush_redis(env["VIGIL_REDIS_URL"])


if __name__ == "__main__":
    main()
