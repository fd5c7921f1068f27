"""Alert events in, alerts and incidents out: routing, dedup, grouping, recovery, auto-close.

`ingest_batch` applies a batch of normalised events in one transaction. `IngestWriter`
batches concurrent HTTP requests into shared transactions (group commit): every request
waits for the commits that hold its events, so a 200 always means "on disk", yet one
fsync serves many requests; integrations take turns, so one big push cannot hold the others up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from core import enrichment_store, events, incidents, jobs, noise, unrouted
from core import ingest_sql as sql
from core.clock import utcnow
from core.conditions import compile_tree, subject
from core.grouping import GroupingRule, GroupSubject, group_key, parse_rule, window_open
from core.ingest_queue import FairQueue, Slice
from core.models import (
    Alert,
    Channel,
    DropRule,
    FlapState,
    Incident,
    InhibitRule,
    SilenceRule,
)
from core.models.base import UTCDateTime
from core.types import AlertEvent, EventStatus, Progress, Severity, urgency_of
from core.unrouted import UNROUTED, Unrouted

log = logging.getLogger("vigil.ingest")
INCIDENTS_OPENED = Counter("vigil_incidents_opened_total", "Incidents opened by ingest")
OUTCOME_MUTED = Counter("vigil_alerts_muted_total", "New alerts stored without paging", ["reason"])


@dataclass(frozen=True)
class IntegrationRef:
    """What ingest needs to know of an integration (cached by the HTTP layer)."""

    id: int
    type: str
    channel_id: int | None
    routing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    alert_key: str
    outcome: str  # new_alert | updated | recovered | ignored | unrouted
    alert_id: int | None = None
    incident_id: int | None = None
    channel_id: int | None = None
    unrouted: Unrouted | None = None  # why no channel took it (outcome "unrouted")


def route(integration: IntegrationRef, event: AlertEvent) -> int | None:
    """The channel an event goes to: the dedicated channel, else the first matching routing case."""
    if integration.channel_id is not None:
        return integration.channel_id
    routing = integration.routing or {}
    subj = subject(
        title=event.title, description=event.description,
        severity=event.event_status.value, labels=event.labels, integration_id=integration.id,
    )
    for case in routing.get("cases", []):
        if compile_tree(case.get("if", [])).matches(subj):
            return case.get("channel_id")
    return routing.get("default_channel_id")


def _max_severity(a: str, b: str) -> str:
    return a if Severity(a).rank >= Severity(b).rank else b


@dataclass
class _ChannelNoise:
    drops: list[tuple[int, list[Any]]]
    silences: list[noise.SilenceView]
    inhibits: list[noise.InhibitView]
    flapping: noise.Flapping


_Rules = tuple[list[tuple[int, list[Any]]], list[noise.SilenceView], list[noise.InhibitView]]
# (channel id, rules_token) -> the channel's enabled rules. The token changes with every rule edit, in
# whichever process makes it, so an entry is never stale; it only saves three queries per batch.
_RULES_CACHE: dict[tuple[int, str], _Rules] = {}
_RULES_CACHE_SIZE = 1024


async def _channel_rules(session: AsyncSession, channel: Channel) -> _Rules:
    key = (channel.id, channel.rules_token)
    if channel.rules_token and key in _RULES_CACHE:
        return _RULES_CACHE[key]
    q = session.execute
    drops = (await q(select(DropRule).where(DropRule.channel_id == channel.id, DropRule.status == "enabled")
                     .order_by(DropRule.priority, DropRule.id))).scalars().all()
    silences = (await q(select(SilenceRule).where(SilenceRule.channel_id == channel.id,
                                                  SilenceRule.status == "enabled"))).scalars().all()
    inhibits = (await q(select(InhibitRule).where(InhibitRule.channel_id == channel.id,
                                                  InhibitRule.status == "enabled"))).scalars().all()
    rules = ([(r.id, r.filters) for r in drops],
             [noise.SilenceView(r.id, r.filters, r.starts_at, r.ends_at, r.time_windows) for r in silences],
             [noise.InhibitView(r.id, r.source_filters, r.target_filters, r.equals, r.window_minutes)
              for r in inhibits])
    if len(_RULES_CACHE) >= _RULES_CACHE_SIZE:
        _RULES_CACHE.clear()
    _RULES_CACHE[key] = rules
    return rules


@dataclass(slots=True, eq=False)
class _AlertRow:
    """An alert as ingest handles it: a plain row, read and written with SQL rather than the ORM.

    Most events repeat an alert already open (dedup), and every alert is born in ingest. Loading,
    tracking and flushing an ORM object for each cost more than everything else an event does, so
    alerts that exist are loaded with only the columns an event may change and written back together
    (_write_rows), and the batch's new alerts are inserted in one multi-row INSERT.
    """

    id: int | None
    incident_id: int | None
    title: str
    description: str
    severity: str
    status: str
    progress: str
    labels: dict[str, str]
    event_cnt: int
    last_time: datetime | None
    end_time: datetime | None
    close_time: datetime | None
    updated_at: datetime | None
    # Loaded alerts leave these at their defaults: only an INSERT writes them.
    channel_id: int = 0
    integration_id: int = 0
    alert_key: str = ""
    title_rule: str = ""
    muted_by: str = ""
    images: list[dict[str, str]] = field(default_factory=list)
    start_time: datetime | None = None
    created_at: datetime | None = None
    # The incident this batch opens for the alert, until the batch has inserted it (incident_id is None).
    new_incident: _NewIncident | None = None


_ALERT_INSERT_COLUMNS = tuple(f for f in _AlertRow.__slots__  # type: ignore[attr-defined]
                              if f not in ("id", "new_incident"))
assert _AlertRow.__slots__[:len(sql.LOADED_COLUMNS)] == sql.LOADED_COLUMNS  # type: ignore[attr-defined]
_INSERT_ALERTS_SQLITE = sql.sqlite_insert("alert", ("id", *_ALERT_INSERT_COLUMNS))


@dataclass(slots=True, eq=False)
class _NewIncident:
    """An incident this batch opens: a plain row, until the batch inserts all of its new incidents at once.

    An ORM object, its flush, a second write for `num` and a timeline entry and fan-out job of its own
    cost ~2 ms a new incident; as rows, a batch's new incidents, their `i_new` entries and fan-out jobs
    take a few multi-row statements. Later alerts of the batch may join the row or raise its severity;
    where the ORM path needs the incident (a storm entry, a recovery), the batch inserts its pending
    rows there and then and loads them (`_Batch.insert_new_incidents`).
    """

    channel_id: int
    title: str
    description: str
    severity: str
    status: str
    labels: dict[str, str]
    dedup_key: str
    group_key: str
    group_method: str
    alert_cnt: int
    active_alert_cnt: int
    alert_event_cnt: int
    start_time: datetime
    last_time: datetime
    created_at: datetime
    updated_at: datetime
    id: int | None = None
    alerts: list[_AlertRow] = field(default_factory=list)  # those whose incident_id it will set
    # What the join test reads; a row stays so while pending (the ORM path takes over before either changes).
    progress: str = Progress.TRIGGERED.value
    storm_level: int = 0


assert _NewIncident.__slots__[:len(sql.NEW_INCIDENT_COLUMNS)] == sql.NEW_INCIDENT_COLUMNS  # type: ignore[attr-defined]


def _subject_of(alert: Alert) -> dict[str, Any]:
    return subject(title=alert.title, description=alert.description, severity=alert.severity, status=alert.status,
                   labels=alert.labels, integration_id=alert.integration_id, channel_id=alert.channel_id)


class _Batch:
    """Per-transaction caches so a batch of N events costs far fewer than N round trips."""

    def __init__(self, session: AsyncSession, conn: AsyncConnection, now: datetime) -> None:
        self.session, self.conn, self.now = session, conn, now
        self.pg = session.bind.dialect.name == "postgresql"
        self.channels: dict[int, Channel | None] = {}
        self.alert_webhooks: bool | None = None  # whether alert webhooks exist (told by load_channels)
        self.alerts: dict[tuple[int, str], _AlertRow | None] = {}
        self.incidents: dict[int, Incident] = {}
        self.open_by_group: dict[tuple[int, str], Incident | _NewIncident | None] = {}
        self.new_incidents: list[_NewIncident] = []  # opened by this batch, not inserted yet
        self.stored: list[tuple[_AlertRow, dict[str, Any]]] = []
        self.rules: dict[int, _ChannelNoise] = {}
        self.groupings: dict[int, GroupingRule] = {}  # channel id -> its parsed grouping rule
        self.active: dict[int, list[noise.ActiveAlert]] = {}
        self.flaps: dict[tuple[int, str], FlapState] = {}
        self.result_alerts: list[_AlertRow | None] = []
        self.new_alerts: list[_AlertRow] = []
        # Incident id -> events this batch added to it: one UPDATE for all of them at the end.
        self.incident_events: dict[int, int] = {}
        # Severity of the incidents of alerts that only repeat, read without loading the incident.
        self.severities: dict[int, str] = {}

    async def channel(self, channel_id: int) -> Channel | None:
        if channel_id not in self.channels:
            self.channels[channel_id] = await self.session.get(Channel, channel_id)
        return self.channels[channel_id]

    async def load_channels(self, channel_ids: list[int]) -> None:
        """Load the batch's channels (see ingest_sql.CHANNEL for what else the statement does).

        On PostgreSQL, loading a channel takes its ingest lock, which serialises ingest per channel
        across processes; taking the locks in id order keeps two processes from waiting on each
        other in a cycle.
        """
        for cid in channel_ids:
            ask = self.alert_webhooks is None  # until a channel row has carried the answer
            row = (await self.session.execute(sql.CHANNEL[self.pg, ask], {"cid": cid})).first()
            self.channels[cid] = row[0] if row is not None else None
            if ask and row is not None:
                self.alert_webhooks = bool(row[-1])

    def grouping(self, channel: Channel) -> GroupingRule:
        """The channel's grouping rule, validated once a batch rather than twice a new alert."""
        rule = self.groupings.get(channel.id)
        if rule is None:
            rule = self.groupings[channel.id] = parse_rule(channel.grouping)
        return rule

    async def noise_rules(self, channel: Channel) -> _ChannelNoise:
        if channel.id not in self.rules:
            drops, silences, inhibits = await _channel_rules(self.session, channel)
            self.rules[channel.id] = _ChannelNoise(drops, silences, inhibits,
                                                   flapping=noise.Flapping.model_validate(channel.flapping or {}))
        return self.rules[channel.id]

    async def active_alerts(self, channel_id: int, horizon: int) -> list[noise.ActiveAlert]:
        """Unacknowledged, unrecovered, unmuted alerts of the channel seen in the last `horizon` minutes."""
        if channel_id not in self.active:
            since = self.now - timedelta(minutes=horizon)
            rows = await self.session.execute(
                select(Alert).join(Incident, Incident.id == Alert.incident_id).where(
                    Alert.channel_id == channel_id, Alert.progress == Progress.TRIGGERED.value, Alert.muted_by == "",
                    Alert.last_time >= since, Incident.progress == Progress.TRIGGERED.value))
            self.active[channel_id] = [noise.ActiveAlert(_subject_of(a), a.last_time) for a in rows.scalars()]
        return self.active[channel_id]

    async def flap_state(self, channel_id: int, alert_key: str) -> FlapState:
        key = (channel_id, alert_key)
        if key not in self.flaps:
            row = (await self.session.execute(select(FlapState).where(
                FlapState.channel_id == channel_id, FlapState.alert_key == alert_key))).scalar_one_or_none()
            if row is None:
                row = FlapState(channel_id=channel_id, alert_key=alert_key, changes=[])
                self.session.add(row)
            self.flaps[key] = row
        return self.flaps[key]

    async def prefetch_alerts(self, keys: set[tuple[int, str]]) -> None:
        for k in keys:
            self.alerts.setdefault(k, None)
        by_channel: dict[int, list[str]] = {}
        for cid, key in keys:
            by_channel.setdefault(cid, []).append(key)
        for cid, akeys in by_channel.items():
            for i in range(0, len(akeys), 500):
                rows = await self.conn.execute(sql.LOAD_ALERTS[self.pg], {"cid": cid, "keys": akeys[i:i + 500]})
                for severity, key, *values in rows:
                    alert = self.alerts[(cid, key)] = _AlertRow(*values, channel_id=cid, alert_key=key)
                    if alert.incident_id is not None and severity is not None:
                        self.severities[alert.incident_id] = severity

    async def prefetch_incidents(self, keys: set[tuple[int, str]]) -> None:
        """One query for the open incidents of every group this batch may add alerts to."""
        for k in keys:
            self.open_by_group.setdefault(k, None)
        by_channel: dict[int, list[str]] = {}
        for cid, key in keys:
            by_channel.setdefault(cid, []).append(key)
        for cid, gkeys in by_channel.items():
            for i in range(0, len(gkeys), 500):
                rows = await self.session.execute(sql.OPEN_INCIDENTS[self.pg], {"cid": cid, "keys": gkeys[i:i + 500]})
                for incident in rows.scalars():  # ascending: the newest open incident of a group wins
                    self.open_by_group[(cid, incident.group_key)] = incident
                    self.incidents[incident.id] = incident

    async def prefetch_incident_ids(self, ids: set[int]) -> None:
        missing = sorted(ids - self.incidents.keys())
        for i in range(0, len(missing), 500):
            rows = await self.session.execute(sql.INCIDENTS_BY_ID[self.pg], {"ids": missing[i:i + 500]})
            for incident in rows.scalars():
                self.incidents[incident.id] = incident

    async def insert_new_incidents(self, *, load: bool) -> None:
        """Insert the incidents this batch opened so far, with their `i_new` entries and fan-out jobs.

        With `load`, they are loaded as ORM objects and take the place of their rows in this batch,
        for the ORM path to change them further (storm, recovery); the batch's end needs no objects.
        """
        pending, self.new_incidents = self.new_incidents, []
        if not pending:
            return
        await _insert_new_incidents(self, pending)
        if load:
            await self.prefetch_incident_ids({p.id for p in pending if p.id is not None})
            for p in pending:
                key = (p.channel_id, p.group_key)
                if self.open_by_group.get(key) is p:
                    self.open_by_group[key] = self.incidents[p.id]  # type: ignore[index]

    async def incident_severity(self, incident_id: int) -> str:
        if incident_id in self.incidents:  # loaded: it may have changed in this batch
            return self.incidents[incident_id].severity
        if incident_id not in self.severities:
            return (await self.incident(incident_id)).severity
        return self.severities[incident_id]

    async def incident(self, incident_id: int) -> Incident:
        if incident_id not in self.incidents:
            self.incidents[incident_id] = await incidents.get(self.session, incident_id)
        return self.incidents[incident_id]


