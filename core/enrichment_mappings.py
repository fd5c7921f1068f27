"""Enrichment mappings (key -> labels): row checks, CSV import and export, and the writes that keep the
rule sets using a mapping recompiled (core.enrichment_store.touch_users_of).

CSV: the header names the mapping's key label first, then result labels (a subset of the mapping's, any
order); each line is one row; an empty cell leaves that label out of the row. Every line is judged before
anything is written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import enrichment_store
from core.enrichment import LABEL_NAME, LABEL_VALUE_MAX
from core.errors import InvalidInput
from core.models import EnrichmentMapping, EnrichmentMappingRow

MAX_ROWS = 50_000  # rows of one mapping; ingest holds a mapping in memory while a rule set uses it
KEY_MAX = 255


def check_labels(mapping: EnrichmentMapping, labels: dict[str, str], where: str) -> None:
    unknown = sorted(set(labels) - set(mapping.result_labels))
    if unknown:
        raise InvalidInput(f"{where}: {unknown[0]!r} is not a result label of mapping {mapping.name!r} "
                           f"({', '.join(mapping.result_labels)})")
    for name, value in labels.items():
        if len(value) > LABEL_VALUE_MAX:
            raise InvalidInput(f"{where}.{name}: longer than {LABEL_VALUE_MAX} characters")


def check_label_names(names: list[str], where: str) -> None:
    for name in names:
        if not LABEL_NAME.match(name):
            raise InvalidInput(f"{where}: {name!r} is not a valid label name")


@dataclass
class ImportReport:
    added: int
    changed: int
    unchanged: int
    removed: int


def parse_csv(mapping: EnrichmentMapping, text: str) -> dict[str, dict[str, str]]:
    """key -> labels of a CSV body, or InvalidInput naming the line and the problem."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        lines = list(reader)
    except csv.Error as exc:
        raise InvalidInput(f"body: the CSV could not be read: {exc}") from None
    if not lines or not lines[0]:
        raise InvalidInput(f"body: the CSV needs a header: {mapping.key_label},<result labels>")
    header = [h.strip() for h in lines[0]]
    if header[0] != mapping.key_label:
        raise InvalidInput(f"body: the first column must be the key label {mapping.key_label!r}, not {header[0]!r}")
    unknown = [h for h in header[1:] if h not in mapping.result_labels]
    if unknown:
        raise InvalidInput(f"body: column {unknown[0]!r} is not a result label of mapping {mapping.name!r} "
                           f"({', '.join(mapping.result_labels)})")
    if len(set(header)) != len(header):
        raise InvalidInput("body: a column is named twice in the header")
    if len(lines) - 1 > MAX_ROWS:
        raise InvalidInput(f"body: at most {MAX_ROWS} rows in a mapping")
    rows: dict[str, dict[str, str]] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in line):
            continue
        if len(line) != len(header):
            raise InvalidInput(f"body: line {n} has {len(line)} cells; the header has {len(header)}")
        key = line[0].strip()
        if not key or len(key) > KEY_MAX:
            raise InvalidInput(f"body: line {n}: the key must be 1 to {KEY_MAX} characters")
        if key in rows:
            raise InvalidInput(f"body: line {n}: key {key!r} appears twice")
        labels = {h: v for h, v in zip(header[1:], line[1:], strict=True) if v != ""}
        check_labels(mapping, labels, f"body: line {n}")
        rows[key] = labels
    return rows


def to_csv(mapping: EnrichmentMapping, rows: list[EnrichmentMappingRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([mapping.key_label, *mapping.result_labels])
    for r in rows:
        writer.writerow([r.key, *(r.labels.get(name, "") for name in mapping.result_labels)])
    return out.getvalue()


async def row_count(session: AsyncSession, mapping_id: int) -> int:
    return (await session.execute(select(func.count()).where(EnrichmentMappingRow.mapping_id == mapping_id))
            ).scalar_one()


async def upsert_row(session: AsyncSession, mapping: EnrichmentMapping, key: str, labels: dict[str, str],
                     now: datetime) -> EnrichmentMappingRow:
    check_labels(mapping, labels, "labels")
    row = (await session.execute(select(EnrichmentMappingRow).where(
        EnrichmentMappingRow.mapping_id == mapping.id, EnrichmentMappingRow.key == key))).scalar_one_or_none()
    if row is None:
        if await row_count(session, mapping.id) >= MAX_ROWS:  # type: ignore[arg-type]
            raise InvalidInput(f"mapping {mapping.name!r} already holds {MAX_ROWS} rows, the most it may")
        row = EnrichmentMappingRow(mapping_id=mapping.id, key=key, labels=labels, updated_at=now)
        session.add(row)
    else:
        row.labels, row.updated_at = labels, now
    await session.flush()
    await enrichment_store.touch_users_of(session, mapping.id)  # type: ignore[arg-type]
    return row


async def import_rows(session: AsyncSession, mapping: EnrichmentMapping, rows: dict[str, dict[str, str]],
                      now: datetime, *, replace: bool) -> ImportReport:
    """Write parsed rows: add new keys, change differing ones; with `replace`, remove keys not in `rows`."""
    existing = {r.key: r for r in (await session.execute(select(EnrichmentMappingRow).where(
        EnrichmentMappingRow.mapping_id == mapping.id))).scalars()}
    report = ImportReport(0, 0, 0, 0)
    if (len(rows) if replace else len(existing.keys() | rows.keys())) > MAX_ROWS:
        raise InvalidInput(f"body: mapping {mapping.name!r} would hold more than {MAX_ROWS} rows")
    for key, labels in rows.items():
        row = existing.get(key)
        if row is None:
            session.add(EnrichmentMappingRow(mapping_id=mapping.id, key=key, labels=labels, updated_at=now))
            report.added += 1
        elif row.labels != labels:
            row.labels, row.updated_at = labels, now
            report.changed += 1
        else:
            report.unchanged += 1
    if replace:
        gone = [r.id for k, r in existing.items() if k not in rows]
        for i in range(0, len(gone), 500):
            await session.execute(delete(EnrichmentMappingRow).where(EnrichmentMappingRow.id.in_(gone[i:i + 500])))
        report.removed = len(gone)
    await session.flush()
    await enrichment_store.touch_users_of(session, mapping.id)  # type: ignore[arg-type]
    return report
