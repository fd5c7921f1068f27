"""Paging under faults, measured from outside: PostgreSQL + arq with two `vigil worker`s, a steady rate of
distinct alerts (each a new incident paging by SMS), while the SMS gateway and the job machinery fail.

Timeline (seconds from the first push; `--scale` shrinks it for a quicker look):

     0-10  gateway healthy               50-65  healthy; at 55 kill -9 the busiest worker, start it again at 58
    10-30  gateway answers 500           65-75  gateway down (stops listening: connection refused)
    30-50  429 with Retry-After: 1       75-90  healthy; at 80 FLUSHDB on the arq Redis database

The escalation rule pages member 0 by SMS at once (level 1) and, `--level2-wait` seconds later, member 1
(level 2; 0 turns it off). Every `--ack-every`-th incident is acknowledged through the Open API
`--ack-after` seconds after its push: it must get no page after the ack, and no level-2 page.

Prints: level-1 pages expected / delivered / lost (an acknowledged incident whose page never came is
"cancelled by the ack", not lost), the same for level 2, duplicates (the same alert paged twice to the same
member), pages after an ack, lateness of each page beyond the outage it sat through (page time minus
max(push time, end of that outage; fault windows back to back are one outage); level 2 from push + wait),
per window of the timeline, and whether the Open API's delivery records (GET /incidents/{id}/deliveries) agree with what the
sink received. Exits 1 if a page was lost or duplicated, or the delivery records disagree with the sink.

    uv run python bench/paging_faults.py [--rate 15] [--duration 90] [--workers 2] [--grace 60]
                                         [--ack-every 5] [--ack-after 2] [--level2-wait 30] [--scale 1]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._paging import (  # noqa: E402
    Push,
    Receipt,
    Setup,
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
    ADMIN,
    SERVER_PIDS,
    Worker,
    api,
    database,
    flush_redis,
    redis_url,
    vigil,
    wait_ready,
    workers,
)

TOKEN = re.compile(r"\bpg-[0-9a-z]+-\d+\b")


@dataclass
class Ack:
    incident_id: int
    t_sent: float
    t_done: float = 0.0
    status: int = 0
    error: str = ""


def timeline(scale: float) -> list[tuple[float, str]]:
    steps = [(10, "sink 500"), (30, "sink 429"), (50, "sink ok"), (55, "kill worker"), (58, "restart worker"),
             (65, "sink down"), (75, "sink ok"), (80, "flushdb")]
    return [(t * scale, what) for t, what in steps]


def index_of(tok: str) -> int:
    return int(tok.rsplit("-", 1)[1])


async def list_incident_ids(s: aiohttp.ClientSession, base: str, channel_id: int, ids: dict[str, int],
                            needed: set[str] | None = None) -> None:
    """Fill token -> incident id from the channel's incident list (newest first): every page, or only until
    every `needed` token is known (small pages: the acker must not load Vigil more than an operator would)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    limit = "100" if needed is None else "50"
    for page in range(1, 10001):
        async with s.get(f"{base}/api/v1/incidents", headers=headers,
                         params={"channel_id": str(channel_id), "limit": limit, "p": str(page)}) as r:
            data = (await r.json())["data"]
        for inc in data["items"]:
            m = TOKEN.search(inc["title"])
            if m:
                ids.setdefault(m.group(0), inc["incident_id"])
        if not data.get("has_next_page") or (needed is not None and needed <= ids.keys()):
            return


async def acker(s: aiohttp.ClientSession, base: str, st: Setup, pushes: dict[str, Push], acks: dict[str, Ack],
                ids: dict[str, int], every: int, after: float, stop: asyncio.Event) -> None:
    tasks: list[asyncio.Task] = []

    async def ack(tok: str) -> None:
        a = acks[tok]
        try:
            async with s.post(f"{base}/api/v1/incidents/{a.incident_id}/ack", json={},
                              headers={"Authorization": f"Bearer {ADMIN}"}) as r:
                body = await r.text()
                a.status = r.status
                if r.status != 200:
                    a.error = body[:200]
        except (TimeoutError, aiohttp.ClientError) as exc:
            a.status, a.error = -1, type(exc).__name__
        a.t_done = time.time()

    while not stop.is_set():
        now = time.time()
        due = [tok for tok, p in list(pushes.items())
               if index_of(tok) % every == 0 and p.accepted and tok not in acks and p.t_send + after <= now]
        if due:
            unknown = {tok for tok in due if tok not in ids}
            if unknown:
                await list_incident_ids(s, base, st.channel_id, ids, unknown)
            for tok in due:
                if tok in ids:
                    acks[tok] = Ack(ids[tok], time.time())
                    tasks.append(asyncio.create_task(ack(tok)))
        await asyncio.sleep(0.5)
    await asyncio.gather(*tasks)