LAST_EVENT_AT_RESOLUTION = timedelta(seconds=1)


async def ingest_batch(
    session: AsyncSession, items: list[tuple[IntegrationRef, AlertEvent]], now: datetime,
    *, marked: dict[int, datetime] | None = None,
) -> list[IngestResult]:
    """Apply events in order within the caller's transaction; the caller commits.

    `marked` (integration id -> the last_event_at this caller last wrote) lets a steady stream
    skip rewriting an integration's last_event_at more than once a second.
    """
    batch = _Batch(session, await session.connection(), now)
    routed = await enrichment_store.enrich_and_route(session, items, route)  # labels enriched before all else
    channel_ids = sorted({cid for _, _, cid in routed if cid is not None})
    if not batch.pg:
        await batch.conn.execute(sql.TAKE_WRITE_GATE)
    await batch.load_channels(channel_ids)
    await batch.prefetch_alerts({(cid, ev.alert_key) for _, ev, cid in routed if cid is not None})
    wanted = set()
    for _, ev, cid in routed:  # groups of the alerts this batch will create
        if cid is not None and batch.alerts.get((cid, ev.alert_key)) is None and ev.event_status is not EventStatus.OK:
            channel = await batch.channel(cid)
            if channel is not None:
                wanted.add((cid, _group_of(batch.grouping(channel), ev.alert_key, ev.title, ev.description,
                                           ev.event_status.value, ev.labels)[0]))
    await batch.prefetch_incidents(wanted)
    # Incidents are loaded only where an alert recovers (the incident may close); repeats need a severity.
    recovering = [batch.alerts.get((cid, ev.alert_key)) for _, ev, cid in routed
                  if cid is not None and ev.event_status is EventStatus.OK]
    await batch.prefetch_incident_ids({a.incident_id for a in recovering if a is not None and a.incident_id})
    results = []
    with session.no_autoflush:
        for ref, ev, cid in routed:
            n = len(batch.stored)
            results.append(await _apply(batch, ref, ev, cid))
            batch.result_alerts.append(batch.stored[-1][0] if len(batch.stored) > n else None)
        await batch.insert_new_incidents(load=False)  # before the alerts that point at them
    known = list({id(a): a for a, _ in batch.stored if a.id is not None}.values())  # before new ones get ids
    # The ORM flushes the rest (incidents, timeline...); new alerts go in one multi-row INSERT, then
    # the repeated alerts, incident counts and raw events are written.
    await session.flush()
    await _insert_new_alerts(batch)
    await _write_rows(batch, known)
    # An alert that opened or joined an incident of this batch learnt its id after its result was made.
    results = [replace(r, alert_id=alert.id, incident_id=alert.incident_id) if alert is not None else r
               for r, alert in zip(results, batch.result_alerts)]
    await _alert_webhooks(batch, results)
    await _record_unrouted(session, routed, results, now)
    touched = {ref.id for ref, _ in items}
    if marked is not None:
        touched = {i for i in touched if i not in marked or now - marked[i] >= LAST_EVENT_AT_RESOLUTION}
        marked.update(dict.fromkeys(touched, now))
    if touched:
        await batch.conn.execute(sql.MARK_INTEGRATIONS[batch.pg], {"ids": sorted(touched), "now": now})
    return results


