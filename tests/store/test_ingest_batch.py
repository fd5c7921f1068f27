"""ingest_batch on both databases: the plain-SQL alert rows keep their ids and their writes straight."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from core import incidents
from core.db import make_engine, make_sessionmaker
from core.ingest import IngestWriter, IntegrationRef, _Batch, ingest_batch
from core.models import Alert, Channel, Incident, Integration, Job, StoredEvent, Webhook
from core.types import AlertEvent, EventStatus

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


async def _world(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as s:
        ch = Channel(name="prod", grouping={"method": "p", "equals": [["labels.service"]]})
        s.add(ch)
        await s.flush()
        integ = Integration(name="i", type="standard", channel_id=ch.id, key="k", key_hash="h")
        s.add(integ)
        await s.commit()
        return engine, sessions, IntegrationRef(integ.id, "standard", ch.id)


def _ev(key: str, status: EventStatus = EventStatus.CRITICAL, n: int = 0) -> AlertEvent:
    return AlertEvent(status, f"{key} down", key, description=f"event {n}", labels={"service": f"svc-{n % 3}"})


async def test_every_new_alert_of_a_batch_gets_its_own_id(db_url):
    engine, sessions, ref = await _world(db_url)
    keys = [f"k{i}" for i in range(60)]
    random.Random(7).shuffle(keys)
    # A key seen twice in the batch: the second event repeats the alert the first created.
    items = [(ref, _ev(k, n=i)) for i, k in enumerate(keys)] + [(ref, _ev(keys[0], EventStatus.WARNING, n=99))]
    async with sessions() as s:
        results = await ingest_batch(s, items, T0)
        await s.commit()
    async with sessions() as s:
        by_id = {a.id: a for a in (await s.execute(select(Alert))).scalars()}
        events = (await s.execute(select(StoredEvent).order_by(StoredEvent.id))).scalars().all()
    assert len(by_id) == 60
    for (_, ev), r in zip(items, results, strict=True):
        assert by_id[r.alert_id].alert_key == ev.alert_key
    assert by_id[results[0].alert_id].event_cnt == 2 and by_id[results[0].alert_id].status == "Warning"
    assert [by_id[e.alert_id].alert_key for e in events] == [ev.alert_key for _, ev in items]
    await engine.dispose()


async def test_a_new_alert_recovered_and_raised_again_in_one_batch_is_two_alerts(db_url):
    engine, sessions, ref = await _world(db_url)
    items = [(ref, _ev("a")), (ref, _ev("b")), (ref, _ev("a", EventStatus.OK)), (ref, _ev("a", n=3))]
    async with sessions() as s:
        results = await ingest_batch(s, items, T0)
        await s.commit()
    assert [r.outcome for r in results] == ["new_alert", "new_alert", "recovered", "new_alert"]
    async with sessions() as s:
        rows = {a.id: a for a in (await s.execute(select(Alert))).scalars()}
    first, again = rows[results[0].alert_id], rows[results[3].alert_id]
    assert first.id != again.id and first.alert_key == again.alert_key == "a"
    assert (first.progress, first.status, first.event_cnt) == ("Closed", "Ok", 2)
    assert (again.progress, again.status, again.event_cnt) == ("Triggered", "Critical", 1)
    assert rows[results[1].alert_id].alert_key == "b"
    await engine.dispose()


async def test_repeats_of_known_alerts_update_them_in_place(db_url):
    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:
        await ingest_batch(s, [(ref, _ev(k)) for k in ("a", "b")], T0)
        await s.commit()
    async with sessions() as s:
        later = T0.replace(minute=5)
        results = await ingest_batch(s, [(ref, _ev("a", EventStatus.WARNING, n=4)), (ref, _ev("b", EventStatus.OK)),
                                         (ref, _ev("a", EventStatus.INFO, n=5))], later)
        await s.commit()
    assert [r.outcome for r in results] == ["updated", "recovered", "updated"]
    async with sessions() as s:
        rows = {a.alert_key: a for a in (await s.execute(select(Alert))).scalars()}
        assert await s.scalar(select(func.count()).select_from(Alert)) == 2
    a, b = rows["a"], rows["b"]
    assert (a.event_cnt, a.status, a.severity, a.description, a.updated_at) == (3, "Info", "Critical", "event 5", later)
    assert a.labels == {"service": "svc-2"} and a.last_time == later  # JSON and times survive the write
    assert (b.progress, b.status, b.end_time) == ("Closed", "Ok", later)
    async with sessions() as s:
        [incident] = (await s.execute(select(Incident))).scalars().all()
        events = (await s.execute(select(StoredEvent).order_by(StoredEvent.id))).scalars().all()
    assert (incident.alert_event_cnt, incident.last_time) == (5, later)
    assert [(e.event_status, e.labels, e.received_at) for e in events[2:]] == [
        ("Warning", {"service": "svc-1"}, later), ("Ok", {"service": "svc-0"}, later), ("Info", {"service": "svc-2"}, later)]
    await engine.dispose()


async def test_last_event_at_is_rewritten_at_most_once_a_second_for_a_steady_stream(db_url):
    engine, sessions, ref = await _world(db_url)
    marked: dict = {}

    async def push(at):
        async with sessions() as s:
            await ingest_batch(s, [(ref, _ev("a"))], at, marked=marked)
            await s.commit()
        async with sessions() as s:
            return (await s.get(Integration, ref.id)).last_event_at

    assert await push(T0) == T0
    assert await push(T0 + timedelta(milliseconds=400)) == T0  # within the second: not rewritten
    assert await push(T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=1)
    async with sessions() as s:  # without `marked` (a one-off caller) every batch writes it
        await ingest_batch(s, [(ref, _ev("a"))], T0 + timedelta(seconds=1, milliseconds=10))
        await s.commit()
    async with sessions() as s:
        assert (await s.get(Integration, ref.id)).last_event_at == T0 + timedelta(seconds=1, milliseconds=10)
    await engine.dispose()


async def test_two_processes_ingesting_one_channel_on_postgresql_never_duplicate_an_alert(db_url):
    """Web processes share a PostgreSQL database: the channel's ingest lock serialises their batches."""
    if not db_url.startswith("postgresql"):
        pytest.skip("one SQLite database has one writing process")
    engine, sessions, ref = await _world(db_url)
    other = make_engine(db_url)
    writers = [IngestWriter(sessions), IngestWriter(make_sessionmaker(other))]
    for w in writers:
        w.start()
    try:
        # Both processes see the same 40 new keys at once, in opposite orders.
        keys = [f"k{i}" for i in range(40)]
        await asyncio.gather(*[w.submit(ref, [_ev(k, n=i) for i, k in enumerate(order)])
                               for w, order in zip(writers, (keys, keys[::-1]), strict=True)
                               for _ in range(3)])
    finally:
        for w in writers:
            await w.stop()
    async with sessions() as s:
        alerts = (await s.execute(select(Alert))).scalars().all()
        opened = (await s.execute(select(Incident))).scalars().all()
    assert sorted(a.alert_key for a in alerts) == sorted(keys)
    assert all(a.event_cnt == 6 for a in alerts)
    assert sorted(i.group_key for i in opened) == sorted({i.group_key for i in opened})  # one per group
    assert sum(i.alert_event_cnt for i in opened) == 240
    await other.dispose()
    await engine.dispose()