async def drive(base: str, sink_: SinkProc, ws: list[Worker], rurl: str, args) -> int:
    await wait_ready(base)
    waits = [args.level2_wait / 60, 0.0] if args.level2_wait > 0 else [0.0]
    async with aiohttp.ClientSession() as s:
        st = await setup(s, base, waits, name="paging-faults")
        await warm_up(st.push_url, sink_, s)
        warm: dict[str, int] = {}  # acknowledged, so that their level-2 pages do not arrive during the run
        await list_incident_ids(s, base, st.channel_id, warm)
        for iid in warm.values():
            await api(s, base, "POST", f"/incidents/{iid}/ack", {})
        await sink_.reset(s)
        run = run_id()
        pushes: dict[str, Push] = {}
        acks: dict[str, Ack] = {}
        ids: dict[str, int] = {}
        events: list[tuple[float, str]] = []
        duration = args.duration * args.scale
        serve_pid = SERVER_PIDS[base]
        cpu0 = (pid_cpu(serve_pid), sum(w.cpu() for w in ws), sink_.cpu(), self_cpu())
        t0 = time.time() + 0.5

        async def faults() -> None:
            killed: Worker | None = None
            for offset, what in timeline(args.scale):
                if what == "kill worker":  # the busiest one over the second before the kill
                    await asyncio.sleep(max(0.0, t0 + offset - 1 - time.time()))
                    before = [w.cpu() for w in ws]
                await asyncio.sleep(max(0.0, t0 + offset - time.time()))
                if what.startswith("sink "):
                    t = await sink_.set_mode(s, what.split()[1])
                    events.append((t, what))
                elif what == "kill worker":
                    deltas = [w.cpu() - b for w, b in zip(ws, before)]
                    i = max(range(len(ws)), key=lambda k: deltas[k])
                    killed = ws[i]
                    pid = killed.pid
                    killed.kill()
                    events.append((time.time(), f"kill -9 worker {i} (pid {pid}, {deltas[i]:.2f} s CPU in the "
                                                f"second before)"))
                elif what == "restart worker" and killed is not None:
                    killed.start()
                    events.append((time.time(), f"worker started again (pid {killed.pid})"))
                elif what == "flushdb":
                    flush_redis(rurl)
                    events.append((time.time(), f"FLUSHDB on {rurl}"))

        stop = asyncio.Event()
        ack_task = asyncio.create_task(acker(s, base, st, pushes, acks, ids, args.ack_every, args.ack_after, stop))
        fault_task = asyncio.create_task(faults())
        await push_paced(st.push_url, run, args.rate, duration, pushes=pushes, start=t0)
        await fault_task
        await sink_.set_mode(s, "ok")
        await asyncio.sleep(args.ack_after + 0.5)
        stop.set()
        await ack_task

        accepted = {tok for tok, p in pushes.items() if p.accepted}
        acked = {tok for tok, a in acks.items() if a.status == 200}
        expected = {(tok, st.phones[level]) for tok in accepted - acked for level in range(len(waits))}
        deadline = t0 + duration + args.level2_wait + args.grace
        while True:
            await sink_.fetch(s)
            got = {(r.token, r.to) for r in sink_.receipts if r.status == 200}
            if expected <= got or time.time() >= deadline:
                break
            await asyncio.sleep(0.5)
        waited = time.time() - (t0 + duration)
        cpu1 = (pid_cpu(serve_pid), sum(w.cpu() for w in ws), sink_.cpu(), self_cpu())
        cpu = (f"CPU from the first push to the last page: serve {cpu1[0] - cpu0[0]:.1f} s, workers "
               f"{cpu1[1] - cpu0[1]:.1f} s, SMS sink {cpu1[2] - cpu0[2]:.1f} s, load generator "
               f"{cpu1[3] - cpu0[3]:.1f} s over {time.time() - t0:.0f} s")
        await asyncio.sleep(2.0)  # a duplicate right behind the last page still counts
        await sink_.fetch(s)

        await list_incident_ids(s, base, st.channel_id, ids)
        deliveries = await fetch_deliveries(s, base, [ids[t] for t in accepted if t in ids])

    return report(args, st, t0, duration, pushes, acks, ids, sink_.receipts, sink_.modes, events, deliveries,
                  waited, cpu)


