"""Paging benchmark, measured from outside: distinct alerts pushed at a fixed rate, each a new incident that
pages one member by SMS through the generic HTTP gateway provider, received by a real HTTP sink.

Per backend and rate it prints: alerts sent / accepted (HTTP 200) / accepted per second, push latency p99,
alert-to-page latency p50 / p99 / max (sink receive time minus push send time; a page that never came
counts as infinitely late), the share of pages within 5 s, pages missing after the grace period,
duplicates, and CPU: `vigil serve` during the push per accepted new incident, and all of Vigil (serve +
workers) from the first push to the last page per page received.

    uv run python bench/paging.py [--backends sqlite,postgres] [--rates 50,200,500,1000] [--duration 20]
                                  [--workers 2] [--grace 30] [--connections 512] [--quick]
                                  [--critical-share 0.05]

Backends: `sqlite` is the embedded default (SQLite file, jobs in-process); `postgres` is a fresh PostgreSQL
database with arq on Redis (`--redis-db`, flushed before and after each run) and `--workers N` (a list:
1,2,4 runs each) `vigil worker` processes; `vigil serve` gets VIGIL_REDIS_URL too, so it enqueues on arq.
Every (backend, workers, rate) gets a fresh database and fresh processes, so a backlog never leaks into
the next run. Set-up goes through the Open API; the SMS provider is configured only through VIGIL_SMS.
The sink is a separate process (bench/_sms_sink.py). `--quick` is one rate (50/s) for 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._paging import (  # noqa: E402
    SinkProc,
    fmt_s,
    pid_cpu,
    push_paced,
    quantile,
    run_id,
    self_cpu,
    setup,
    sink,
    warm_up,
)
from bench._server import (  # noqa: E402
    SERVER_PIDS,
    Worker,
    database,
    flush_redis,
    redis_url,
    vigil,
    wait_ready,
    workers,
)


@dataclass
class Result:
    label: str
    rate: int
    sent: int
    accepted: int
    accepted_per_s: float
    push_p99: float
    p50: float
    p99: float
    max: float
    within_5s: float
    missing: int
    duplicates: int
    cpu_per_incident: float
    cpu_per_page: float


async def measure(label: str, base: str, sink_: SinkProc, ws: list[Worker], rate: int, args) -> Result:
    await wait_ready(base)
    serve_pid = SERVER_PIDS[base]
    async with aiohttp.ClientSession() as s:
        st = await setup(s, base, [0.0])
        await warm_up(st.push_url, sink_, s)
        await sink_.reset(s)

        run = run_id()
        cpu0 = (pid_cpu(serve_pid), sum(w.cpu() for w in ws), sink_.cpu(), self_cpu())
        t0 = time.time()
        pushes = await push_paced(st.push_url, run, rate, args.duration, connections=args.connections,
                                  critical_share=args.critical_share)
        t_push_end = time.time()
        cpu1 = (pid_cpu(serve_pid), sum(w.cpu() for w in ws))

        accepted = {tok for tok, p in pushes.items() if p.accepted}
        deadline = max(t0 + args.duration + args.grace, t_push_end + 5)
        while True:
            await sink_.fetch(s)
            got = {r.token for r in sink_.receipts if r.status == 200}
            if accepted <= got or time.time() >= deadline:
                break
            await asyncio.sleep(0.25)
        t_wait_end = time.time()
        cpu2 = (pid_cpu(serve_pid), sum(w.cpu() for w in ws), sink_.cpu(), self_cpu())
        await asyncio.sleep(1.0)  # a duplicate right behind the last page still counts
        await sink_.fetch(s)

    ok = [r for r in sink_.receipts if r.status == 200]
    per_token = Counter(r.token for r in ok)
    first: dict[str, float] = {}
    for r in ok:
        first[r.token] = min(first.get(r.token, math.inf), r.t)
    lat = [first.get(tok, math.inf) - pushes[tok].t_send for tok in accepted]
    delivered = sum(1 for tok in accepted if tok in first)
    missing = len(accepted) - delivered
    duplicates = sum(n - 1 for tok, n in per_token.items() if n > 1)
    strays = sum(1 for tok in per_token if tok not in accepted)
    statuses = Counter(p.status if p.status != -1 else p.error for p in pushes.values() if not p.accepted)
    push_lat = [p.t_done - p.t_send for p in pushes.values()]
    sends = [p.t_send for p in pushes.values()]
    dones = [p.t_done for p in pushes.values() if p.accepted]
    span = (max(dones) - min(sends)) if dones else math.nan
    acc_rate = len(accepted) / span if dones and span > 0 else 0.0
    lag = max((p.t_send - p.t_sched for p in pushes.values()), default=0.0)
    within = sum(1 for v in lat if v <= 5.0) / len(lat) * 100 if lat else math.nan

    serve_push = cpu1[0] - cpu0[0]
    serve_all, workers_all = cpu2[0] - cpu0[0], cpu2[1] - cpu0[1]
    per_incident = serve_push / len(accepted) if accepted else math.nan
    per_page = (serve_all + workers_all) / len(ok) if ok else math.nan
    waited = t_wait_end - t_push_end

    print(f"== {label}: {rate} alerts/s for {args.duration:g} s ==")
    print(f"  pushes        : sent {len(pushes)}, accepted {len(accepted)} ({acc_rate:.1f}/s from first send to "
          f"last answer), refused/failed {dict(statuses) or 0}; push latency p50 {fmt_s(quantile(push_lat, .5))} "
          f"p99 {fmt_s(quantile(push_lat, .99))}")
    print(f"  alert to page : p50 {fmt_s(quantile(lat, .5))}  p99 {fmt_s(quantile(lat, .99))}  "
          f"max {fmt_s(max(lat, default=math.nan))}; within 5 s {within:.1f}%; missing {missing} "
          f"(waited {waited:.0f} s after the last push); duplicates {duplicates}"
          + (f"; pages for pushes not accepted {strays}" if strays else ""))
    if args.critical_share < 1:  # a storm of mixed severity: Critical pages must not queue behind Info ones
        for severity in ("Critical", "Info"):
            of = [first.get(tok, math.inf) - pushes[tok].t_send for tok in accepted if pushes[tok].severity == severity]
            print(f"    {severity:<8}    : {len(of)} pages, p50 {fmt_s(quantile(of, .5))}  p99 {fmt_s(quantile(of, .99))}  "
                  f"max {fmt_s(max(of, default=math.nan))}")
    print(f"  CPU           : serve {serve_push:.2f} s during the push = {per_incident * 1000:.2f} ms per new "
          f"incident; serve {serve_all:.2f} s + workers {workers_all:.2f} s until the last page = "
          f"{per_page * 1000:.2f} ms per page ({len(ok)} pages)")
    print(f"                  (SMS sink {cpu2[2] - cpu0[2]:.2f} s, load generator {cpu2[3] - cpu0[3]:.2f} s; "
          f"pacer lag max {lag * 1000:.0f} ms)", flush=True)
    return Result(label, rate, len(pushes), len(accepted), acc_rate, quantile(push_lat, .99),
                  quantile(lat, .5), quantile(lat, .99), max(lat, default=math.nan), within, missing, duplicates,
                  per_incident, per_page)


def run_one(kind: str, n_workers: int, rate: int, sink_: SinkProc, args, logdir: str) -> Result:
    env = {"VIGIL_SMS": sink_.vigil_sms_env()}
    label = "sqlite (in-process jobs)" if kind == "sqlite" else f"postgres + arq, {n_workers} worker(s)"
    log = f"{logdir}/{kind}-{n_workers}w-{rate}.log"
    with database("sqlite" if kind == "sqlite" else "postgresql") as db_url:
        rurl = ""
        if kind != "sqlite":
            rurl = redis_url(args.redis_db)
            flush_redis(rurl)
            env["VIGIL_REDIS_URL"] = rurl
        try:
            with vigil(db_url, log=log, **env) as base, (
                    workers(db_url, n_workers, rurl, log=log, **env) if n_workers
                    else contextlib.nullcontext([])) as ws:
                return asyncio.run(measure(label, base, sink_, ws, rate, args))
        finally:
            if rurl:
                flush_redis(rurl)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--rates", default="50,200,500,1000", help="alerts per second, comma-separated")
    ap.add_argument("--duration", type=float, default=20, help="seconds of pushing per rate")
    ap.add_argument("--workers", default="2", help="vigil worker processes for postgres, comma-separated")
    ap.add_argument("--grace", type=float, default=30, help="seconds after the push ends to wait for pages")
    ap.add_argument("--connections", type=int, default=512, help="most concurrent push connections")
    ap.add_argument("--redis-db", type=int, default=12, help="Redis database number for arq (flushed)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 50/s for 5 s, 15 s grace")
    ap.add_argument("--critical-share", type=float, default=1.0,
                    help="share of alerts that are Critical, the rest Info (default 1: all Critical); below 1 "
                         "prints alert-to-page per severity, to see a storm page Critical first")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    if args.quick:
        rates, args.duration, args.grace = [50], 5.0, 15.0
    backends = [b.strip() for b in args.backends.split(",")]
    for b in backends:
        if b not in ("sqlite", "postgres"):
            ap.error(f"unknown backend {b!r}")
    logdir = tempfile.mkdtemp(prefix="vigil-paging-")
    print(f"Vigil logs (stderr of serve and workers): {logdir}", flush=True)
    results: list[Result] = []
    with sink() as sink_:
        for b in backends:
            for n in ([0] if b == "sqlite" else [int(w) for w in args.workers.split(",")]):
                for rate in rates:
                    results.append(run_one(b, n, rate, sink_, args, logdir))

    print("\nsummary (alert-to-page counts a missing page as never; CPU in ms)")
    print(f"{'backend':34s} {'rate':>5s} {'sent':>6s} {'accepted':>8s} {'acc/s':>7s} {'push p99':>9s} "
          f"{'page p50':>9s} {'page p99':>9s} {'max':>9s} {'<=5s':>6s} {'missing':>7s} {'dups':>5s} "
          f"{'cpu/inc':>8s} {'cpu/page':>8s}")
    for r in results:
        print(f"{r.label:34s} {r.rate:5d} {r.sent:6d} {r.accepted:8d} {r.accepted_per_s:7.1f} {fmt_s(r.push_p99):>9s} "
              f"{fmt_s(r.p50):>9s} {fmt_s(r.p99):>9s} {fmt_s(r.max):>9s} {r.within_5s:5.1f}% {r.missing:7d} "
              f"{r.duplicates:5d} {r.cpu_per_incident * 1000:8.2f} {r.cpu_per_page * 1000:8.2f}")


if __name__ == "__main__":
    main()
