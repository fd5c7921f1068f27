"""Web pages benchmark: the incident list and the incident page with 100,000 incidents behind them.

Seeds 100k incidents (with their alerts, timeline entries and deliveries) straight into the database with
set-based inserts, starts a real `vigil serve`, signs in as a member over HTTP (password set through the Open
API), and prints p50/p99 time of each page, one request at a time, with the server's CPU per request, and the
bytes the incident page transfers as a browser would fetch it (gzip accepted). Targets (issue 12): p99 < 100 ms
on SQLite and PostgreSQL; incident page < 100 KB.

    uv run python bench/web_pages.py [--db sqlite|postgresql|both] [--incidents 100000] [--requests 300]

The seeded history looks like a busy installation's: one incident in ten is older than the last page a
responder scrolls to and still open, the rest of the old ones Closed; 20 members share the pages, so "mine"
is about 5% of them. Incidents are spread over CHANNELS channels; the signed-in member's team owns two of
them, so "my teams" is about 20%. PostgreSQL gets a VACUUM ANALYZE after the load, as its autovacuum would give it (it is
off on the bench machine): statistics, and the visibility map that lets an index-only scan skip the table.
SQLite gets no ANALYZE, as Vigil never runs one.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import SERVER_PIDS, api, cpu_seconds, database, vigil, wait_ready  # noqa: E402
from core.db import make_engine  # noqa: E402
from core.migrate import upgrade_url  # noqa: E402
from core.models import Alert, Delivery, Incident, TimelineEntry  # noqa: E402

SECRET = "bench-web-secret-key-0123456789abcdefghij"
PASSWORD = "bench password, long enough"
MEMBERS = 20
CHANNELS = 10
CHUNK = 5_000
SEVERITIES = ("Critical",) * 2 + ("Warning",) * 5 + ("Info",) * 3
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _incident_rows(first: int, last: int, total: int, channels: list[int], members: list[int]) -> tuple[list, ...]:
    """Rows of incidents first..last-1 and of everything hanging off them (one pass, fixed seed per id)."""
    incidents, alerts, entries, deliveries = [], [], [], []
    for i in range(first, last):
        rnd = random.Random(i)
        channel_id = channels[i % len(channels)]
        at = T0 + timedelta(seconds=i * 60)
        severity = rnd.choice(SEVERITIES)
        newest = i > total - 300
        progress = rnd.choice(("Triggered", "Processing")) if newest or rnd.random() < 0.01 else "Closed"
        who = members[i % len(members)]
        host = f"host-{i % 977}"
        n_alerts = rnd.choice((1, 1, 2, 3, 5))
        incidents.append({
            "id": i, "num": str(i), "channel_id": channel_id, "title": f"{severity}: disk 95% full on {host}",
            "description": "Filesystem /var above 95% for 5 minutes", "severity": severity,
            "status": severity if progress != "Closed" else "Ok", "progress": progress,
            "labels": {"host": host, "service": f"svc-{i % 50}", "region": "eu-west-1"},
            "dedup_key": "", "group_key": f"g{i}", "group_method": "p", "alert_cnt": n_alerts,
            "active_alert_cnt": 0 if progress == "Closed" else n_alerts, "alert_event_cnt": n_alerts * 3,
            "responders": [{"person_id": who, "assigned_at": int(at.timestamp()),
                            "acknowledged_at": int(at.timestamp()) + 120 if progress != "Triggered" else None}],
            "assigned_to": {"type": "assign", "person_ids": [who]}, "merged_into_id": None, "ever_muted": False,
            "storm_level": 0, "start_time": at, "last_time": at + timedelta(minutes=5), "end_time": None,
            "ack_time": at + timedelta(minutes=2) if progress != "Triggered" else None,
            "close_time": at + timedelta(minutes=30) if progress == "Closed" else None, "snoozed_until": None,
            "escalation_state": "done", "escalation_level": 0, "escalation_loop": 0, "created_at": at,
            "updated_at": at})
        for a in range(n_alerts):
            alerts.append({
                "channel_id": channel_id, "integration_id": 0, "incident_id": i, "alert_key": f"disk-{i}-{a}",
                "title": f"disk 95% full on {host}:/var/{a}", "title_rule": "disk full on $host",
                "description": "node_filesystem_avail_bytes below 5%", "severity": severity,
                "status": "Ok" if progress == "Closed" else severity,
                "progress": "Closed" if progress == "Closed" else "Triggered", "muted_by": "",
                "labels": {"host": host, "mount": f"/var/{a}", "service": f"svc-{i % 50}", "region": "eu-west-1",
                           "job": "node", "instance": f"{host}:9100"},
                "images": [], "event_cnt": 3, "start_time": at, "last_time": at + timedelta(minutes=5),
                "end_time": None, "close_time": None, "created_at": at, "updated_at": at})
        timeline = [("i_new", None, "system", {}, at),
                    ("delivery_sent", None, "system", {"medium": "sms", "person_id": who}, at)]
        if progress != "Triggered":
            timeline.append(("i_ack", who, "slack", {}, at + timedelta(minutes=2)))
        if rnd.random() < 0.3:
            timeline.append(("i_comm", who, "web", {"comment": "Rotated the logs, watching it."},
                             at + timedelta(minutes=10)))
        if progress == "Closed":
            timeline.append(("i_rslv", who, "slack", {}, at + timedelta(minutes=30)))
        entries.extend({"incident_id": i, "kind": k, "actor_id": actor, "source": src, "detail": d, "at": t}
                       for k, actor, src, d, t in timeline)
        deliveries.append({
            "dedup_key": f"bench-{i}", "incident_id": i, "member_id": who, "medium": "sms", "address": "+100000000",
            "event_type": "i_new", "level": 0, "loop": 0, "state": "sent", "attempts": 1, "provider": "bench",
            "provider_message_id": f"m{i}", "last_error": "", "created_at": at, "updated_at": at})
    return incidents, alerts, entries, deliveries


async def seed(db_url: str, total: int, channels: list[int], integration_id: int, members: list[int]) -> float:
    """Insert `total` incidents and their rows, CHUNK incidents per transaction; returns seconds taken."""
    t0 = time.perf_counter()
    engine = make_engine(db_url)
    tables = (Incident.__table__, Alert.__table__, TimelineEntry.__table__, Delivery.__table__)  # type: ignore[attr-defined]
    try:
        for first in range(1, total + 1, CHUNK):
            rows = _incident_rows(first, min(first + CHUNK, total + 1), total, channels, members)
            for a in rows[1]:
                a["integration_id"] = integration_id
            async with engine.begin() as conn:
                for table, batch in zip(tables, rows, strict=True):
                    await conn.execute(insert(table), batch)
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text("SELECT setval('incident_id_seq', (SELECT max(id) FROM incident))"))
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execute(text("COMMIT"))  # VACUUM runs outside a transaction
                await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    return time.perf_counter() - t0


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(s: aiohttp.ClientSession, base: str, email: str) -> None:
    async with s.get(f"{base}/login") as r:
        found = CSRF.search(await r.text())
        if found is None:
            raise RuntimeError(f"GET /login: {r.status}, no CSRF token in the page")
        csrf = found.group(1)
    async with s.post(f"{base}/login", data={"csrf": csrf, "email": email, "password": PASSWORD, "next": "/"},
                      allow_redirects=False) as r:
        if r.status != 303:
            raise RuntimeError(f"sign-in answered {r.status}")


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


async def timed(s: aiohttp.ClientSession, base: str, name: str, paths: list[str]) -> None:
    """GET each path in turn (one at a time): latency percentiles and server CPU per request."""
    for p in paths[:10]:  # warm-up: templates compiled, statements cached, pages in the OS cache
        async with s.get(base + p) as r:
            await r.read()
    lat: list[float] = []
    pid = SERVER_PIDS[base]
    cpu0 = cpu_seconds(pid)
    for p in paths:
        t0 = time.perf_counter()
        async with s.get(base + p, allow_redirects=False) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"GET {p}: {r.status}")
        lat.append(time.perf_counter() - t0)
    cpu = (cpu_seconds(pid) - cpu0) / len(paths)
    print(f"  {name:34s} p50 {pct(lat, 50):6.1f} ms  p99 {pct(lat, 99):6.1f} ms  "
          f"server CPU {cpu * 1000:5.1f} ms/request  (n={len(paths)})")


async def page_bytes(base: str, cookies: aiohttp.abc.AbstractCookieJar, path: str) -> None:
    """What a browser transfers for the incident page: HTML (gzip accepted) and, on a first visit, its
    stylesheet and script; headers counted as sent."""
    async with aiohttp.ClientSession(cookie_jar=cookies, auto_decompress=False,
                                     headers={"Accept-Encoding": "gzip, deflate"}) as s:
        total, html = 0, 0
        async with s.get(base + path) as r:
            body = await r.read()
            raw = gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body
            head = sum(len(k) + len(v) + 4 for k, v in r.raw_headers)
            html = len(body) + head
            refs = re.findall(rb'(?:href|src)="(/static/[^"]+)"', raw)
        total = html
        for ref in refs:
            async with s.get(base + ref.decode()) as r:
                total += len(await r.read()) + sum(len(k) + len(v) + 4 for k, v in r.raw_headers)
        print(f"  incident page transfer             {html / 1024:6.1f} KB HTML ({len(raw) / 1024:.1f} KB "
              f"uncompressed), {total / 1024:.1f} KB with its stylesheet and script")


async def run(kind: str, db_url: str, base: str, total: int, n: int) -> None:
    await wait_ready(base)
    async with aiohttp.ClientSession() as s:
        members = [(await api(s, base, "POST", "/members", {"name": f"member {k}", "email": f"m{k}@example.com",
                                                              "role": "responder"}))["member_id"]
                   for k in range(MEMBERS)]
        await api(s, base, "PUT", f"/members/{members[0]}/password", {"password": PASSWORD})
        team = await api(s, base, "POST", "/teams", {"name": "bench", "member_ids": members[:3]})
        channels = [(await api(s, base, "POST", "/channels", {"name": f"bench-{k}",
                                                              "team_ids": [team["team_id"]] if k < 2 else []}
                               ))["channel_id"] for k in range(CHANNELS)]
        integ = await api(s, base, "POST", f"/channels/{channels[0]}/integrations",
                          {"type": "standard", "name": "bench"})
    took = await seed(db_url, total, channels, integ["integration_id"], members)
    print(f"{kind}: {total:,} incidents seeded in {took:.0f} s")
    rnd = random.Random(12)
    # An IP host gets no cookies from aiohttp's default jar: `unsafe` lets the session cookie through.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as s:
        await sign_in(s, base, "m0@example.com")
        await timed(s, base, "list, first page", ["/incidents"] * n)
        await timed(s, base, "list, deep keyset page", [f"/incidents?before={rnd.randrange(100, total // 10)}"
                                                        for _ in range(n)])
        await timed(s, base, "list, mine", ["/incidents?scope=mine"] * n)
        await timed(s, base, "list, mine, deep page", [f"/incidents?scope=mine&before={rnd.randrange(100, total)}"
                                                       for _ in range(n)])
        await timed(s, base, "list, severity Critical", ["/incidents?severity=Critical"] * n)
        await timed(s, base, "list, progress Processing", ["/incidents?progress=Processing"] * n)
        await timed(s, base, "list, open, deep page", [f"/incidents?progress=open&before={rnd.randrange(100, total)}"
                                                       for _ in range(n)])
        await timed(s, base, "list, my teams", ["/incidents?scope=teams"] * n)
        await timed(s, base, "list, my teams, deep page", [f"/incidents?scope=teams&before={rnd.randrange(100, total)}"
                                                           for _ in range(n)])
        await timed(s, base, "list, one channel", [f"/incidents?channel={channels[5]}"] * n)
        await timed(s, base, "list, one channel, open, deep", [
            f"/incidents?channel={channels[5]}&progress=open&before={rnd.randrange(100, total)}" for _ in range(n)])
        day = [(T0 + timedelta(seconds=rnd.randrange(total) * 60)).strftime("%Y-%m-%d") for _ in range(n)]
        await timed(s, base, "list, one day (since/until)", [f"/incidents?since={d}&until={d}" for d in day])
        await timed(s, base, "list, since a day, deep page", [f"/incidents?since={d}&before={total // 2}" for d in day])
        await timed(s, base, "list, one day, mine", [f"/incidents?scope=mine&since={d}&until={d}" for d in day])
        await timed(s, base, "list, one day, one channel, open", [
            f"/incidents?channel={channels[5]}&progress=open&since={d}&until={d}" for d in day])
        await timed(s, base, "list, one day, search (rare host)", [
            f"/incidents?since={d}&until={d}&q=host-{rnd.randrange(977)}" for d in day])
        await timed(s, base, "list, search (common word)", ["/incidents?q=disk"] * n)
        await timed(s, base, "list, search (rare host)", [f"/incidents?q=host-{rnd.randrange(977)}" for _ in range(n)])
        await timed(s, base, "list, search (no match)", ["/incidents?q=no-such-thing"] * n)
        await timed(s, base, "list, search, deep page", [f"/incidents?q=svc-7&before={rnd.randrange(100, total)}"
                                                         for _ in range(n)])
        await timed(s, base, "incident page", [f"/incidents/{rnd.randrange(1, total + 1)}" for _ in range(n)])
        await page_bytes(base, jar, f"/incidents/{total}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=300, help="requests per page kind")
    args = ap.parse_args()
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        with database(kind) as url:
            if kind == "sqlite":
                upgrade_url(url)
            with vigil(url, VIGIL_SECRET_KEY=SECRET) as base:
                asyncio.run(run(kind, url, base, args.incidents, args.requests))


if __name__ == "__main__":
    main()