async def _record_unrouted(session: AsyncSession, routed: list[tuple[IntegrationRef, AlertEvent, int | None]],
                           results: list[IngestResult], now: datetime) -> None:
    """Keep the events no channel took, in the batch's transaction: the pusher is refused, the admin can look."""
    by_integration: dict[int, list[tuple[AlertEvent, Unrouted, int | None]]] = {}
    for (ref, ev, _), r in zip(routed, results, strict=True):
        if r.unrouted is not None:
            by_integration.setdefault(ref.id, []).append((ev, r.unrouted, r.channel_id))
    for integration_id, evs in sorted(by_integration.items()):
        await unrouted.record(session, integration_id, evs, now)


async def _write_rows(batch: _Batch, known: list[_AlertRow]) -> None:
    """Repeated alerts (a fixed column set), events added to incidents (in place: `n = n + k`, no read,
    no count lost to a concurrent writer) and the raw events: one statement on PostgreSQL, three
    executemany on SQLite, whose statements cost no round trip."""
    counted = batch.incident_events
    events = [{**row, "alert_id": alert.id} for alert, row in batch.stored]
    if not events:
        return
    if batch.pg:
        params: dict[str, Any] = {"now": batch.now}
        params.update({f"k_{c}": [_pg_value(c, getattr(a, c)) for a in known] for c in ("id", *sql.UPDATE_COLUMNS)})
        params.update(c_id=list(counted), c_n=list(counted.values()))
        params.update({f"e_{c}": [_pg_value(c, e[c]) for e in events] for c in events[0]})
        await batch.conn.execute(sql.WRITE_ROWS_PG, params)
        return
    if known:
        await batch.conn.execute(sql.UPDATE_ALERTS, [
            {"_id": a.id, **{c: getattr(a, c) for c in sql.UPDATE_COLUMNS}} for a in known])
    if counted:
        await batch.conn.execute(sql.COUNT_INCIDENT_EVENTS, [
            {"_id": i, "_n": n, "_now": batch.now} for i, n in counted.items()])
    await batch.conn.execute(sql.INSERT_EVENTS, events)