async def fetch_deliveries(s: aiohttp.ClientSession, base: str, incident_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    gate = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {ADMIN}"}

    async def one(iid: int) -> None:
        items: list[dict] = []
        async with gate:
            for page in range(1, 100):
                async with s.get(f"{base}/api/v1/incidents/{iid}/deliveries", headers=headers,
                                 params={"limit": "100", "p": str(page)}) as r:
                    data = (await r.json())["data"]
                items += data["items"]
                if not data.get("has_next_page"):
                    break
        out[iid] = items

    await asyncio.gather(*[one(i) for i in incident_ids])
    return out


def fault_windows(modes: list[tuple[float, str]], end: float) -> list[tuple[float, float, str]]:
    """[start, end) of every period the sink was not healthy, from its own log of mode switches."""
    out = []
    for k, (t, mode) in enumerate(modes):
        if mode != "ok":
            out.append((t, modes[k + 1][0] if k + 1 < len(modes) else end, mode))
    return out


SEND_SLACK = 1.0  # a page pushed this long before an outage starts may meet it on its first attempt


def reference(t: float, windows: list[tuple[float, float, str]]) -> tuple[float, str]:
    """The time a page could be sent at the earliest, and the name of the window `t` falls in ("healthy" if
    none): max(t, end of the outage the page sat through). An outage is every fault window back to back
    from the one the page met (500s then 429s are one 40 s outage), including one that starts within
    SEND_SLACK after `t`, when the page's first attempt met it."""
    name, end = "healthy", t
    for k, (a, b, mode) in enumerate(windows):
        if a <= t < b or t < a <= t + SEND_SLACK:
            name = mode if a <= t else "healthy"
            end = b
            for a2, b2, _ in windows[k + 1:]:
                if a2 > end:
                    break
                end = max(end, b2)
            break
    return end, name


def report(args, st: Setup, t0: float, duration: float, pushes: dict[str, Push], acks: dict[str, Ack],
           ids: dict[str, int], receipts: list[Receipt], modes: list[tuple[float, str]],
           events: list[tuple[float, str]], deliveries: dict[int, list[dict]], waited: float, cpu: str) -> int:
    levels = 2 if args.level2_wait > 0 else 1
    accepted = {tok for tok, p in pushes.items() if p.accepted}
    acked = {tok: a for tok, a in acks.items() if a.status == 200}
    windows = fault_windows(modes, time.time())
    ok_by: dict[tuple[str, str], list[Receipt]] = defaultdict(list)
    all_by: dict[tuple[str, str], list[Receipt]] = defaultdict(list)
    for r in sorted(receipts, key=lambda r: r.t):
        all_by[(r.token, r.to)].append(r)
        if r.status == 200:
            ok_by[(r.token, r.to)].append(r)

    print(f"== paging under faults: PostgreSQL + arq, {args.workers} workers, {args.rate:g} alerts/s for "
          f"{duration:.0f} s ==")
    print("timeline (s from the first push):")
    for t, what in sorted(events):
        print(f"  {t - t0:6.1f}  {what}")
    failed_acks = [a for a in acks.values() if a.status != 200]
    print(f"pushes: sent {len(pushes)}, accepted {len(accepted)}; acks sent {len(acks)}, answered 200 "
          f"{len(acked)}" + (f", failed {len(failed_acks)} (e.g. {failed_acks[0].status} {failed_acks[0].error})"
                             if failed_acks else ""))
    ack_delay = [a.t_done - pushes[tok].t_send for tok, a in acked.items()]
    if ack_delay:
        print(f"acks answered p50 {fmt_s(quantile(ack_delay, .5))}, max {fmt_s(max(ack_delay))} after their push")

    failing = False
    after_ack = 0
    after_ack_examples: list[str] = []
    dup_total = lost_total = 0
    dup_examples: list[str] = []
    for level in range(levels):
        phone = st.phones[level]
        wait = args.level2_wait if level else 0.0
        expected = delivered = lost = cancelled = dups = 0
        late: list[float] = []
        lost_states: Counter = Counter()  # what the API says about each lost page
        per_window: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, []])  # pushes, delivered, lost, cancelled, late
        for tok in sorted(accepted, key=index_of):
            p = pushes[tok]
            got = ok_by.get((tok, phone), [])
            ack = acked.get(tok)
            ref, window = reference(p.t_send + wait, windows)
            w = per_window[window]
            w[0] += 1
            dups += max(0, len(got) - 1)
            if len(got) > 1 and len(dup_examples) < 3:
                dup_examples.append(f"{tok} (incident {ids.get(tok, '?')}) level {level + 1} paged at "
                                    + ", ".join(f"{r.t - t0:.1f} s" for r in got))
            if ack is not None:
                later = [r for r in got if r.t > ack.t_done]
                after_ack += len(later)
                if later and len(after_ack_examples) < 3:
                    after_ack_examples.append(f"{tok} level {level + 1}: paged {later[0].t - ack.t_done:.1f} s "
                                              f"after its ack was answered")
            if got:
                if ack is None or level == 0:
                    expected += 1
                    delivered += 1
                    w[1] += 1
                    late.append(got[0].t - ref)
                    w[4].append(got[0].t - ref)
            elif ack is not None:
                cancelled += 1
                w[3] += 1
            else:
                expected += 1
                lost += 1
                w[2] += 1
                rows = [d["state"] for d in deliveries.get(ids.get(tok, -1), [])
                        if d["medium"] == "sms" and d["person_id"] == st.member_ids[level]]
                lost_states[",".join(rows) or "no delivery row"] += 1
        dup_total += dups
        lost_total += lost
        failing |= lost > 0
        name = f"level {level + 1}" + (f" (+{wait:g} s)" if wait else "")
        print(f"{name:16s}: pages expected {expected}, delivered {delivered}, lost {lost}"
              + (f" (API delivery state: {dict(lost_states)})" if lost else "")
              + (f"; cancelled by an ack {cancelled}" if cancelled else "") + f"; duplicates {dups}")
        print(f"{'':16s}  lateness beyond the fault window: p50 {fmt_s(quantile(late, .5))}  "
              f"p99 {fmt_s(quantile(late, .99))}  max {fmt_s(max(late, default=math.nan))}")
        for window in ("healthy", "500", "429", "down"):
            if window in per_window:
                n, d, lo, c, lt = per_window[window]
                print(f"{'':18s}{'due' if level else 'pushed'} while {window:7s}: {n:5d}  delivered {d:5d}  lost {lo:4d}"
                      + (f"  cancelled by ack {c:3d}" if c else "")
                      + f"  lateness p50 {fmt_s(quantile(lt, .5))}  p99 {fmt_s(quantile(lt, .99))}  "
                        f"max {fmt_s(max(lt, default=math.nan))}")
    failing |= dup_total > 0
    for e in dup_examples:
        print(f"  duplicate: {e}")
    print(f"pages after an ack: {after_ack}" + (f" (e.g. {'; '.join(after_ack_examples)})" if after_ack else ""))
    strays = sum(len(v) for (tok, _), v in ok_by.items() if tok not in accepted and tok in pushes)
    if strays:
        print(f"pages for pushes that were not accepted: {strays}")
    print(f"(waited {waited:.0f} s after the last push for the pages; the sink saw {len(receipts)} requests, "
          f"{sum(1 for r in receipts if r.status == 200)} answered 200, "
          f"{sum(1 for r in receipts if r.status == 208)} re-sends absorbed by their idempotency key)")
    print(cpu)
    disagree = check_api(st, accepted, ids, ok_by, all_by, deliveries, levels)
    print("RESULT: " + ("FAIL" if failing or disagree else "OK") + f" (lost {lost_total}, duplicates {dup_total}"
          + (", delivery records disagree with the sink)" if disagree else ")"))
    return 1 if failing or disagree else 0


