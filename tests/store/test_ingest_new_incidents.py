"""New incidents of an ingest batch, opened as plain rows in a few multi-row statements, on both databases.

Their ids and nums, their `i_new` entries and fan-out jobs, and everything later events of the same batch
may do to them (join, raise the severity, cross a storm threshold, recover and auto-close).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core import events, jobs, paging
from core.db import make_engine, make_sessionmaker
from core.ingest import INCIDENTS_OPENED, IntegrationRef, ingest_batch
from core.models import Alert, Channel, EscalationRule, Incident, Integration, Job, Member, TimelineEntry
from core.types import AlertEvent, EventStatus, urgency_of
from tests.kit import until

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


async def _world(db_url, **channel):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as s:
        ch = Channel(name="prod", grouping={"method": "p", "equals": [["labels.service"]]}, **channel)
        s.add(ch)
        await s.flush()
        integ = Integration(name="i", type="standard", channel_id=ch.id, key_hash="h")
        s.add(integ)
        await s.commit()
        return engine, sessions, IntegrationRef(integ.id, "standard", ch.id)


def _ev(key: str, service: str, status: EventStatus = EventStatus.CRITICAL) -> AlertEvent:
    return AlertEvent(status, f"{key} down", key, labels={"service": service})


async def _rows(sessions):
    async with sessions() as s:
        incidents = {i.id: i for i in (await s.execute(select(Incident))).scalars()}
        alerts = {a.id: a for a in (await s.execute(select(Alert))).scalars()}
        entries = (await s.execute(select(TimelineEntry).order_by(TimelineEntry.id))).scalars().all()
        job_rows = {j.id: j for j in (await s.execute(select(Job))).scalars()}
    return incidents, alerts, entries, job_rows


async def test_a_batch_of_new_incidents_gets_ids_nums_entries_and_woken_fan_out_jobs(db_url):
    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:  # an incident from an earlier batch, joined by this one
        [earlier] = await ingest_batch(s, [(ref, _ev("old", "svc-x"))], T0)
        await s.commit()
    opened = INCIDENTS_OPENED._value.get()
    # 30 new groups, one alert joining the earlier incident, and repeats in between.
    items = [(ref, _ev(f"k{i}", f"svc-{i}")) for i in range(30)]
    items.insert(7, (ref, _ev("joins-old", "svc-x")))
    items.insert(12, (ref, _ev("k3", "svc-3", EventStatus.WARNING)))
    async with sessions() as s:
        results = await ingest_batch(s, items, T0)
        wakes = list(s.info.get("vigil_jobs", []))
        await s.commit()
    assert INCIDENTS_OPENED._value.get() - opened == 30
    incidents, alerts, entries, job_rows = await _rows(sessions)
    assert len(incidents) == 31
    for (_, ev), r in zip(items, results, strict=True):
        alert, incident = alerts[r.alert_id], incidents[r.incident_id]
        assert alert.alert_key == ev.alert_key and alert.incident_id == incident.id
        if ev.alert_key == "joins-old":
            assert r.incident_id == earlier.incident_id and incident.alert_cnt == 2
        else:
            assert incident.dedup_key == ev.alert_key and incident.labels == {"service": ev.labels["service"]}
    new = [i for i in incidents.values() if i.id != earlier.incident_id]
    assert all(i.num == str(i.id) for i in incidents.values())
    assert all((i.progress, i.alert_cnt, i.active_alert_cnt, i.storm_level) == ("Triggered", 1, 1, 0) for i in new)
    assert all(i.escalation_state == "none" and i.responders == [] and i.created_at == T0 for i in new)
    by_key = {i.dedup_key: i for i in new}
    assert (by_key["k3"].alert_event_cnt, by_key["k0"].alert_event_cnt) == (2, 1)
    assert [i.id for i in sorted(new, key=lambda i: int(i.dedup_key[1:]))] == sorted(i.id for i in new)
    # One i_new entry per incident, in opening order, and one pending fan-out job per entry, woken on commit.
    fresh = [e for e in entries if e.incident_id != earlier.incident_id]
    assert [(e.kind, e.source, e.at, e.detail) for e in fresh] == [
        ("i_new", "system", T0, {"alert_key": f"k{i}"}) for i in range(30)]
    assert [e.incident_id for e in fresh] == [by_key[f"k{i}"].id for i in range(30)]
    for e in fresh:
        job = job_rows[f"{events.DISPATCH_JOB}:{e.id}"]
        assert (job.name, job.state, job.attempts, job.due_at) == (events.DISPATCH_JOB, "pending", 0, T0)
        assert job.args == {"incident_id": e.incident_id, "kind": "i_new", "entry_id": e.id}
        # In a storm, a Critical incident's fan-out runs before a Warning one's (issue 10 point 5).
        assert job.urgency == urgency_of(incidents[e.incident_id].severity)
    assert [w for w in wakes if w.id.startswith(events.DISPATCH_JOB)] == [
        jobs.Wake(f"{events.DISPATCH_JOB}:{e.id}", T0, 0, urgency_of(incidents[e.incident_id].severity))
        for e in fresh]
    await engine.dispose()


async def test_later_events_of_the_batch_join_and_raise_incidents_it_opened(db_url):
    engine, sessions, ref = await _world(db_url)
    items = [(ref, _ev(f"k{i}", f"svc-{i % 3}", EventStatus.INFO if i < 3 else EventStatus.WARNING))
             for i in range(9)]
    items.append((ref, _ev("k4", "svc-1", EventStatus.CRITICAL)))  # a repeat raises its incident
    async with sessions() as s:
        results = await ingest_batch(s, items, T0)
        await s.commit()
    assert [r.outcome for r in results] == ["new_alert"] * 9 + ["updated"]
    incidents, alerts, entries, _ = await _rows(sessions)
    assert len(incidents) == 3 and [e.kind for e in entries] == ["i_new"] * 3
    first = {r.incident_id for r in results[:3]}
    assert len(first) == 3 and {r.incident_id for r in results} == first
    for r, (_, ev) in zip(results, items, strict=True):
        assert incidents[r.incident_id].group_key == incidents[results[int(ev.alert_key[1:]) % 3].incident_id].group_key
        assert alerts[r.alert_id].incident_id == r.incident_id
    by_dedup = {i.dedup_key: i for i in incidents.values()}
    assert {k: (i.alert_cnt, i.active_alert_cnt, i.alert_event_cnt, i.severity, i.status)
            for k, i in by_dedup.items()} == {
        "k0": (3, 3, 3, "Warning", "Warning"), "k1": (3, 3, 4, "Critical", "Critical"),
        "k2": (3, 3, 3, "Warning", "Warning")}
    await engine.dispose()


async def test_an_incident_opened_and_recovered_in_one_batch_closes(db_url):
    engine, sessions, ref = await _world(db_url)
    items = [(ref, _ev("a", "svc-0")), (ref, _ev("b", "svc-1")), (ref, _ev("c", "svc-2")),
             (ref, _ev("c2", "svc-2")),  # joins c's incident
             (ref, _ev("a", "svc-0", EventStatus.OK)),  # a's incident: every alert recovered, auto-closed
             (ref, _ev("c", "svc-2", EventStatus.OK)),  # c's incident keeps c2
             (ref, _ev("a2", "svc-0")),  # a's group again: its incident is closed, so a new one
             (ref, _ev("d", "svc-3"))]
    async with sessions() as s:
        results = await ingest_batch(s, items, T0)
        await s.commit()
    assert [r.outcome for r in results] == ["new_alert"] * 4 + ["recovered"] * 2 + ["new_alert"] * 2
    incidents, alerts, entries, job_rows = await _rows(sessions)
    a, b, c, c2, a_ok, c_ok, a2, d = results
    assert (a_ok.incident_id, c_ok.incident_id, c2.incident_id) == (a.incident_id, c.incident_id, c.incident_id)
    assert len({a.incident_id, b.incident_id, c.incident_id, a2.incident_id, d.incident_id}) == 5 == len(incidents)
    ia, ic = incidents[a.incident_id], incidents[c.incident_id]
    assert (ia.progress, ia.status, ia.active_alert_cnt, ia.alert_event_cnt, ia.end_time) == ("Closed", "Ok", 0, 2, T0)
    assert (ic.progress, ic.status, ic.alert_cnt, ic.active_alert_cnt, ic.alert_event_cnt) == (
        "Triggered", "Critical", 2, 1, 3)
    assert all(i.num == str(i.id) for i in incidents.values())
    assert alerts[a.alert_id].progress == "Closed" and alerts[a2.alert_id].incident_id == a2.incident_id
    assert all(alerts[r.alert_id].incident_id == r.incident_id for r in results)
    timeline = {}
    for e in entries:
        timeline.setdefault(e.incident_id, []).append(e.kind)
    assert timeline == {a.incident_id: ["i_new", "i_rslv"], b.incident_id: ["i_new"], c.incident_id: ["i_new"],
                        a2.incident_id: ["i_new"], d.incident_id: ["i_new"]}
    assert sorted(job_rows) == sorted(f"{events.DISPATCH_JOB}:{e.id}" for e in entries)
    await engine.dispose()


async def test_a_storm_crossed_inside_the_batch_that_opened_the_incident(db_url):
    engine, sessions, ref = await _world(db_url, storm_thresholds=[3])
    items = [(ref, _ev(f"k{i}", "svc-0")) for i in range(5)] + [(ref, _ev("other", "svc-1"))]
    async with sessions() as s:
        results = await ingest_batch(s, items, T0)
        await s.commit()
    incidents, alerts, entries, _ = await _rows(sessions)
    storm = incidents[results[0].incident_id]
    assert {r.incident_id for r in results[:5]} == {storm.id} and results[5].incident_id != storm.id
    assert (storm.alert_cnt, storm.active_alert_cnt, storm.storm_level, storm.alert_event_cnt) == (5, 5, 3, 5)
    assert [(e.incident_id, e.kind, e.detail) for e in entries] == [
        (storm.id, "i_new", {"alert_key": "k0"}), (storm.id, "i_storm", {"threshold": 3, "alert_cnt": 3}),
        (results[5].incident_id, "i_new", {"alert_key": "other"})]
    assert all(a.incident_id == storm.id for a in alerts.values() if a.alert_key != "other")
    await engine.dispose()


async def test_emit_many_returns_entry_ids_in_order_and_fans_out_domain_events_only(db_url):
    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:
        results = await ingest_batch(s, [(ref, _ev(f"k{i}", f"svc-{i}")) for i in range(3)], T0)
        await s.commit()
    ids = [r.incident_id for r in results]
    async with sessions() as s:
        noted = await events.emit_many(s, "escalation_none", ids[::-1], now=T0,
                                       details=[{"n": n} for n in range(3)])
        commented = await events.emit_many(s, events.I_COMM, [ids[1], ids[1]], now=T0, actor_id=7, source="api")
        wakes = s.info.get("vigil_jobs", [])
        await s.commit()
        assert await events.emit_many(s, events.I_COMM, [], now=T0) == []
    _, _, entries, job_rows = await _rows(sessions)
    by_id = {e.id: e for e in entries}
    assert [(by_id[e].incident_id, by_id[e].kind, by_id[e].detail) for e in noted] == [
        (ids[2], "escalation_none", {"n": 0}), (ids[1], "escalation_none", {"n": 1}),
        (ids[0], "escalation_none", {"n": 2})]
    assert [(by_id[e].incident_id, by_id[e].actor_id, by_id[e].source, by_id[e].detail) for e in commented] == [
        (ids[1], 7, "api", {})] * 2
    assert not any(j.endswith(f":{e}") for e in noted for j in job_rows)
    assert [w.id for w in wakes] == [f"{events.DISPATCH_JOB}:{e}" for e in commented]
    assert [job_rows[w.id].args for w in wakes] == [
        {"incident_id": ids[1], "kind": "i_comm", "entry_id": e} for e in commented]
    await engine.dispose()


class _Im:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int, str]] = []

    async def __call__(self, recipient, page) -> str:
        self.sent.append((recipient.member_id, page.incident_id, page.event_type))
        return f"im-{len(self.sent)}"


@pytest.fixture
async def paging_only():
    saved = list(events._SUBSCRIBERS)
    events._SUBSCRIBERS.clear()
    paging.register()
    yield
    events._SUBSCRIBERS[:] = saved


async def test_the_fan_out_jobs_of_a_batch_are_woken_and_page(db_url, paging_only):
    """No sweep runs here: only the wake-ups the batch registered can start the fan-out, and it pages."""
    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:
        ann = Member(name="ann", email="ann@x.io", phone="+15550001", preferences={"Critical": ["im"]})
        s.add(ann)
        await s.flush()
        s.add(EscalationRule(channel_id=ref.channel_id, name="r",
                             definition={"levels": [{"targets": {"member_ids": [ann.id]}}]}))
        await s.commit()
    im = _Im()
    ctx = jobs.JobContext(sessions, services={"senders": {"im": im}, "base_url": "http://v"})
    runner = jobs.InProcessRunner(ctx, sweep_interval=3600)
    detach = jobs.attach_runner(sessions, runner)
    await runner.start()
    try:
        await asyncio.sleep(0.1)  # the runner's first sweep, before anything is due
        async with sessions() as s:
            results = await ingest_batch(s, [(ref, _ev(f"k{i}", f"svc-{i // 2}")) for i in range(6)],
                                         datetime.now(UTC))
            await s.commit()
        await until(lambda: len(im.sent) >= 3, timeout=20)
        await asyncio.sleep(0.2)
    finally:
        await runner.stop()
        detach()
    assert sorted(im.sent) == sorted((ann.id, r.incident_id, "escalation") for r in results[::2])
    await engine.dispose()


async def test_a_new_incident_and_alert_are_stored_as_the_orm_stores_them(db_url):
    """The rows ingest writes itself (driver tuples on SQLite, arrays on PostgreSQL) hold the very values
    an ORM insert of the same incident holds: times, JSON (None as JSON null), booleans, defaults."""
    from sqlalchemy import text

    engine, sessions, ref = await _world(db_url)
    async with sessions() as s:
        [r] = await ingest_batch(s, [(ref, _ev("a", "svc-0"))], T0)
        await s.commit()
    async with sessions() as s:
        mine = await s.get(Incident, r.incident_id)
        orm = Incident(**{c.key: getattr(mine, c.key) for c in Incident.__table__.columns if c.key not in ("id", "num")})
        s.add(orm)
        await s.flush()
        orm.num = str(orm.id)
        await s.commit()
        columns = [c.key for c in Incident.__table__.columns if c.key not in ("id", "num")]
        rows = (await s.execute(text(f"SELECT id, num, {', '.join(f'CAST({c} AS TEXT)' for c in columns)} "
                                     "FROM incident ORDER BY id"))).all()
    assert [row[1] for row in rows] == [str(row[0]) for row in rows]
    assert dict(zip(columns, rows[0][2:], strict=True)) == dict(zip(columns, rows[1][2:], strict=True))
    async with sessions() as s:  # the same for its alert
        mine = await s.get(Alert, r.alert_id)
        s.add(Alert(**{c.key: getattr(mine, c.key) for c in Alert.__table__.columns if c.key != "id"}))
        await s.commit()
        columns = [c.key for c in Alert.__table__.columns if c.key != "id"]
        rows = (await s.execute(text(f"SELECT {', '.join(f'CAST({c} AS TEXT)' for c in columns)} "
                                     "FROM alert ORDER BY id"))).all()
    assert dict(zip(columns, rows[0], strict=True)) == dict(zip(columns, rows[1], strict=True))
    await engine.dispose()
