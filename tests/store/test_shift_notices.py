"""Shift notices in virtual time, on SQLite and PostgreSQL (issue 13 item 10): the scan chain finds each
member's shift starts and ends, one notice per boundary goes out when due over the member's medium, with a
lead time, an opt-out, a fallback to the next medium, and a cancel when the schedule changed meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import jobs, shift_notices
from core.db import make_engine, make_sessionmaker
from core.errors import DeliveryError
from core.models import Member, Schedule, ShiftNotice, ShiftNoticeSetting
from tests.store.test_escalation_flow import Clock, Provider, drain

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
DAY1, DAY2 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC), datetime(2026, 6, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def world(db_url):
    engine = make_engine(db_url)
    clock = Clock()
    clock.t = T0
    providers = {m: Provider(m) for m in ("im", "sms", "email", "voice")}
    ctx = jobs.JobContext(make_sessionmaker(engine), services={"senders": providers, "base_url": "http://v"},
                          now=clock)
    yield ctx, clock, providers
    await engine.dispose()


async def people(ctx, **settings) -> dict[str, int]:
    """ann prefers e-mail for Info, bob has no preferences (so SMS, the default chain's first notice medium)."""
    async with ctx.sessionmaker() as s:
        ann = Member(name="ann", email="ann@x.io", phone="+15550001", preferences={"Info": ["email"]})
        bob = Member(name="bob", email="bob@x.io", phone="+15550002")
        s.add_all([ann, bob])
        await s.flush()
        for name, (enabled, lead) in settings.items():
            s.add(ShiftNoticeSetting(member_id={"ann": ann.id, "bob": bob.id}[name], enabled=enabled,
                                     lead_minutes=lead))
        s.add(Schedule(name="db", definition={"layers": [{
            "start": DAY1.isoformat(), "members": [{"member_id": ann.id}, {"member_id": bob.id}],
            "rotation": {"unit": "days", "value": 1}}]}))
        await shift_notices.ensure_scan(s, ctx.now())
        await s.commit()
        return {"ann": ann.id, "bob": bob.id}


async def run_until(ctx, clock, until: datetime, step=timedelta(minutes=5), *, skip_to: datetime | None = None) -> None:
    """Run the jobs due as the clock moves on to `until`; `skip_to` first jumps there (the process was down:
    the scan chain resumes from the current time, with no backlog of missed scans)."""
    await drain(ctx)
    if skip_to is not None:
        clock.t = skip_to
        await drain(ctx)
    while clock() < until:
        clock.advance(seconds=step.total_seconds())
        await drain(ctx)


async def notices(ctx) -> list[tuple]:
    async with ctx.sessionmaker() as s:
        rows = (await s.execute(select(ShiftNotice).order_by(ShiftNotice.due_at, ShiftNotice.member_id))).scalars()
        return [(n.member_id, n.kind, n.at, n.due_at, n.medium, n.state) for n in rows]


async def test_starts_and_ends_are_told_once_when_due(world):
    ctx, clock, p = world
    who = await people(ctx)
    ann, bob = who["ann"], who["bob"]
    await run_until(ctx, clock, DAY1 - timedelta(minutes=5))
    assert p["email"].sent == [] and p["sms"].sent == []
    await run_until(ctx, clock, DAY1)
    assert p["email"].sent == [(ann, 0, "shift_start")]
    await run_until(ctx, clock, DAY2 + timedelta(minutes=30), skip_to=DAY2 - timedelta(minutes=10))
    assert p["email"].sent == [(ann, 0, "shift_start"), (ann, 0, "shift_end")]
    assert p["sms"].sent == [(bob, 0, "shift_start")]
    assert await notices(ctx) == [
        (ann, "start", DAY1, DAY1, "email", "sent"), (ann, "end", DAY2, DAY2, "email", "sent"),
        (bob, "start", DAY2, DAY2, "sms", "sent")]
    # a scan seeing the same boundaries again (a schedule edit, a restart) tells nobody twice
    clock.t = DAY2 - timedelta(minutes=1)
    async with ctx.sessionmaker() as s:
        await shift_notices.scan_soon(s, clock(), 1)
        await shift_notices.ensure_scan(s, clock())
        await s.commit()
    await drain(ctx)
    async with ctx.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(ShiftNotice))).scalar_one() == 3
    assert len(p["email"].sent) + len(p["sms"].sent) == 3


async def test_lead_time_and_opting_out(world):
    ctx, clock, p = world
    who = await people(ctx, ann=(False, 0), bob=(True, 30))
    await run_until(ctx, clock, DAY2 + timedelta(minutes=5), skip_to=DAY2 - timedelta(minutes=45))
    assert p["email"].sent == []  # ann turned notices off
    assert p["sms"].sent == [(who["bob"], 0, "shift_start")]
    assert await notices(ctx) == [(who["bob"], "start", DAY2, DAY2 - timedelta(minutes=30), "sms", "sent")]


async def test_a_failing_medium_falls_back_to_the_next(world):
    ctx, clock, p = world
    who = await people(ctx)
    p["email"].broken[who["ann"]] = DeliveryError("550 mailbox unavailable", retryable=False)
    await run_until(ctx, clock, DAY1 + timedelta(minutes=5), step=timedelta(minutes=1),
                    skip_to=DAY1 - timedelta(minutes=5))
    assert p["email"].sent == [] and p["sms"].sent == [(who["ann"], 0, "shift_start")]
    async with ctx.sessionmaker() as s:
        [n] = (await s.execute(select(ShiftNotice))).scalars().all()
        assert (n.state, n.medium, n.tried) == ("sent", "sms", ["email"])
        assert "550 mailbox unavailable" in n.last_error


async def test_transient_errors_are_retried(world):
    ctx, clock, p = world
    who = await people(ctx)
    p["email"].failures = [DeliveryError("503", retryable=True)] * 2
    await run_until(ctx, clock, DAY1 + timedelta(seconds=30), step=timedelta(seconds=5),
                    skip_to=DAY1 - timedelta(minutes=5))
    assert p["email"].sent == [(who["ann"], 0, "shift_start")] and p["email"].calls == 3 and p["sms"].sent == []


async def test_a_notice_is_canceled_when_the_schedule_changed(world):
    ctx, clock, p = world
    await people(ctx)
    await run_until(ctx, clock, DAY1 - timedelta(minutes=5))
    assert [n[1:3] + n[5:] for n in await notices(ctx)] == [("start", DAY1, "pending")]
    async with ctx.sessionmaker() as s:  # the layer now starts an hour later
        sched = (await s.execute(select(Schedule))).scalar_one()
        sched.definition = {**sched.definition, "layers": [
            {**sched.definition["layers"][0], "start": (DAY1 + timedelta(hours=1)).isoformat()}]}
        await s.commit()
    await run_until(ctx, clock, DAY1 + timedelta(hours=1))
    assert [n[1:3] + n[5:] for n in await notices(ctx)] == [
        ("start", DAY1, "canceled"), ("start", DAY1 + timedelta(hours=1), "sent")]
    assert len(p["email"].sent) == 1
    async with ctx.sessionmaker() as s:  # disabled: nothing more is told
        sched = (await s.execute(select(Schedule))).scalar_one()
        sched.status = "disabled"
        await s.commit()
    await run_until(ctx, clock, DAY2 + timedelta(minutes=10), skip_to=DAY2 - timedelta(minutes=10))
    assert len(p["email"].sent) == 1 and p["sms"].sent == []
