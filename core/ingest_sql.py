"""The statements of ingest's hot path, built once.

Building a SQLAlchemy statement and its cache key costs more than running it on SQLite, and ingest
runs the same few statements for every batch: they are built here at import and take their values
as bound parameters. Where PostgreSQL differs, a statement comes in two flavours, picked by `pg`.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import any_, bindparam, func, insert, select, text, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased

from core.models import Alert, Channel, Incident, Integration, StoredEvent, Webhook
from core.types import Progress

ALERT, INCIDENT = Alert.__table__, Incident.__table__  # type: ignore[attr-defined]

INGEST_LOCK = 7391  # first key of PostgreSQL's advisory lock (INGEST_LOCK, channel id)

# What ingest reads of an alert that exists, and what an event may change on it.
LOADED_COLUMNS = ("id", "incident_id", "title", "description", "severity", "status", "progress", "labels",
                  "event_cnt", "last_time", "end_time", "close_time", "updated_at")
UPDATE_COLUMNS = ("event_cnt", "last_time", "updated_at", "title", "description", "labels", "status",
                  "severity", "progress", "end_time", "close_time")


def one_of(column: Any, name: str, pg: bool) -> Any:
    """`column IN :name`; on PostgreSQL `column = ANY(:name)`, whose text does not change with the
    number of values, so asyncpg prepares it once instead of once per batch size."""
    if pg:
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def ingest_lock(channel_id: Any) -> Any:
    """PostgreSQL: take the channel's ingest lock until the transaction ends (serialises ingest per
    channel across processes, and whatever else must not interleave with a batch)."""
    return func.pg_advisory_xact_lock(INGEST_LOCK, channel_id)


ALERT_WEBHOOKS_EXIST = select(Webhook.id).where(Webhook.kind == "alert", Webhook.status == "enabled").exists()


def _channel(pg: bool, ask: bool) -> Any:
    """A channel by :cid. On PostgreSQL it also takes the channel's ingest lock, and with `ask` it also
    says whether alert webhooks exist: each would otherwise be a round trip of its own."""
    stmt = select(Channel).where(Channel.id == bindparam("cid"))
    if pg:
        stmt = stmt.add_columns(ingest_lock(Channel.id))
    if ask:
        stmt = stmt.add_columns(ALERT_WEBHOOKS_EXIST)
    return stmt


# SQLite: a write that changes nothing, so the batch holds the write gate (core/db_sqlite.py) from its
# first read: nothing another task commits meanwhile can be overwritten by what the batch read.
TAKE_WRITE_GATE = text("UPDATE channel SET id = id WHERE 0")

CHANNEL = {(pg, ask): _channel(pg, ask) for pg in (False, True) for ask in (False, True)}



def _load_alerts(pg: bool) -> Any:
    """Open alerts of channel :cid among :keys, each with its incident's severity (all a repeat needs of it).

    PostgreSQL looks each key up on its own (LATERAL, one index probe on all three columns): with
    `alert_key = ANY(:keys)`, or a plain join, a planner without statistics on the table (never analyzed:
    autovacuum off, as on the bench machine) may rather read every open alert of the channel and filter
    them, which grows with the open alerts: ~12 ms a batch at 8,000 of them.
    """
    columns = (INCIDENT.c.severity, ALERT.c.alert_key, *(ALERT.c[f] for f in LOADED_COLUMNS))
    if not pg:
        return (select(*columns).outerjoin(INCIDENT, INCIDENT.c.id == ALERT.c.incident_id)
                .where(ALERT.c.channel_id == bindparam("cid"), one_of(ALERT.c.alert_key, "keys", pg),
                       ALERT.c.progress == Progress.TRIGGERED.value))
    keys = func.unnest(bindparam("keys", type_=postgresql.ARRAY(ALERT.c.alert_key.type))).table_valued("key")
    keys = keys.render_derived(name="k")
    per_key = (select(*columns).outerjoin(INCIDENT, INCIDENT.c.id == ALERT.c.incident_id)
               .where(ALERT.c.channel_id == bindparam("cid"), ALERT.c.alert_key == keys.c.key,
                      ALERT.c.progress == Progress.TRIGGERED.value)
               .offset(0)  # keeps the planner from flattening the lookup into a join it may turn around
               .lateral("a"))
    return select(*per_key.c).select_from(keys).join(per_key, true())


LOAD_ALERTS = {pg: _load_alerts(pg) for pg in (False, True)}



def _open_incidents(pg: bool) -> Any:
    """Open, unmerged incidents of channel :cid whose group is among :keys, oldest first (ORM objects).

    PostgreSQL looks each group up on its own through the group_key index, for the reason _load_alerts
    gives; the channel and merge tests are written so that no index can serve them (each would have the
    planner read all of a channel's, or every unmerged, incident), as the group's few rows are at hand.
    """
    if not pg:
        # The same on SQLite, which has no statistics to know that a channel holds many incidents and a
        # group few: with a plain channel test it walked the channel's index, every incident it ever had, in
        # each batch (a fifth of `vigil serve`'s CPU at 500 new incidents/s once 30,000 were open).
        return select(Incident).where(
            Incident.channel_id + 0 == bindparam("cid"), one_of(Incident.group_key, "keys", pg),
            Incident.progress + "" != Progress.CLOSED.value, func.coalesce(Incident.merged_into_id, 0) == 0
        ).order_by(Incident.id)
    keys = func.unnest(bindparam("keys", type_=postgresql.ARRAY(INCIDENT.c.group_key.type))).table_valued("key")
    keys = keys.render_derived(name="k")
    per_key = (select(INCIDENT).where(
        INCIDENT.c.group_key == keys.c.key, INCIDENT.c.channel_id + 0 == bindparam("cid"),
        INCIDENT.c.progress != Progress.CLOSED.value, func.coalesce(INCIDENT.c.merged_into_id, 0) == 0)
        .offset(0).lateral("i"))
    incident = aliased(Incident, per_key)
    return select(incident).select_from(keys).join(per_key, true()).order_by(incident.id)


OPEN_INCIDENTS = {pg: _open_incidents(pg) for pg in (False, True)}

INCIDENTS_BY_ID = {pg: select(Incident).where(one_of(Incident.id, "ids", pg)) for pg in (False, True)}

UPDATE_ALERTS = update(ALERT).where(ALERT.c.id == bindparam("_id")).values({c: bindparam(c) for c in UPDATE_COLUMNS})

# `n = n + k`: no read, and no count lost to a concurrent writer.
COUNT_INCIDENT_EVENTS = update(INCIDENT).where(INCIDENT.c.id == bindparam("_id")).values(
    alert_event_cnt=INCIDENT.c.alert_event_cnt + bindparam("_n"), last_time=bindparam("_now"))

# PostgreSQL (SQLite numbers its new alerts itself: see MAX_ALERT_ID).
INSERT_ALERTS = {True: insert(ALERT).returning(ALERT.c.id, sort_by_parameter_order=True)}

INSERT_EVENTS = insert(StoredEvent.__table__)  # type: ignore[attr-defined]

MARK_INTEGRATIONS = {pg: update(Integration).where(one_of(Integration.id, "ids", pg))
                     .values(last_event_at=bindparam("now")).execution_options(synchronize_session=False)
                     for pg in (False, True)}


def _unnest(prefix: str, columns: list[tuple[str, str]]) -> str:
    casts = ", ".join(f"CAST(:{prefix}{name} AS {kind}[])" for name, kind in columns)
    return f"unnest({casts}) AS {prefix.rstrip('_')}({', '.join(name for name, _ in columns)})"


_KNOWN = [("id", "INTEGER"), ("event_cnt", "INTEGER"), ("last_time", "TIMESTAMPTZ"), ("updated_at", "TIMESTAMPTZ"),
          ("title", "VARCHAR"), ("description", "VARCHAR"), ("labels", "TEXT"), ("status", "VARCHAR"),
          ("severity", "VARCHAR"), ("progress", "VARCHAR"), ("end_time", "TIMESTAMPTZ"), ("close_time", "TIMESTAMPTZ")]
_COUNTED = [("id", "INTEGER"), ("n", "INTEGER")]
_EVENTS = [("alert_id", "INTEGER"), ("integration_id", "INTEGER"), ("event_status", "VARCHAR"), ("title", "VARCHAR"),
           ("description", "VARCHAR"), ("labels", "TEXT"), ("event_time", "TIMESTAMPTZ"),
           ("received_at", "TIMESTAMPTZ")]
assert {n for n, _ in _KNOWN[1:]} == set(UPDATE_COLUMNS)

# PostgreSQL: the three writes of a batch (repeated alerts, incident counts, raw events) in one
# statement and one round trip, each row set passed as arrays. On a loaded server a round trip
# costs the database's latency plus the event loop's queue, and a batch is bound by them.
WRITE_ROWS_PG = text(f"""
WITH known AS (
    UPDATE alert SET {", ".join(
        f"{n} = CAST(k.{n} AS JSON)" if n == "labels" else f"{n} = k.{n}" for n, _ in _KNOWN[1:])}
    FROM {_unnest("k_", _KNOWN)}
    WHERE alert.id = k.id
), counted AS (
    UPDATE incident SET alert_event_cnt = incident.alert_event_cnt + c.n, last_time = CAST(:now AS TIMESTAMPTZ)
    FROM {_unnest("c_", _COUNTED)}
    WHERE incident.id = c.id
)
INSERT INTO alert_event ({", ".join(n for n, _ in _EVENTS)})
SELECT {", ".join(f"CAST(e.{n} AS JSON)" if n == "labels" else f"e.{n}" for n, _ in _EVENTS)}
FROM {_unnest("e_", _EVENTS)}
""")


# New incidents. What an incident opened by ingest holds beyond its defaults: these vary per row, every
# other column takes its model default (NEW_INCIDENT_DEFAULTS), and `num` is its id in text.
NEW_INCIDENT_COLUMNS = ("channel_id", "title", "description", "severity", "status", "labels", "dedup_key",
                        "group_key", "group_method", "alert_cnt", "active_alert_cnt", "alert_event_cnt",
                        "start_time", "last_time", "created_at", "updated_at")
_blank = Incident(channel_id=0, title="", severity="", status="")
NEW_INCIDENT_DEFAULTS = {c.key: getattr(_blank, c.key) for c in INCIDENT.columns
                         if c.key not in ("id", "num", *NEW_INCIDENT_COLUMNS)}
del _blank

# SQLite: the batch holds the write gate from its first statement (TAKE_WRITE_GATE), so no other writer
# adds an incident before it commits, and it numbers its new incidents itself from the largest id on, as
# SQLite would: `num` goes with the row, and the rows go to the driver's executemany as tuples of stored
# values (ingest converts them with the columns' own bind processors, the constant ones once).
def sqlite_insert(table: str, columns: tuple[str, ...]) -> str:
    """A plain INSERT for the SQLite driver's executemany (rows as tuples of stored values)."""
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


MAX_INCIDENT_ID = text("SELECT max(id) FROM incident")
INSERT_INCIDENTS_SQLITE = sqlite_insert("incident", ("id", "num", *NEW_INCIDENT_COLUMNS, *NEW_INCIDENT_DEFAULTS))
MAX_ALERT_ID = text("SELECT max(id) FROM alert")  # new alerts are numbered the same way


def _pg_type(column: Any) -> str:
    return column.type.compile(dialect=postgresql.dialect())


def _insert_incidents_pg() -> Any:
    """PostgreSQL: every new incident of a batch in one statement, its id drawn from the sequence first so
    that `num` is written with the row; the ids come back in parameter order."""
    varying = [(n, "TEXT" if n == "labels" else _pg_type(INCIDENT.c[n])) for n in NEW_INCIDENT_COLUMNS]
    values = [f"CAST(n.{n} AS JSON)" if n == "labels" else f"n.{n}" for n, _ in varying]
    for name, value in NEW_INCIDENT_DEFAULTS.items():
        kind = _pg_type(INCIDENT.c[name])
        values.append(f"CAST(CAST(:d_{name} AS TEXT) AS JSON)" if kind == "JSON" else
                      f"CAST(NULL AS {kind})" if value is None else f"CAST(:d_{name} AS {kind})")
    casts = ", ".join(f"CAST(:n_{n} AS {k}[])" for n, k in varying)
    return text(f"""
WITH n AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('incident', 'id')) AS id, u.*
    FROM unnest({casts}) WITH ORDINALITY AS u({", ".join(n for n, _ in varying)}, ord)
), ins AS (
    INSERT INTO incident (id, num, {", ".join(n for n, _ in varying)}, {", ".join(NEW_INCIDENT_DEFAULTS)})
    SELECT n.id, CAST(n.id AS VARCHAR), {", ".join(values)} FROM n
)
SELECT CAST(id AS INTEGER) FROM n ORDER BY ord
""")


INSERT_INCIDENTS_PG = _insert_incidents_pg()
# A JSON column's None is stored as JSON null, as the ORM and SQLAlchemy's JSON type store it.
INSERT_INCIDENTS_PG_DEFAULTS = {
    f"d_{name}": json.dumps(value) if _pg_type(INCIDENT.c[name]) == "JSON" else value
    for name, value in NEW_INCIDENT_DEFAULTS.items() if value is not None or _pg_type(INCIDENT.c[name]) == "JSON"}