def _pg_value(column: str, value: Any) -> Any:
    return json.dumps(value) if column == "labels" else value


async def _insert_new_incidents(batch: _Batch, pending: list[_NewIncident]) -> None:
    """The batch's new incidents in one statement (`num` = id with each row), their `i_new` timeline entries
    and fan-out jobs in one or two more (events.emit_many); their alerts learn the ids."""
    columns = sql.NEW_INCIDENT_COLUMNS
    if batch.pg:
        params: dict[str, Any] = dict(sql.INSERT_INCIDENTS_PG_DEFAULTS)
        params.update({f"n_{c}": [getattr(p, c) for p in pending] for c in columns})
        params["n_labels"] = [json.dumps(p.labels) for p in pending]
        ids = [incident_id for (incident_id,) in await batch.conn.execute(sql.INSERT_INCIDENTS_PG, params)]
    else:
        first = ((await batch.conn.execute(sql.MAX_INCIDENT_ID)).scalar() or 0) + 1
        ids = list(range(first, first + len(pending)))
        binds = _sqlite_binds(batch.conn.dialect, sql.INCIDENT, sql.NEW_INCIDENT_COLUMNS)
        defaults = _sqlite_defaults(batch.conn.dialect)
        stored: dict[Any, Any] = {}
        # num: what responders type (`/vigil ack 42` takes the number on the card)
        rows = [(i, str(i), *_stored_values(binds, p, stored), *defaults) for p, i in zip(pending, ids, strict=True)]
        await batch.conn.exec_driver_sql(sql.INSERT_INCIDENTS_SQLITE, rows)
    for p, incident_id in zip(pending, ids, strict=True):
        p.id = incident_id
        for alert in p.alerts:
            alert.incident_id, alert.new_incident = incident_id, None
    INCIDENTS_OPENED.inc(len(pending))
    await events.emit_many(batch.session, events.I_NEW, ids, now=batch.now, source="system",
                           details=[{"alert_key": p.dedup_key} for p in pending],
                           urgencies=[urgency_of(p.severity) for p in pending])


