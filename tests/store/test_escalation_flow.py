"""The escalation engine and delivery runner in virtual time, on SQLite and PostgreSQL.

Senders are recording fakes at the provider boundary (the real providers have their own tests
against fake provider servers); everything between the alert and the send is the real thing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core import incidents, jobs, paging
from core.db import make_engine, make_sessionmaker
from core.errors import DeliveryError
from core.ingest import IntegrationRef, ingest_batch
from core.models import Channel, Delivery, EscalationRule, Integration, Member, TimelineEntry
from core.types import AlertEvent, EventStatus

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


class Provider:
    """A fake provider: records pages, and fails with the errors queued for it."""

    def __init__(self, medium: str) -> None:
        self.medium, self.sent, self.failures = medium, [], []
        self.broken: dict[int, DeliveryError] = {}  # member id -> the error every send to them raises
        self.calls = 0

    async def __call__(self, recipient, page) -> str:
        self.calls += 1
        if recipient.member_id in self.broken:
            raise self.broken[recipient.member_id]
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((recipient.member_id, page.incident_id, page.event_type))
        return f"{self.medium}-{len(self.sent)}"


@pytest.fixture
async def world(db_url):
    from core import events

    engine = make_engine(db_url)
    clock = Clock()
    providers = {m: Provider(m) for m in ("im", "sms", "email", "voice")}
    ctx = jobs.JobContext(make_sessionmaker(engine), services={"senders": providers, "base_url": "http://v"},
                          now=clock)
    saved = list(events._SUBSCRIBERS)
    events._SUBSCRIBERS.clear()
    paging.register()
    yield ctx, clock, providers
    events._SUBSCRIBERS[:] = saved
    await engine.dispose()


async def drain(ctx) -> int:
    """Run every job due now, including the ones those jobs schedule for now."""
    ran = 0
    for _ in range(200):
        async with ctx.sessionmaker() as s:
            due = await jobs.sweep(s, ctx.now(), timedelta(0))
        if not due:
            return ran
        for job_id, *_ in due:
            ran += await jobs.run_job(ctx, job_id)
    raise AssertionError("jobs keep scheduling themselves now: a loop")


async def setup(ctx, *, levels, **rule):
    async with ctx.sessionmaker() as s:
        members = [Member(name=n, email=f"{n}@x.io", phone="+15550001", created_at=T0, updated_at=T0,
                          preferences={"Critical": ["im"]}) for n in ("ann", "bob", "cat")]
        ch = Channel(name="db", created_at=T0, updated_at=T0)
        s.add_all([*members, ch])
        await s.flush()
        integ = Integration(name="i", type="standard", channel_id=ch.id, key_hash="h")
        s.add(integ)
        resolved = [{**lv, "targets": {"member_ids": [members[i].id for i in lv.pop("who", [])],
                                        **lv.get("targets", {})}} for lv in levels]
        s.add(EscalationRule(channel_id=ch.id, name="r", definition={"levels": resolved, **rule}))
        await s.commit()
        return [m.id for m in members], IntegrationRef(integ.id, "standard", ch.id)


async def alert(ctx, ref, key="a"):
    async with ctx.sessionmaker() as s:
        [res] = await ingest_batch(s, [(ref, AlertEvent(EventStatus.CRITICAL, "db down", key))], ctx.now())
        await s.commit()
    return res.incident_id


async def timeline(ctx, iid):
    async with ctx.sessionmaker() as s:
        rows = await s.execute(select(TimelineEntry).where(TimelineEntry.incident_id == iid).order_by(TimelineEntry.id))
        return [(t.kind, t.detail) for t in rows.scalars()]


async def act(ctx, fn, iid, actor, **kw):
    async with ctx.sessionmaker() as s:
        await fn(s, iid, actor, now=ctx.now(), **kw)
        await s.commit()


async def test_two_levels_escalate_after_wait_and_stop_at_ack(world):
    ctx, clock, p = world
    (ann, bob, _), ref = await setup(ctx, levels=[{"who": [0], "wait_minutes": 5}, {"who": [1]}],
                                     repeat=3, repeat_interval_minutes=10)
    iid = await alert(ctx, ref)
    await drain(ctx)
    assert p["im"].sent == [(ann, iid, "escalation")]
    clock.advance(minutes=4, seconds=59)
    await drain(ctx)
    assert len(p["im"].sent) == 1  # not yet
    clock.advance(seconds=1)
    await drain(ctx)
    assert p["im"].sent[-1] == (bob, iid, "escalation")
    await act(ctx, incidents.ack, iid, bob)
    await drain(ctx)
    for _ in range(5):  # the repeats that would have come
        clock.advance(minutes=10)
        await drain(ctx)
    assert len(p["im"].sent) == 2, "no page after an ack"
    kinds = [k for k, _ in await timeline(ctx, iid)]
    assert kinds.count("i_notify") == 2 and "escalation_stopped" in kinds


async def test_ack_between_planning_and_sending_cancels_the_page(world):
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0]}])
    iid = await alert(ctx, ref)
    # run only the fan-out and the escalation step, not the delivery
    for _ in range(4):
        async with ctx.sessionmaker() as s:
            due = [j for j, *_ in await jobs.sweep(s, clock(), timedelta(0)) if not j.startswith("deliver:")]
        for j in due:
            await jobs.run_job(ctx, j)
    await act(ctx, incidents.ack, iid, ann)
    await drain(ctx)
    assert p["im"].sent == []
    async with ctx.sessionmaker() as s:
        [d] = (await s.execute(select(Delivery))).scalars().all()
    assert d.state == "canceled" and d.last_error == "incident acknowledged"


async def test_repeat_last_level_until_ack_with_no_cap(world):
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0]}], repeat_until_ack=True, repeat_interval_minutes=2)
    iid = await alert(ctx, ref)
    await drain(ctx)
    for _ in range(30):
        clock.advance(minutes=2)
        await drain(ctx)
    assert len(p["im"].sent) == 31
    await act(ctx, incidents.ack, iid, ann)
    clock.advance(minutes=2)
    await drain(ctx)
    assert len(p["im"].sent) == 31


async def test_stop_only_at_close_keeps_paging_after_ack(world):
    ctx, clock, p = world
    (ann, bob, _), ref = await setup(ctx, levels=[{"who": [0], "wait_minutes": 1}, {"who": [1]}], stop_on="close")
    iid = await alert(ctx, ref)
    await drain(ctx)
    await act(ctx, incidents.ack, iid, ann)
    clock.advance(minutes=1)
    await drain(ctx)
    assert [s[0] for s in p["im"].sent] == [ann, bob]
    await act(ctx, incidents.close, iid, ann)
    await drain(ctx)


async def test_manual_escalate_jumps_a_level_now(world):
    ctx, clock, p = world
    (ann, bob, _), ref = await setup(ctx, levels=[{"who": [0], "wait_minutes": 30}, {"who": [1]}])
    iid = await alert(ctx, ref)
    await drain(ctx)
    clock.advance(minutes=1)
    await act(ctx, incidents.escalate, iid, ann)
    await drain(ctx)
    assert [s[0] for s in p["im"].sent] == [ann, bob]
    clock.advance(minutes=30)
    await drain(ctx)
    assert len(p["im"].sent) == 2  # the old level-1 timer was superseded, not run twice


async def test_a_failing_medium_keeps_retrying_while_the_next_one_takes_over(world):
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0]}])
    p["im"].failures = [DeliveryError("ann has no linked chat account", retryable=False)]
    p["sms"].failures = [DeliveryError("gateway 503", retryable=True, retry_after=30)] * 4
    iid = await alert(ctx, ref)
    await drain(ctx)
    for _ in range(8):
        clock.advance(seconds=40)
        await drain(ctx)
    # The permanent IM error hands over to SMS at once; SMS rides out its outage (time budget, not a
    # count of attempts) and, having failed for a minute, also hands over to e-mail.
    assert p["sms"].sent == [(ann, iid, "escalation")] and p["email"].sent == [(ann, iid, "escalation")]
    async with ctx.sessionmaker() as s:
        ds = (await s.execute(select(Delivery).order_by(Delivery.id))).scalars().all()
    assert [(d.medium, d.state, d.attempts) for d in ds] == [("im", "failed", 1), ("sms", "sent", 5),
                                                              ("email", "sent", 1)]
    assert ds[2].fallback_from_id == ds[1].id and ds[1].fallback_from_id == ds[0].id
    kinds = [k for k, _ in await timeline(ctx, iid)]
    assert kinds.count("delivery_retry") == 4 and kinds.count("fallback") == 2
    assert kinds.count("delivery_failed") == 1 and kinds.count("delivery_sent") == 2
    retries = [d for k, d in await timeline(ctx, iid) if k == "delivery_retry"]
    assert all(r["retry_in_seconds"] >= 30 for r in retries)  # Retry-After honoured
    handover = [d for k, d in await timeline(ctx, iid) if k == "fallback"][1]
    assert handover["from"] == "sms" and handover["to"] == "email" and handover["from_still_retrying"]


async def test_a_short_outage_is_ridden_out_without_losing_the_page(world):
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0], "media": ["sms"]}])
    outage_end = clock() + timedelta(seconds=40)  # 500s for 20 s, then 429s for 20 s
    p["sms"].failures = [DeliveryError("gateway 500", retryable=True)] * 6 + \
        [DeliveryError("gateway 429", retryable=True, retry_after=1)] * 100
    iid = await alert(ctx, ref)
    while not p["sms"].sent:
        await drain(ctx)
        clock.advance(seconds=0.5)
        if clock() >= outage_end:
            p["sms"].failures.clear()
        assert clock() < outage_end + timedelta(seconds=11), "the page is more than ~10 s late after the outage"
    assert p["sms"].sent == [(ann, iid, "escalation")]


async def test_a_page_no_medium_can_deliver_escalates_at_once(world):
    ctx, clock, p = world
    (ann, bob, _), ref = await setup(ctx, levels=[{"who": [0], "wait_minutes": 30}, {"who": [1]}])
    p["im"].broken[ann] = DeliveryError("slack 503", retryable=True)
    p["sms"].broken[ann] = DeliveryError("not a mobile number", retryable=False)
    p["email"].broken[ann] = DeliveryError("mailbox does not exist", retryable=False)
    iid = await alert(ctx, ref)
    await drain(ctx)
    start = clock()
    while not p["im"].sent:
        clock.advance(seconds=10)
        await drain(ctx)
        assert clock() - start < timedelta(minutes=11)  # the retry budget (10 min), not the level's 30 min
    assert p["im"].sent == [(bob, iid, "escalation")]
    entries = await timeline(ctx, iid)
    [undeliverable] = [d for k, d in entries if k == "page_undeliverable"]
    assert undeliverable["person_id"] == ann and undeliverable["escalated"] and undeliverable["to_layer_idx"] == 1
    assert sorted(undeliverable["media"]) == ["email", "im", "sms"]
    assert clock() - start >= timedelta(minutes=9)  # IM kept retrying through its budget first
    from core.paging import PAGES_UNDELIVERABLE

    assert PAGES_UNDELIVERABLE._value.get() >= 1


async def test_a_batch_of_deliveries_records_each_outcome_on_its_own(world):
    ctx, clock, p = world
    (ann, bob, cat), ref = await setup(ctx, levels=[{"who": [0, 1, 2], "media": ["sms"]}])
    p["sms"].broken[bob] = DeliveryError("gateway 503", retryable=True)
    iid = await alert(ctx, ref)
    for _ in range(3):  # fan-out and first step, not the sends
        async with ctx.sessionmaker() as s:
            due = [j for j, *_ in await jobs.sweep(s, clock(), timedelta(0)) if not j.startswith("deliver:")]
        for j in due:
            await jobs.run_job(ctx, j)
    async with ctx.sessionmaker() as s:
        ids = [d.id for d in (await s.execute(select(Delivery).order_by(Delivery.id))).scalars()]
    await paging.deliver(ctx, [{"delivery_id": i} for i in ids])  # one call, as the runner batches them
    assert sorted(p["sms"].sent) == sorted([(ann, iid, "escalation"), (cat, iid, "escalation")])
    async with ctx.sessionmaker() as s:
        states = {d.member_id: (d.state, d.attempts) for d in (await s.execute(select(Delivery))).scalars()}
    assert states == {ann: ("sent", 1), bob: ("pending", 1), cat: ("sent", 1)}
    await paging.deliver(ctx, [{"delivery_id": i} for i in ids])  # a re-run sends nothing twice
    assert len(p["sms"].sent) == 2


async def test_every_medium_failing_is_recorded(world):
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0]}])
    for m in ("im", "sms", "email"):
        p[m].failures = [DeliveryError(f"{m} down", retryable=False)]
    iid = await alert(ctx, ref)
    await drain(ctx)
    kinds = [k for k, _ in await timeline(ctx, iid)]
    assert kinds.count("delivery_failed") == 3 and "page_undeliverable" in kinds


async def test_empty_level_falls_through_at_once_and_is_recorded(world):
    ctx, clock, p = world
    (_, bob, _), ref = await setup(ctx, levels=[{"targets": {"team_ids": [999]}, "wait_minutes": 30}, {"who": [1]}])
    iid = await alert(ctx, ref)
    await drain(ctx)
    assert p["im"].sent == [(bob, iid, "escalation")]
    assert "escalation_empty" in [k for k, _ in await timeline(ctx, iid)]


async def test_snooze_pauses_then_wakes_with_renotification(world):
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0]}])
    iid = await alert(ctx, ref)
    await drain(ctx)
    await act(ctx, incidents.snooze, iid, ann, minutes=30)
    await drain(ctx)
    clock.advance(minutes=29)
    await drain(ctx)
    assert len(p["im"].sent) == 1
    clock.advance(minutes=1)
    await drain(ctx)
    assert p["im"].sent[-1] == (ann, iid, "i_wake")
    kinds = [k for k, _ in await timeline(ctx, iid)]
    assert "i_wake" in kinds


async def test_no_rule_matches_is_recorded(world):
    ctx, clock, p = world
    _, ref = await setup(ctx, levels=[{"who": [0]}],
                         filters=[[{"field": "severity", "op": "equals", "values": ["Info"]}]])
    iid = await alert(ctx, ref)
    await drain(ctx)
    assert p["im"].sent == []
    assert "escalation_none" in [k for k, _ in await timeline(ctx, iid)]


async def test_killed_worker_mid_fan_out_pages_exactly_once(world):
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0]}])
    iid = await alert(ctx, ref)
    # a worker claims the fan-out (which runs the first escalation step itself) and dies
    async with ctx.sessionmaker() as s:
        [fan_out] = [j for j, *_ in await jobs.sweep(s, clock(), timedelta(0)) if j.startswith("incident_event:")]
        assert await jobs.claim(s, fan_out, clock()) is not None
    await drain(ctx)
    assert p["im"].sent == []  # the fan-out is leased by the dead worker
    clock.advance(seconds=jobs.LEASE.total_seconds() + 1)
    await drain(ctx)
    clock.advance(minutes=5)
    await drain(ctx)
    assert p["im"].sent == [(ann, iid, "escalation")]


async def test_a_fan_out_run_again_after_its_commit_pages_nobody_twice(world):
    """A worker killed after the fan-out committed but before its job was marked done: the row runs again."""
    ctx, clock, p = world
    (ann, _, _), ref = await setup(ctx, levels=[{"who": [0]}])
    iid = await alert(ctx, ref)
    async with ctx.sessionmaker() as s:
        [fan_out] = [j for j, *_ in await jobs.sweep(s, clock(), timedelta(0)) if j.startswith("incident_event:")]
        [claimed] = await jobs.claim_many(s, [fan_out], clock())
        await s.commit()
    await jobs.execute(ctx, claimed)  # committed its work ... and the worker died before marking it done
    clock.advance(seconds=jobs.LEASE.total_seconds() + 1)
    await drain(ctx)  # the lease expired: the fan-out runs again
    clock.advance(minutes=5)
    await drain(ctx)
    assert p["im"].sent == [(ann, iid, "escalation")]


async def test_killed_worker_mid_escalation_pages_exactly_once(world):
    ctx, clock, p = world
    (ann, bob, _), ref = await setup(ctx, levels=[{"who": [0], "wait_minutes": 1}, {"who": [1]}])
    iid = await alert(ctx, ref)
    await drain(ctx)
    assert p["im"].sent == [(ann, iid, "escalation")]
    clock.advance(minutes=1)
    # a worker claims the level-1 step and dies before finishing it
    async with ctx.sessionmaker() as s:
        [step] = [j for j, *_ in await jobs.sweep(s, clock(), timedelta(0)) if j.startswith("escalate:")]
        assert await jobs.claim(s, step, clock()) is not None
    await drain(ctx)
    assert p["im"].sent == [(ann, iid, "escalation")]  # the step is leased by the dead worker
    clock.advance(seconds=jobs.LEASE.total_seconds() + 1)
    await drain(ctx)
    clock.advance(minutes=5)
    await drain(ctx)
    assert p["im"].sent == [(ann, iid, "escalation"), (bob, iid, "escalation")]