async def test_the_writer_replaces_its_connection_when_the_database_dropped_it(db_url):
    """The writer keeps one connection; after a database restart the next batch still commits."""
    if not db_url.startswith("postgresql"):
        pytest.skip("an SQLite connection is a file handle: nothing drops it")
    engine, sessions, ref = await _world(db_url)
    writer = IngestWriter(sessions)
    writer.start()
    try:
        [first] = await writer.submit(ref, [_ev("a")])
        async with engine.connect() as admin:  # what a restart does to every open connection
            await admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        [second] = await writer.submit(ref, [_ev("a", n=1)])
    finally:
        await writer.stop()
    assert (first.outcome, second.outcome) == ("new_alert", "updated")
    async with sessions() as s:
        assert (await s.execute(select(Alert.event_cnt))).scalar_one() == 2
    await engine.dispose()


async def test_many_small_batches_queued_at_once_apply_in_arrival_order(db_url):
    """Many small batches queued at once apply in the order their requests arrived."""
    engine, sessions, ref = await _world(db_url)
    writer = IngestWriter(sessions, max_batch=3)  # small batches: many of them queued
    writer.start()
    try:
        # a raised, a recovered, a raised again...: any reordering leaves an alert open or ignores one.
        statuses = [EventStatus.CRITICAL if i % 2 == 0 else EventStatus.OK for i in range(60)]
        results = await asyncio.gather(*[writer.submit(ref, [_ev("a", s, n=i)]) for i, s in enumerate(statuses)])
    finally:
        await writer.stop()
    assert [r.outcome for [r] in results] == ["new_alert", "recovered"] * 30
    async with sessions() as s:
        alerts = (await s.execute(select(Alert))).scalars().all()
    assert len(alerts) == 30 and {a.progress for a in alerts} == {"Closed"}
    await engine.dispose()