# SQLite dialect -> (table, columns) -> each column's bind processor, and whether its values may be memoised
# (times: a batch's are mostly `now`). An engine's JSON serializer is its dialect's, hence one set per dialect.
_SQLITE_BINDS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _sqlite_binds(dialect: Any, table: Any, columns: tuple[str, ...]) -> list[tuple[str, Any, bool]]:
    memo = _SQLITE_BINDS.setdefault(dialect, {})
    key = (table.name, columns)
    if key not in memo:
        memo[key] = [(c, table.c[c].type.dialect_impl(dialect).bind_processor(dialect),
                      isinstance(table.c[c].type, UTCDateTime)) for c in columns]
    return memo[key]  # type: ignore[no-any-return]


def _sqlite_defaults(dialect: Any) -> tuple[Any, ...]:
    """The stored values of sql.NEW_INCIDENT_DEFAULTS."""
    memo = _SQLITE_BINDS.setdefault(dialect, {})
    if "defaults" not in memo:
        names = tuple(sql.NEW_INCIDENT_DEFAULTS)
        memo["defaults"] = tuple(bind(v) if bind is not None else v for (_, bind, _), v in zip(
            _sqlite_binds(dialect, sql.INCIDENT, names), sql.NEW_INCIDENT_DEFAULTS.values(), strict=True))
    return memo["defaults"]  # type: ignore[no-any-return]


def _stored_values(binds: list[tuple[str, Any, bool]], row: Any, stored: dict[Any, Any]) -> list[Any]:
    """A row's values as the driver stores them, converted by the columns' own bind processors."""
    values = []
    for c, bind, memoised in binds:
        value = getattr(row, c)
        if bind is not None:
            if not memoised:
                value = bind(value)
            elif value in stored:
                value = stored[value]
            else:
                value = stored[value] = bind(value)
        values.append(value)
    return values


async def _insert_new_alerts(batch: _Batch) -> None:
    """One multi-row INSERT for the batch's new alerts, which learn their ids (RETURNING on PostgreSQL)."""
    if not batch.new_alerts:
        return
    if batch.pg:
        rows = [{c: getattr(a, c) for c in _ALERT_INSERT_COLUMNS} for a in batch.new_alerts]
        ids = [alert_id for (alert_id,) in (await batch.conn.execute(sql.INSERT_ALERTS[True], rows)).all()]
    else:
        # The batch holds the write gate: it numbers its alerts as SQLite would (see sql.MAX_INCIDENT_ID).
        first = ((await batch.conn.execute(sql.MAX_ALERT_ID)).scalar() or 0) + 1
        ids = list(range(first, first + len(batch.new_alerts)))
        binds = _sqlite_binds(batch.conn.dialect, sql.ALERT, _ALERT_INSERT_COLUMNS)
        stored: dict[Any, Any] = {}
        await batch.conn.exec_driver_sql(_INSERT_ALERTS_SQLITE, [
            (i, *_stored_values(binds, a, stored)) for a, i in zip(batch.new_alerts, ids, strict=True)])
    for alert, alert_id in zip(batch.new_alerts, ids, strict=True):
        alert.id = alert_id


