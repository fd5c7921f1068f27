"""Noise-reduction benchmark: 10,000 similar alerts in (about) one minute into a channel with grouping,
silence and inhibit rules and a group bot on its escalation level.

Prints events/s, incidents opened, bot messages sent and pages avoided (alerts that did not page because
they were grouped, silenced or inhibited).

    uv run python bench/noise.py [--events 10000] [--seconds 60] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import api, database, free_port, vigil, wait_ready  # noqa: E402

SVC = lambda v: [[{"field": "labels.service", "op": "equals", "values": [v]}]]  # noqa: E731


async def bot_sink(port: int, received: list[int]) -> web.AppRunner:
    async def hook(request: web.Request) -> web.Response:
        received.append(1)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/robot/send", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def run(base: str, n: int, seconds: float) -> None:
    await wait_ready(base)
    received: list[int] = []
    port = free_port()
    sink = await bot_sink(port, received)
    async with aiohttp.ClientSession() as s:
        ch = await api(s, base, "POST", "/channels", {"name": "noisy", "grouping": {
            "method": "p", "equals": [["labels.service"]]}})
        cid = ch["channel_id"]
        integ = await api(s, base, "POST", f"/channels/{cid}/integrations", {"type": "standard", "name": "b"})
        await api(s, base, "POST", f"/channels/{cid}/silence-rules", {
            "name": "maintenance", "filters": SVC("batch"), "starts_at": "2020-01-01T00:00:00Z",
            "ends_at": "2099-01-01T00:00:00Z"})
        await api(s, base, "POST", f"/channels/{cid}/inhibit-rules", {
            "name": "db down mutes api", "source_filters": SVC("db"), "target_filters": SVC("api"),
            "equals": ["labels.cluster"]})
        bot = await api(s, base, "POST", "/bots", {"type": "dingtalk", "alias": "ops",
                                                   "url": f"http://127.0.0.1:{port}/robot/send?access_token=t"})
        member = await api(s, base, "POST", "/members", {"name": "oncall", "email": "oncall@example.com"})
        await api(s, base, "POST", f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
            {"targets": {"member_ids": [member["member_id"]]}, "media": ["email"], "bot_ids": [bot["bot_id"]]}]})
        url = integ["push_url"]
        services = ["db", "api", "web", "batch", "cache"]
        started = time.perf_counter()
        sem = asyncio.Semaphore(32)

        async def push(i: int) -> None:
            svc = services[i % len(services)]
            body = {"event_status": "Critical", "title_rule": f"{svc} slow on host-{i % 400}",
                    "alert_key": f"{svc}-{i % 2000}", "labels": {"service": svc, "cluster": "c1", "host": f"h{i % 400}"}}
            async with sem:
                delay = started + i * seconds / n - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                async with s.post(url, json=body) as r:
                    await r.read()

        await asyncio.gather(*[push(i) for i in range(n)])
        elapsed = time.perf_counter() - started
        await asyncio.sleep(3)  # let fan-out jobs finish
        incidents = await api(s, base, "GET", "/incidents?limit=100")
        alert_total = sum(i["alert_cnt"] for i in incidents["items"])
    await sink.cleanup()
    distinct_alerts = min(n, 2000)
    print(f"events: {n} in {elapsed:.1f} s = {n / elapsed:.0f} events/s")
    print(f"incidents opened: {incidents['total']}  (alerts in incidents: {alert_total} of {distinct_alerts} distinct)")
    print(f"bot messages sent: {len(received)}")
    print(f"pages avoided: {n - incidents['total']} events did not open an incident "
          f"({distinct_alerts - alert_total} distinct alerts silenced or inhibited)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = ap.parse_args()
    with database(args.db) as url, vigil(url, VIGIL_SECRET_KEY="bench") as base:
        asyncio.run(run(base, args.events, args.seconds))


if __name__ == "__main__":
    main()