async def test_a_close_racing_an_ingest_batch_leaves_its_alerts_closed(db_url, monkeypatch):
    """A close committed between a batch's read of an alert and its write must not be undone by it."""
    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:
        [first] = await ingest_batch(s, [(ref, _ev("a"))], T0)
        await s.commit()
    read, go_on = asyncio.Event(), asyncio.Event()
    prefetch = _Batch.prefetch_alerts

    async def prefetch_then_pause(self, keys):
        await prefetch(self, keys)
        read.set()
        await go_on.wait()

    monkeypatch.setattr(_Batch, "prefetch_alerts", prefetch_then_pause)

    async def repeat() -> None:
        async with sessions() as s:
            await ingest_batch(s, [(ref, _ev("a", EventStatus.WARNING, n=1))], T0 + timedelta(minutes=1))
            await s.commit()

    async def close() -> None:
        async with sessions() as s:
            await incidents.close(s, first.incident_id, None, now=T0 + timedelta(minutes=2))
            await s.commit()

    batch = asyncio.create_task(repeat())
    await read.wait()  # the batch holds alert "a" as Triggered, not yet written back
    closing = asyncio.create_task(close())
    await asyncio.sleep(0.3)
    assert not closing.done(), "the close waits for the batch under way"
    go_on.set()
    await asyncio.gather(batch, closing)
    async with sessions() as s:
        alert = (await s.execute(select(Alert))).scalar_one()
    assert (alert.progress, alert.event_cnt) == ("Closed", 2)
    await engine.dispose()


async def test_alert_webhooks_hear_a_batch_whose_first_channel_is_gone(db_url):
    """Whether alert webhooks exist rides on a channel's row: a deleted channel must not answer "no"."""
    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:
        s.add(Webhook(name="alerts", kind="alert", url="http://127.0.0.1:9/x"))
        await s.commit()
    gone = IntegrationRef(ref.id, "standard", 0)  # routes to a channel id below every real one
    async with sessions() as s:
        results = await ingest_batch(s, [(gone, _ev("x")), (ref, _ev("a"))], T0)
        await s.commit()
    assert [r.outcome for r in results] == ["unrouted", "new_alert"]
    async with sessions() as s:
        jobs = (await s.execute(select(Job).where(Job.name == "alert_webhooks"))).scalars().all()
    assert [item[1] for job in jobs for item in job.args["items"]] == ["a_new", "a_merge"]
    await engine.dispose()


async def test_another_integrations_event_commits_while_a_big_request_is_still_being_applied(db_url):
    """A big request is applied in slices: an event of another integration does not wait for all of it."""
    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:
        other = Integration(name="j", type="standard", channel_id=ref.channel_id, key="k2", key_hash="h2")
        s.add(other)
        await s.commit()
        small_ref = IntegrationRef(other.id, "standard", ref.channel_id)
    writer = IngestWriter(sessions, share=100)
    writer.start()
    try:
        big = asyncio.create_task(writer.submit(ref, [_ev(f"storm-{i}", n=i) for i in range(300)]))
        await asyncio.sleep(0)  # the big request is queued first
        [small] = await writer.submit(small_ref, [_ev("page-me")])
        assert not big.done()  # 200 of its events are still to be applied
        async with sessions() as s:
            assert (await s.get(Alert, small.alert_id)).alert_key == "page-me"
        results = await big
    finally:
        await writer.stop()
    assert [r.alert_key for r in results] == [f"storm-{i}" for i in range(300)]
    assert {r.outcome for r in results} == {"new_alert"}
    async with sessions() as s:
        assert (await s.execute(select(func.count()).select_from(Alert))).scalar_one() == 301
    await engine.dispose()