ALERT_EVENT = {"new_alert": ("a_new", "a_merge"), "updated": ("a_update",), "recovered": ("a_update",)}


async def _alert_webhooks(batch: _Batch, results: list[IngestResult]) -> None:
    """One job per batch carries the alert events (a_new, a_merge, a_update) to alert webhooks, if any exist."""
    # Every such outcome has a channel that exists, so load_channels has answered.
    if not batch.alert_webhooks or not any(r.outcome in ALERT_EVENT for r in results):
        return
    items = [[r.alert_id, kind, r.channel_id, r.incident_id] for r in results if r.outcome in ALERT_EVENT
             for kind in ALERT_EVENT[r.outcome]]
    await jobs.schedule(batch.session, "alert_webhooks", {"items": items, "at": batch.now.isoformat()},
                        due_at=batch.now)


async def _apply(batch: _Batch, ref: IntegrationRef, ev: AlertEvent, cid: int | None) -> IngestResult:
    now = batch.now
    if cid is None:
        return IngestResult(ev.alert_key, "unrouted", unrouted=Unrouted.NO_ROUTE)
    channel = await batch.channel(cid)
    if channel is None or channel.status != "enabled":
        why = Unrouted.CHANNEL_MISSING if channel is None else Unrouted.CHANNEL_DISABLED
        return IngestResult(ev.alert_key, "unrouted", channel_id=cid, unrouted=why)
    rules = await batch.noise_rules(channel)
    subj = None  # what rules match against: built only when a rule will look at it
    if rules.drops:
        subj = _event_subject(ref, ev, cid)
        if noise.dropped_by(rules.drops, subj) is not None:
            return IngestResult(ev.alert_key, "dropped", channel_id=cid)
    event_time = ev.event_time or now
    alert = batch.alerts.get((cid, ev.alert_key))
    if alert is None and ev.event_status is EventStatus.OK:
        return IngestResult(ev.alert_key, "ignored", channel_id=cid)  # recovery of nothing we hold

    if alert is None:
        severity = ev.event_status.value
        alert = _AlertRow(
            id=None, incident_id=None, title=ev.title, description=ev.description, severity=severity,
            status=severity, progress=Progress.TRIGGERED.value, labels=dict(ev.labels), event_cnt=0,
            last_time=event_time, end_time=None, close_time=None, updated_at=now,
            channel_id=cid, integration_id=ref.id, alert_key=ev.alert_key, title_rule=ev.title_rule,
            images=[{"src": i.src, "alt": i.alt, "href": i.href} for i in ev.images],
            start_time=event_time, created_at=now,
        )
        batch.alerts[(cid, ev.alert_key)] = alert
        subj = subj or _event_subject(ref, ev, cid)
        alert.muted_by = await _muted(batch, channel, rules, ev.alert_key, subj)
        if alert.muted_by:
            # stored and marked, but it neither opens nor joins an incident: nobody is paged
            outcome = alert.muted_by.split(":")[0]
            OUTCOME_MUTED.labels(outcome).inc()
        else:
            await _incident_for(batch, channel, alert)
            outcome = "new_alert"
            if cid in batch.active:  # later alerts of this batch may be inhibited by this one
                batch.active[cid].append(noise.ActiveAlert(subj, now))
        batch.new_alerts.append(alert)
    else:
        outcome = "updated"
    if alert.new_incident is not None and ev.event_status is EventStatus.OK:
        await batch.insert_new_incidents(load=True)  # its recovery takes the ORM path, which needs the row
    incident_id, new_incident = alert.incident_id, alert.new_incident

    alert.event_cnt += 1
    alert.last_time = max(alert.last_time or event_time, event_time)
    if ev.title and ev.title != alert.title:  # attribute writes are the costly part of a dedup: skip no-ops
        alert.title = ev.title
    if ev.description and ev.description != alert.description:
        alert.description = ev.description
    alert.updated_at = now
    if incident_id is not None:
        batch.incident_events[incident_id] = batch.incident_events.get(incident_id, 0) + 1
    elif new_incident is not None:
        new_incident.alert_event_cnt += 1
    if ev.event_status is EventStatus.OK:
        # Recovery keeps the alert's labels and only adds new keys (Flashduty semantics).
        alert.labels = {**ev.labels, **alert.labels}
        alert.status, alert.progress = EventStatus.OK.value, Progress.CLOSED.value
        alert.end_time = alert.close_time = event_time
        batch.alerts[(cid, ev.alert_key)] = None
        outcome = "recovered"
        if rules.flapping.enabled:
            state = await batch.flap_state(cid, ev.alert_key)
            state.changes, _ = noise.flap(state.changes, now, rules.flapping)
        if incident_id is not None:
            await _on_alert_recovered(batch, channel, await batch.incident(incident_id))
    else:
        if alert.labels != ev.labels:
            alert.labels = dict(ev.labels)
        if alert.status != ev.event_status.value:
            alert.status = ev.event_status.value
        severity = _max_severity(alert.severity, ev.event_status.value)
        if severity != alert.severity:
            alert.severity = severity
        if incident_id is not None and (
                Severity(alert.severity).rank > Severity(await batch.incident_severity(incident_id)).rank):
            incident = await batch.incident(incident_id)
            incident.severity = alert.severity
            if incident.status != EventStatus.OK.value:
                incident.status = alert.severity
        elif new_incident is not None and Severity(alert.severity).rank > Severity(new_incident.severity).rank:
            new_incident.severity = new_incident.status = alert.severity  # pending: never Ok
    batch.stored.append((alert, {
        "integration_id": ref.id, "event_status": ev.event_status.value, "title": ev.title,
        "description": ev.description, "labels": dict(ev.labels), "event_time": event_time, "received_at": now,
    }))
    return IngestResult(ev.alert_key, outcome, None, incident_id, cid)


