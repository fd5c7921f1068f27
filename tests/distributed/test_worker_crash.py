"""A `vigil worker` killed with SIGKILL mid-batch costs seconds, not minutes, and pages stay exactly once.

Real processes: two `vigil worker`s on PostgreSQL + Redis send SMS through the generic HTTP gateway to a
slow local sink. One worker is killed while it holds sends in flight; its leases expire and the other
worker picks the rows up. arq's own bookkeeping for the killed jobs lives on for its job timeout
(5 minutes), so this only passes because claims are leased in the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from aiohttp import web
from sqlalchemy import func, select

from core import jobs
from core.clock import utcnow
from core.db import make_engine, make_sessionmaker
from core.ingest import IntegrationRef, ingest_batch
from core.models import Channel, Delivery, EscalationRule, Integration, Member
from core.types import AlertEvent, EventStatus
from tests.conftest import _empty_pg, need

REDIS_DB_URL = f"redis://127.0.0.1:6379/{int(os.environ.get('VIGIL_TEST_REDIS_DB', '15')) - 1}"  # not the suite's db 15, which other tests flush
N = 40


class SlowSink:
    """An SMS gateway that takes its time, recording what arrived and what it answered."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[tuple[float, str]] = []
        self.answered: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        ref = (await request.json())["ref"]
        self.received.append((time.monotonic(), ref))
        await asyncio.sleep(self.delay)
        self.answered.append(ref)
        return web.json_response({"ok": True, "id": f"sms-{ref}"})


def _worker(db_url: str, sink_url: str) -> subprocess.Popen[bytes]:
    sms = {"provider": "http_sms", "url": sink_url, "timeout": 10,
           "body": '{"to": {{ to.phone|tojson }}, "ref": {{ message.incident_id|tojson }}}'}
    env = {**os.environ, "VIGIL_DATABASE_URL": db_url.replace("+asyncpg", ""), "VIGIL_REDIS_URL": REDIS_DB_URL,
           "VIGIL_SMS": json.dumps(sms), "VIGIL_SWEEP_INTERVAL_SECONDS": "1", "VIGIL_LOG_LEVEL": "WARNING",
           "VIGIL_EGRESS_ALLOW": "127.0.0.1"}  # the SMS sink listens on loopback
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, cwd=os.getcwd(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def pg_url(pg_database):
    _empty_pg(pg_database)
    return pg_database


@pytest.fixture
async def world(pg_url):
    need("Redis", "127.0.0.1", 6379)
    from redis.asyncio import Redis

    pg_database = pg_url
    r = Redis.from_url(REDIS_DB_URL)
    await r.flushdb()
    sink = SlowSink(delay=1.5)
    app = web.Application()
    app.router.add_post("/sms", sink.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    engine = make_engine(pg_database)
    sessions = make_sessionmaker(engine)
    procs: list[subprocess.Popen[bytes]] = []
    yield sessions, sink, f"http://127.0.0.1:{port}/sms", pg_database, procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    await engine.dispose()
    await runner.cleanup()
    await r.flushdb()
    await r.aclose()


async def test_killing_a_busy_worker_delays_its_pages_by_seconds_and_never_doubles_them(world):
    sessions, sink, sink_url, db_url, procs = world
    async with sessions() as s:
        ann = Member(name="ann", phone="+15550000001", preferences={"Critical": ["sms"]})
        ch = Channel(name="db")
        s.add_all([ann, ch])
        await s.flush()
        integ = Integration(name="i", type="standard", channel_id=ch.id, key="k", key_hash="h")
        s.add(integ)
        s.add(EscalationRule(channel_id=ch.id, name="r", definition={
            "levels": [{"targets": {"member_ids": [ann.id]}, "media": ["sms"]}]}))
        await s.commit()
        ref = IntegrationRef(integ.id, "standard", ch.id)
    procs += [_worker(db_url, sink_url), _worker(db_url, sink_url)]
    arq = jobs.ArqRunner(REDIS_DB_URL)
    await arq.start()
    detach = jobs.attach_runner(sessions, arq)
    try:
        async with sessions() as s:
            await ingest_batch(s, [(ref, AlertEvent(EventStatus.CRITICAL, f"disk {i}", f"k{i}")) for i in range(N)],
                               utcnow())
            await s.commit()
        # Wait until both workers hold sends in flight (the sink is slow), then kill the one holding more.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(sink.received) - len(sink.answered) < 10:
            await asyncio.sleep(0.05)
        async with sessions() as s:
            running = (await s.execute(select(func.count()).select_from(jobs.Job)
                                       .where(jobs.Job.state == "running"))).scalar_one()
        assert running >= 2, "no jobs in flight to kill"
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        in_flight_at_kill = {ref for _, ref in sink.received} - set(sink.answered)
        procs.append(_worker(db_url, sink_url))  # restarted, as a supervisor would
        async with sessions() as s:
            first = (await s.execute(select(func.min(Delivery.incident_id)))).scalar_one()
        expected = {str(first + i) for i in range(N)}
        deadline = time.monotonic() + 120

        async def all_recorded_sent() -> bool:  # the sink answered *and* Vigil recorded it
            async with sessions() as s:
                return (await s.execute(select(func.count()).select_from(Delivery)
                                        .where(Delivery.state == "sent"))).scalar_one() == N

        while time.monotonic() < deadline and not (set(sink.answered) == expected and await all_recorded_sent()):
            await asyncio.sleep(0.1)
        finished = time.monotonic()
    finally:
        detach()
        await arq.stop()
    if set(sink.answered) != expected:
        async with sessions() as s:
            stuck = [(j.id, j.state, j.attempts, j.due_at, j.locked_until, j.last_error[:200]) for j in
                     (await s.execute(select(jobs.Job).where(jobs.Job.state != "done"))).scalars()]
        pytest.fail(f"pages lost: {sorted(expected - set(sink.answered))}; unfinished jobs: {stuck}")
    # Seconds, not minutes: the lease (10 s) + a sweep (1 s) + the slow sink's answers, with room for a
    # loaded CI machine; arq's own bookkeeping would hold the killed jobs for 300 s.
    assert finished - killed_at < jobs.LEASE.total_seconds() + 40
    async with sessions() as s:
        rows = (await s.execute(select(Delivery.incident_id, Delivery.level, Delivery.member_id, Delivery.medium,
                                       Delivery.state))).all()
    assert len(rows) == N and {r.state for r in rows} == {"sent"}  # one delivery per page, each sent
    assert len({(r.incident_id, r.level, r.member_id, r.medium) for r in rows}) == N
    # A send the killed worker had on the wire may reach the gateway again; nothing else may.
    refs = [ref for _, ref in sink.received]
    doubled = {ref for ref in refs if refs.count(ref) > 1}
    assert doubled <= in_flight_at_kill
    assert len(sink.received) <= N + len(in_flight_at_kill)
