"""Shared pieces of bench/paging.py and bench/paging_faults.py: the SMS sink process, set-up through the
Open API, a paced pusher of distinct alerts, and statistics.

Everything here talks to Vigil over its public interfaces only (the Event API, the Open API, and the
VIGIL_SMS setting an operator would write); nothing imports Vigil itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench._server import api, cpu_seconds, free_port

HERE = Path(__file__).resolve().parent
SMS_KEY = "bench-sms-key"


# ---- the SMS sink (bench/_sms_sink.py in its own process) ----------------------------------------


@dataclass
class Receipt:
    """One request the sink received: when, for which alert (token), to whom, and what it answered."""

    t: float
    token: str
    to: str
    ref: str
    status: int  # 200 = an SMS accepted; 208 = a re-send its idempotency key absorbed; 500 / 429 = refused
    #              by a fault; 0 = dropped while down
    sink_id: str


class SinkProc:
    """Controls the sink process; `receipts` grows as `fetch()` reads the new records."""

    def __init__(self) -> None:
        self.port = free_port()
        self.control_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.receipts: list[Receipt] = []
        self.modes: list[tuple[float, str]] = []
        self._next = 0

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_sms_sink.py"), "--port", str(self.port),
                                      "--control-port", str(self.control_port)], stdout=subprocess.DEVNULL)
        import socket

        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SMS sink exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.control_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("SMS sink did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def vigil_sms_env(self) -> str:
        """VIGIL_SMS for the generic HTTP gateway provider, as an operator would write it."""
        return json.dumps({
            "provider": "http_sms",
            "method": "POST",
            "url": f"http://127.0.0.1:{self.port}/sms?ref={{{{ message.incident_id }}}}",
            "body": '{"to": {{ to.phone|tojson }}, "text": {{ message.text|tojson }}}',
            "headers": {"Content-Type": "application/json", "X-Api-Key": "{{ secret.api_key }}",
                        "Idempotency-Key": "{{ message.idempotency_key }}"},
            "secrets": {"api_key": SMS_KEY},
            "success_path": "status",
            "success_value": "ok",
            "message_id_path": "id",
            "timeout": 5,
        })

    async def set_mode(self, s: aiohttp.ClientSession, mode: str) -> float:
        async with s.post(f"{self.control}/mode", params={"m": mode}) as r:
            data = await r.json()
            if r.status != 200:
                raise RuntimeError(f"sink mode {mode}: {data}")
            return float(data["t"])

    async def fetch(self, s: aiohttp.ClientSession) -> list[Receipt]:
        """Read the records received since the last fetch; returns the new ones."""
        async with s.get(f"{self.control}/records", params={"since": str(self._next)}) as r:
            data = await r.json()
        new = [Receipt(*rec) for rec in data["records"]]
        self.receipts.extend(new)
        self._next = data["next"]
        self.modes = [(float(t), m) for t, m in data["modes"]]
        return new

    async def reset(self, s: aiohttp.ClientSession) -> None:
        async with s.post(f"{self.control}/reset") as r:
            await r.read()
        self.receipts, self.modes, self._next = [], [], 0


@contextlib.contextmanager
def sink() -> Iterator[SinkProc]:
    proc = SinkProc()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


# ---- set-up through the Open API ------------------------------------------------------------------


@dataclass
class Setup:
    channel_id: int
    push_url: str
    member_ids: list[int]  # one per escalation level
    phones: list[str]  # phones[level]


async def setup(s: aiohttp.ClientSession, base: str, waits_minutes: list[float], name: str = "paging-bench") -> Setup:
    """A channel with a standard integration and one escalation rule whose level i pages member i by SMS
    and then waits waits_minutes[i]. Each member has an E.164 phone and pages by SMS only."""
    members, phones = [], []
    for level in range(len(waits_minutes)):
        phone = f"+1555010{level:04d}"
        m = await api(s, base, "POST", "/members", {
            "name": f"bench on-call {level}", "phone": phone, "email": f"oncall{level}@bench.example.com",
            "preferences": {"Critical": ["sms"], "Warning": ["sms"], "Info": ["sms"]}, "fallback": ["sms"]})
        members.append(m["member_id"])
        phones.append(phone)
    ch = await api(s, base, "POST", "/channels", {"name": name})
    integ = await api(s, base, "POST", f"/channels/{ch['channel_id']}/integrations",
                      {"type": "standard", "name": "bench"})
    await api(s, base, "POST", f"/channels/{ch['channel_id']}/escalation-rules", {
        "name": "page by SMS",
        "levels": [{"targets": {"member_ids": [mid]}, "media": ["sms"], "wait_minutes": wait}
                   for mid, wait in zip(members, waits_minutes)],
        "stop_on": "ack"})
    return Setup(ch["channel_id"], integ["push_url"], members, phones)


# ---- pushing distinct alerts at a fixed rate -----------------------------------------------------


def run_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=6))


def token(run: str, i: int) -> str:
    return f"pg-{run}-{i}"


@dataclass
class Push:
    token: str
    t_sched: float  # when the pacer wanted it sent
    t_send: float = 0.0  # when the request was handed to the HTTP client (the alert's "push time")
    t_done: float = 0.0
    status: int = 0  # HTTP status; -1 = client error or timeout
    error: str = ""
    severity: str = "Critical"

    @property
    def accepted(self) -> bool:
        return self.status == 200


def alert_body(tok: str, severity: str = "Critical") -> dict:
    # The token rides in the title, which the shipped SMS template prints, and is the alert_key too:
    # every push is a new alert and so a new incident (the channel groups by alert_key).
    return {"event_status": severity, "title_rule": f"bench page {tok}", "alert_key": tok,
            "description": "paging benchmark", "labels": {"bench": "paging"}}


async def push_one(s: aiohttp.ClientSession, url: str, p: Push) -> None:
    p.t_send = time.time()
    try:
        async with s.post(url, json=alert_body(p.token, p.severity)) as r:
            await r.read()
            p.status = r.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        p.status, p.error = -1, type(exc).__name__
    p.t_done = time.time()


async def push_paced(url: str, run: str, rate: float, duration: float, *, connections: int = 512,
                     timeout: float = 30.0, first: int = 0, pushes: dict[str, Push] | None = None,
                     start: float | None = None, critical_share: float = 1.0) -> dict[str, Push]:
    """Open loop: alert i is sent at start + i / rate whether or not earlier ones were answered. A share
    `critical_share` of them, evenly spread, is Critical; the rest Info."""
    out: dict[str, Push] = {} if pushes is None else pushes
    conn = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        tasks = []
        t0 = time.time() if start is None else start
        for i in range(int(round(rate * duration))):
            t = t0 + i / rate
            delay = t - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            critical = int((i + 1) * critical_share) > int(i * critical_share)
            p = Push(token(run, first + i), t, severity="Critical" if critical else "Info")
            out[p.token] = p
            tasks.append(asyncio.create_task(push_one(s, url, p)))
        await asyncio.gather(*tasks)
    return out


async def warm_up(url: str, sink_: SinkProc, s: aiohttp.ClientSession, n: int = 3, timeout: float = 60) -> float:
    """Push n alerts and wait for their pages: the whole path works before anything is timed."""
    run = run_id() + "w"
    pushes = await push_paced(url, run, 10, n / 10)
    bad = [p for p in pushes.values() if not p.accepted]
    if bad:
        raise RuntimeError(f"warm-up push refused: {bad[0].status} {bad[0].error}")
    t0 = time.time()
    while time.time() - t0 < timeout:
        await sink_.fetch(s)
        got = {r.token for r in sink_.receipts if r.status == 200}
        if set(pushes) <= got:
            return time.time() - t0
        await asyncio.sleep(0.2)
    raise RuntimeError(f"warm-up: no page reached the SMS sink within {timeout:.0f} s (check the Vigil logs)")


# ---- statistics --------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1); inf stands for a page that never came."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def fmt_s(v: float) -> str:
    if math.isnan(v):
        return "-"
    if math.isinf(v):
        return "never"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def pid_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system