def _event_subject(ref: IntegrationRef, ev: AlertEvent, cid: int) -> dict[str, Any]:
    return subject(title=ev.title, description=ev.description, severity=ev.event_status.value,
                   status=ev.event_status.value, labels=ev.labels, integration_id=ref.id, channel_id=cid)


async def _muted(batch: _Batch, channel: Channel, rules: _ChannelNoise, alert_key: str,
                 subj: dict[str, Any]) -> str:
    """Why a new alert must not page: silence, inhibit or flapping ("" when it pages)."""
    now = batch.now
    if rules.flapping.enabled:
        state = await batch.flap_state(channel.id, alert_key)
        state.changes, flapping = noise.flap(state.changes, now, rules.flapping)
        if flapping and rules.flapping.mute_mins and (state.muted_until is None or state.muted_until <= now):
            state.muted_until = now + timedelta(minutes=rules.flapping.mute_mins)
            await _note_flapping(batch, channel, alert_key, state)
        if state.muted_until is not None and state.muted_until > now:
            return "flapping"
    if rules.silences:
        rule_id = noise.silenced_by(rules.silences, subj, now)
        if rule_id is not None:
            return f"silence:{rule_id}"
    if rules.inhibits:
        horizon = max(r.window_minutes for r in rules.inhibits)
        rule_id = noise.inhibited_by(rules.inhibits, subj, await batch.active_alerts(channel.id, horizon), now)
        if rule_id is not None:
            return f"inhibit:{rule_id}"
    return ""


async def _note_flapping(batch: _Batch, channel: Channel, alert_key: str, state: FlapState) -> None:
    """Record the mute on the alert key's latest incident (Flashduty's i_m_flapping feed entry)."""
    row = (await batch.session.execute(
        select(Incident.id).join(Alert, Alert.incident_id == Incident.id)
        .where(Alert.channel_id == channel.id, Alert.alert_key == alert_key)
        .order_by(Incident.id.desc()).limit(1))).first()
    if row is not None:
        incident = await batch.incident(row[0])
        incident.ever_muted = True
        events.note(batch.session, incident.id, "i_m_flapping", now=batch.now, detail={
            "alert_key": alert_key, "changes": len(state.changes),
            "muted_until": int(state.muted_until.timestamp()) if state.muted_until else 0})


def _group_of(rule: GroupingRule, alert_key: str, title: str, description: str, severity: str,
              labels: dict[str, str]) -> tuple[str, str]:
    return group_key(rule, GroupSubject(alert_key, title, description, severity, labels))


async def _incident_for(batch: _Batch, channel: Channel, alert: _AlertRow) -> None:
    """Attach a new alert to the open incident of its group, or open a new incident (a pending row)."""
    now = batch.now
    rule = batch.grouping(channel)
    key, method = _group_of(rule, alert.alert_key, alert.title, alert.description, alert.severity, alert.labels)
    if (channel.id, key) not in batch.open_by_group:
        await batch.prefetch_incidents({(channel.id, key)})
    incident = batch.open_by_group.get((channel.id, key))
    if incident is not None and incident.progress != Progress.CLOSED.value and window_open(
            rule, started=incident.created_at, last_merge=incident.last_time, now=now):
        crossed = noise.storm_crossed(incident.alert_cnt, incident.alert_cnt + 1, channel.storm_thresholds or [])
        storm = crossed is not None and crossed > incident.storm_level
        if storm and isinstance(incident, _NewIncident):
            await batch.insert_new_incidents(load=True)  # its storm entry needs the incident's id
            incident = batch.open_by_group[(channel.id, key)]
            assert isinstance(incident, Incident)
        incident.alert_cnt += 1
        incident.active_alert_cnt += 1
        if storm:
            assert isinstance(incident, Incident)
            incident.storm_level = crossed
            await events.emit(batch.session, incident, events.I_STORM, now=now,
                              detail={"threshold": crossed, "alert_cnt": incident.alert_cnt})
        incident.last_time = now
        incident.severity = _max_severity(incident.severity, alert.severity)
        incident.status = incident.severity
        incident.updated_at = now
        if isinstance(incident, _NewIncident):
            alert.new_incident = incident
            incident.alerts.append(alert)
        else:
            batch.incidents[incident.id] = incident  # type: ignore[index]
            alert.incident_id = incident.id
        return

    opened = _NewIncident(
        channel_id=channel.id, title=alert.title, description=alert.description, severity=alert.severity,
        status=alert.severity, labels=dict(alert.labels), dedup_key=alert.alert_key, group_key=key,
        group_method=method, alert_cnt=1, active_alert_cnt=1, alert_event_cnt=0, start_time=now, last_time=now,
        created_at=now, updated_at=now, alerts=[alert],
    )
    if channel.last_incident_at != now:
        channel.last_incident_at = now
    batch.new_incidents.append(opened)
    batch.open_by_group[(channel.id, key)] = opened
    alert.new_incident = opened


