"""Fairness benchmark (issue 11): a small integration's commit latency while another pushes 1,000-alert batches.

A real `vigil serve` (SQLite or PostgreSQL, jobs in-process) takes, for --seconds at once:

- the storm: a Prometheus integration pushing Alertmanager notifications of --batch alerts, back to back
  on --storm-connections connections; every alert is new and opens an incident of its own (the heaviest
  kind of alert there is);
- the quiet integration: one standard event every 100 ms, each timed from when it was due to its 200
  (a 200 means committed), so a server that froze is seen even when the sender froze with it;
- GET /healthz every 100 ms, timed the same way.

First the quiet integration runs alone for a few seconds (the baseline). Prints, per backend: the quiet
integration's p50 / p99 / max commit latency, alone and during the storm; /healthz p99 / max; the storm's
alerts committed per second and per-batch latency; server CPU per committed alert.

    uv run python bench/ingest_fairness.py [--seconds 20] [--batch 1000] [--storm-connections 1]
                                           [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import SERVER_PIDS, api, cpu_seconds, database, vigil, wait_ready  # noqa: E402

PERIOD = 0.1  # the quiet integration's event, and the /healthz probe, every 100 ms
BASELINE_SECONDS = 5.0
_FINGERPRINTS = itertools.count()  # never an alert twice: every storm alert opens an incident


def notification(n: int) -> dict:
    """An Alertmanager webhook notification (version 4) of `n` alerts never sent before."""
    alerts = []
    for _ in range(n):
        i = next(_FINGERPRINTS)
        alerts.append({"status": "firing", "fingerprint": f"{i:016x}", "startsAt": "2026-12-01T00:00:00Z",
                       "labels": {"alertname": "HostDown", "instance": f"host-{i}:9100", "job": "node",
                                  "severity": "critical", "cluster": "prod"},
                       "annotations": {"summary": f"host-{i} is down", "description": "no scrape for 5m"},
                       "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0"})
    return {"version": "4", "status": "firing", "receiver": "vigil", "groupKey": '{}:{alertname="HostDown"}',
            "groupLabels": {"alertname": "HostDown"}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": alerts}


async def paced(seconds: float, action: Callable[[int], Awaitable[bool]]) -> tuple[list[float], int]:
    """Start `action` every PERIOD for `seconds`; each one's time from when it was due, and failures."""
    loop = asyncio.get_running_loop()
    failures = 0

    async def timed(i: int, due: float) -> float:
        nonlocal failures
        if not await action(i):
            failures += 1
        return loop.time() - due

    tasks, start = [], loop.time()
    for i in range(int(seconds / PERIOD)):
        due = start + i * PERIOD
        await asyncio.sleep(max(0.0, due - loop.time()))
        tasks.append(asyncio.create_task(timed(i, due)))
    return list(await asyncio.gather(*tasks)), failures


def ms(values: list[float], p: int) -> str:
    if len(values) < 2:
        return "   n/a"
    return f"{statistics.quantiles(values, n=100)[p - 1] * 1000:6.0f}"


async def run(kind: str, base: str, seconds: float, batch: int, connections: int) -> None:
    await wait_ready(base)
    async with aiohttp.ClientSession() as admin:
        storm_ch = await api(admin, base, "POST", "/channels", {"name": "storm"})
        storm = await api(admin, base, "POST", f"/channels/{storm_ch['channel_id']}/integrations",
                          {"type": "prometheus", "name": "alertmanager"})
        quiet_ch = await api(admin, base, "POST", "/channels", {"name": "quiet"})
        quiet = await api(admin, base, "POST", f"/channels/{quiet_ch['channel_id']}/integrations",
                          {"type": "standard", "name": "checkout"})
    async with aiohttp.ClientSession() as s:
        async def page(i: int) -> bool:
            body = {"event_status": "Critical", "title_rule": f"checkout slow {i}", "alert_key": f"checkout-{i}"}
            async with s.post(quiet["push_url"], json=body) as r:
                await r.read()
                return r.status == 200

        async def healthz(_: int) -> bool:
            async with s.get(f"{base}/healthz") as r:
                await r.read()
                return r.status == 200

        await page(-1)  # warm-up
        alone, _ = await paced(BASELINE_SECONDS, page)

        stop = time.perf_counter() + seconds
        committed, batch_latency, storm_errors = 0, [], 0

        async def pusher() -> None:
            nonlocal committed, storm_errors
            while time.perf_counter() < stop:
                body = notification(batch)
                t0 = time.perf_counter()
                async with s.post(storm["push_url"], json=body) as r:
                    await r.read()
                    if r.status == 200:
                        committed += batch
                    else:
                        storm_errors += 1
                batch_latency.append(time.perf_counter() - t0)

        pid = SERVER_PIDS[base]
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        storming = asyncio.gather(*[pusher() for _ in range(connections)])
        (during, page_errors), (health, health_errors) = await asyncio.gather(
            paced(seconds, page), paced(seconds, healthz))
        await storming
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    events = committed + len(during)
    print(f"{kind:10s} quiet alone        : p50 {ms(alone, 50)} ms  p99 {ms(alone, 99)} ms  "
          f"max {max(alone) * 1000:6.0f} ms")
    print(f"{'':10s} quiet during storm : p50 {ms(during, 50)} ms  p99 {ms(during, 99)} ms  "
          f"max {max(during) * 1000:6.0f} ms  errors {page_errors}")
    print(f"{'':10s} /healthz           : p50 {ms(health, 50)} ms  p99 {ms(health, 99)} ms  "
          f"max {max(health) * 1000:6.0f} ms  errors {health_errors}")
    print(f"{'':10s} storm              : {committed / elapsed:6.0f} alerts/s committed in {batch}-alert batches "
          f"({connections} connection(s)); batch p50 {ms(batch_latency, 50)} ms, max "
          f"{max(batch_latency) * 1000:.0f} ms; errors {storm_errors}")
    print(f"{'':10s} server CPU         : {cpu / elapsed * 100:5.0f}% of a core, {cpu / events * 1e6:.0f} us per "
          f"committed alert (fan-out of its new incident included)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--batch", type=int, default=1000, help="alerts per storm push (the default cap is 1,000)")
    ap.add_argument("--storm-connections", type=int, default=1)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = ap.parse_args()
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        with database(kind) as url, vigil(url, VIGIL_MAX_ALERTS_PER_REQUEST=str(max(1000, args.batch))) as base:
            asyncio.run(run(kind, base, args.seconds, args.batch, args.storm_connections))


if __name__ == "__main__":
    main()
