"""The incident list's filters as one SQL statement (Open API GET /incidents).

Every filter is a WHERE clause, so the database pages and counts: nothing is filtered in Python after a
page is read. Labels and responders are JSON columns; they are queried inside the JSON with each
database's own functions (json_each on SQLite, jsonb containment on PostgreSQL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core import custom_fields
from core.errors import InvalidInput
from core.models import Channel, Delivery, Incident, TimelineEntry

LABELS_MAX = 10
QUERY_MAX = 100


def parse_labels(csv: str, what: str = "labels") -> dict[str, str]:
    """`service=payments,env=prod` -> {"service": "payments", "env": "prod"}: every pair must match. `what`
    names the parameter in errors (labels, or fields for custom fields)."""
    out: dict[str, str] = {}
    for pair in csv.split(","):
        name, eq, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name:
            raise InvalidInput(f"{what}: {pair.strip()!r} is not name=value")
        if '"' in name or "\\" in name:
            raise InvalidInput(f"{what}: a name cannot hold a quote or a backslash ({name!r})")
        if name in out and out[name] != value:
            raise InvalidInput(f"{what}: {name!r} is named twice with different values")
        out[name] = value
    if len(out) > LABELS_MAX:
        raise InvalidInput(f"{what}: at most {LABELS_MAX} pairs")
    return out


def like_pattern(words: str) -> str:
    """A case-insensitive substring pattern; the user's own % and _ match themselves (escape `\\`)."""
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class IncidentFilter:
    channel_id: int | None = None
    progress: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    start_after: datetime | None = None  # started at or after
    start_before: datetime | None = None  # started before
    labels: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # custom field name -> value (custom_fields.filter_value)
    team_ids: tuple[int, ...] = ()
    responder_ids: tuple[int, ...] = ()
    mine_of: int | None = None  # the member whose incidents "mine" lists
    query: str = ""


def _has_responder(dialect: str, member_id: int, n: int) -> Any:
    if dialect == "postgresql":
        return text(f"CAST(incident.responders AS JSONB) @> CAST(:rsp{n} AS JSONB)").bindparams(
            bindparam(f"rsp{n}", f'[{{"person_id": {int(member_id)}}}]'))
    return text(f"EXISTS (SELECT 1 FROM json_each(incident.responders) AS r "
                f"WHERE json_extract(r.value, '$.person_id') = :rsp{n})").bindparams(bindparam(f"rsp{n}", member_id))


def _label_is(dialect: str, name: str, value: str) -> Any:
    column = Incident.__table__.c.labels  # type: ignore[attr-defined]
    if dialect == "postgresql":
        return func.json_extract_path_text(column, name) == value
    return func.json_extract(column, f'$."{name}"') == value  # quoted: a name with dots or spaces is one key


def _field_is(dialect: str, name: str, value: Any, multi: bool, by_default: bool, n: int) -> Any:
    """Incidents whose custom field `name` (a defined name: lowercase letters, digits, _) holds `value`, or
    holds it among its options (`multi`), or, when `by_default`, never set it."""
    if dialect == "postgresql":
        match = text(f"CAST(incident.fields AS JSONB) @> CAST(:fld{n} AS JSONB)").bindparams(
            bindparam(f"fld{n}", json.dumps({name: [value] if multi else value})))
        unset = text(f"NOT jsonb_exists(CAST(incident.fields AS JSONB), :fldn{n})").bindparams(
            bindparam(f"fldn{n}", name))
    else:
        if multi:
            match = text(f"EXISTS (SELECT 1 FROM json_each(incident.fields, '$.{name}') AS o "
                         f"WHERE o.value = :fld{n})").bindparams(bindparam(f"fld{n}", value))
        else:  # SQLite's json_extract reads JSON true / false as 1 / 0
            match = text(f"json_extract(incident.fields, '$.{name}') = :fld{n}").bindparams(
                bindparam(f"fld{n}", int(value) if isinstance(value, bool) else value))
        unset = text(f"json_type(incident.fields, '$.{name}') IS NULL")
    return or_(match, unset) if by_default else match


async def statement(session: AsyncSession, f: IncidentFilter) -> Select[Any]:
    """Incidents matching every filter, newest first."""
    dialect = session.bind.dialect.name
    stmt = select(Incident).order_by(Incident.id.desc())
    if f.channel_id:
        stmt = stmt.where(Incident.channel_id == f.channel_id)
    if f.progress:
        stmt = stmt.where(Incident.progress.in_(f.progress))
    if f.severity:
        stmt = stmt.where(Incident.severity.in_(f.severity))
    if f.start_after is not None:
        stmt = stmt.where(Incident.start_time >= f.start_after)
    if f.start_before is not None:
        stmt = stmt.where(Incident.start_time < f.start_before)
    for name, value in f.labels.items():
        stmt = stmt.where(_label_is(dialect, name, value))
    if f.fields:
        defs = {d.name: d for d in await custom_fields.definitions(session)}
        for n, (name, raw) in enumerate(f.fields.items()):
            if name not in defs:
                raise InvalidInput(f"fields: no custom field is named {name[:100]!r}")
            value, by_default = custom_fields.filter_value(defs[name], raw)
            stmt = stmt.where(_field_is(dialect, name, value, defs[name].type == "multi_select", by_default, n))
    if f.team_ids:
        # A team's incidents are those of its channels; channels are few, so they are read first.
        wanted = set(f.team_ids)
        channels = [cid for cid, teams in (await session.execute(select(Channel.id, Channel.team_ids))).all()
                    if wanted & set(teams or [])]
        stmt = stmt.where(Incident.channel_id.in_(channels))
    if f.responder_ids:
        stmt = stmt.where(or_(*(_has_responder(dialect, m, n) for n, m in enumerate(f.responder_ids))))
    if f.mine_of is not None:
        # As the web list's "mine": incidents that paged the member, that they acted on, or that name them.
        stmt = stmt.where(or_(
            Incident.id.in_(select(Delivery.incident_id).where(Delivery.member_id == f.mine_of)),
            Incident.id.in_(select(TimelineEntry.incident_id).where(TimelineEntry.actor_id == f.mine_of)),
            _has_responder(dialect, f.mine_of, len(f.responder_ids))))
    if f.query:
        stmt = stmt.where(Incident.title.ilike(like_pattern(f.query), escape="\\"))
    return stmt