async def _on_alert_recovered(batch: _Batch, channel: Channel, incident: Incident) -> None:
    incident.active_alert_cnt = max(0, incident.active_alert_cnt - 1)
    if incident.active_alert_cnt == 0 and incident.progress != Progress.CLOSED.value:
        incident.status = EventStatus.OK.value
        incident.end_time = batch.now
        if channel.auto_close:
            await incidents.close_recovered(batch.session, incident, now=batch.now)


# Events one integration puts into one writer transaction when others wait too (core/ingest_queue.py).
# On SQLite a transaction runs on the event loop itself, so this also bounds how long a big push holds the
# loop at a time: ~100 new alerts take ~50-100 ms.
SHARE = 100


@dataclass(eq=False)
class _Request:
    """A submitted request: its events, where their results go, and whom to tell when all are committed."""

    ref: IntegrationRef
    events: list[AlertEvent]
    fut: asyncio.Future[list[IngestResult]]
    results: list[IngestResult | None]
    applied: int = 0
    failed: bool = False  # a slice of it failed: what is left of it is never applied


class IngestWriter:
    """Group commit, fair across integrations: one writer task applies queued requests in shared transactions.

    A request larger than its integration's share of a transaction is applied in slices, and other
    integrations' waiting events commit between them (core/ingest_queue.py); its caller still hears back
    only once every slice has committed.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, max_batch: int = 500,
                 share: int = SHARE, now: Callable[[], datetime] = utcnow) -> None:
        self.sessionmaker, self.now = sessionmaker, now
        self._queue: FairQueue[_Request] = FairQueue(share=share, max_batch=max_batch)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._marked: dict[int, datetime] = {}  # see ingest_batch
        # The writer keeps one connection instead of taking one from the pool per batch: no check-out,
        # and on PostgreSQL no pre-ping round trip, for every batch.
        self._conn: AsyncConnection | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vigil-ingest-writer")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drop_connection()

    async def submit(self, ref: IntegrationRef, evs: list[AlertEvent]) -> list[IngestResult]:
        """Queue events and wait until the transactions holding them have all committed.

        A request applied in slices that fails part way has its earlier slices committed: its caller is
        told it failed and sends it again, which repeats those alerts' events (dedup keeps one alert each).
        """
        if self._task is None or self._task.done():
            raise RuntimeError("ingest writer is not running")
        if not evs:
            return []
        request = _Request(ref, evs, asyncio.get_running_loop().create_future(), [None] * len(evs))
        self._queue.put(ref.id, request, len(evs))
        self._wake.set()
        return await request.fut

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._commit(self._queue.take())
                # A transaction on SQLite runs on the loop itself, and back to back they would hold it
                # until the queue is empty: let requests (and /healthz) in between.
                await asyncio.sleep(0)

    async def _commit(self, batch: list[Slice[_Request]]) -> None:
        try:
            results = await self._apply([(s.request.ref, ev) for s in batch
                                         for ev in s.request.events[s.start:s.stop]])
        except Exception:
            if len(batch) == 1:
                log.exception("ingest failed")
                request = batch[0].request
                request.failed = True
                self._queue.drop(request.ref.id, request)
                _settle(request.fut, exc=RuntimeError("the event could not be stored"))
                return
            # One bad request must not fail its neighbours: retry each slice on its own.
            for s in batch:
                if not s.request.failed:
                    await self._commit([s])
            return
        i = 0
        for s in batch:
            request, n = s.request, s.stop - s.start
            request.results[s.start:s.stop] = results[i:i + n]
            request.applied += n
            i += n
            if request.applied == len(request.events):
                _settle(request.fut, results=request.results)

    async def _apply(self, items: list[tuple[IntegrationRef, AlertEvent]]) -> list[IngestResult]:
        """One transaction on the writer's own connection; a connection found dead is replaced once."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = await self.sessionmaker.kw["bind"].connect()
            try:
                async with self.sessionmaker(bind=self._conn) as session:
                    results = await ingest_batch(session, items, self.now(), marked=self._marked)
                    await session.commit()
                    for r in results:
                        if r.unrouted is not None:
                            UNROUTED.labels(r.unrouted.value).inc()
                    return results
            except BaseException as exc:
                await self._drop_connection()
                if attempt == 1 and isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    continue  # e.g. the database restarted since the last batch: nothing was written
                raise
        raise AssertionError("unreachable")

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


def _settle(fut: asyncio.Future[Any], *, results: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(results)