def check_api(st: Setup, accepted: set[str], ids: dict[str, int], ok_by: dict, all_by: dict,
              deliveries: dict[int, list[dict]], levels: int) -> bool:
    """Do the Open API's delivery records agree with the sink? Returns True when they do not."""
    states: Counter = Counter()
    unrecorded = phantom = count_differs = unknown_ids = wrong_ref = more_requests = 0
    attempts_total = requests_total = 0
    examples: list[str] = []
    no_incident = [tok for tok in accepted if tok not in ids]
    for tok in sorted(accepted, key=index_of):
        iid = ids.get(tok)
        if iid is None:
            continue
        for level in range(levels):
            member, phone = st.member_ids[level], st.phones[level]
            rows = [d for d in deliveries.get(iid, []) if d["medium"] == "sms" and d["person_id"] == member]
            for d in rows:
                states[(level + 1, d["state"])] += 1
            sent = [d for d in rows if d["state"] == "sent"]
            got = ok_by.get((tok, phone), [])
            seen = all_by.get((tok, phone), [])
            attempts = sum(d["attempts"] for d in rows)
            attempts_total += attempts
            requests_total += len(seen)
            wrong_ref += sum(1 for r in seen if r.ref != str(iid))
            if len(seen) > attempts:
                more_requests += 1
            if got and not sent:
                unrecorded += 1
                if len(examples) < 4:
                    examples.append(f"incident {iid} level {level + 1}: the sink accepted {len(got)} SMS, the API "
                                    f"has no sent delivery ({', '.join(d['state'] for d in rows) or 'no rows'})")
            elif sent and not got:
                phantom += 1
                if len(examples) < 4:
                    examples.append(f"incident {iid} level {level + 1}: the API says sent, the sink accepted none")
            elif len(sent) != len(got):
                count_differs += 1
                if len(examples) < 4:
                    examples.append(f"incident {iid} level {level + 1}: the sink accepted {len(got)} SMS, the API "
                                    f"has {len(sent)} sent deliveries")
            sink_ids = {r.sink_id for r in got}
            unknown_ids += sum(1 for d in sent if d["provider_message_id"] not in sink_ids)
    print("Open API delivery records (GET /incidents/{id}/deliveries) against the sink:")
    print("  delivery states: " + ", ".join(f"level {lv} {state} {n}" for (lv, state), n in sorted(states.items())))
    print(f"  attempts recorded {attempts_total}, requests the sink saw {requests_total} (connections refused "
          f"while down never reach it); (incident, level)s where the sink saw more requests than attempts: "
          f"{more_requests}")
    bad = unrecorded + phantom + count_differs + unknown_ids + wrong_ref + len(no_incident)
    print(f"  sink paged but no sent record {unrecorded}; sent record but no page {phantom}; counts differ "
          f"{count_differs}; provider message ids the sink never gave {unknown_ids}; SMS whose ref is another "
          f"incident {wrong_ref}; accepted alerts with no incident {len(no_incident)}"
          + (" -> AGREE" if not bad else " -> DISAGREE"))
    for e in examples:
        print(f"    {e}")
    return bad > 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=15, help="distinct alerts per second")
    ap.add_argument("--duration", type=float, default=90, help="seconds of pushing (the timeline fits 90)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--grace", type=float, default=60, help="seconds to wait for pages after the last one is due")
    ap.add_argument("--ack-every", type=int, default=5, help="acknowledge every N-th incident")
    ap.add_argument("--ack-after", type=float, default=2, help="seconds after its push")
    ap.add_argument("--level2-wait", type=float, default=30, help="seconds before level 2 pages; 0 = one level")
    ap.add_argument("--scale", type=float, default=1.0, help="scale the timeline and duration (e.g. 0.5)")
    ap.add_argument("--redis-db", type=int, default=11, help="Redis database number for arq (flushed)")
    args = ap.parse_args()
    logdir = tempfile.mkdtemp(prefix="vigil-faults-")
    print(f"Vigil logs (stderr of serve and workers): {logdir}", flush=True)
    rurl = redis_url(args.redis_db)
    with sink() as sink_, database("postgresql") as db_url:
        flush_redis(rurl)
        env = {"VIGIL_SMS": sink_.vigil_sms_env(), "VIGIL_REDIS_URL": rurl}
        try:
            with vigil(db_url, log=f"{logdir}/serve.log", **env) as base, \
                    workers(db_url, args.workers, rurl, log=f"{logdir}/workers.log", **env) as ws:
                rc = asyncio.run(drive(base, sink_, ws, rurl, args))
        finally:
            flush_redis(rurl)
    sys.exit(rc)


if __name__ == "__main__":
    main()
