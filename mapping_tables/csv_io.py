"""CSV import (with a dry-run report) and export of a platform's mapping table.

Import columns: `member` (a member id or email), `im_user_id`, optional `id_type`.
Every line is judged before anything is written; a dry run writes nothing, a real run
writes the accepted lines in one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import MappingRow, Member
from core.types import Platform
from mapping_tables.formats import check_identity
from mapping_tables.store import upsert

MAX_ROWS = 10_000
EXPORT_COLUMNS = ["member_id", "member_email", "member_name", "im_user_id", "id_type", "stale"]


@dataclass
class ImportReport:
    dry_run: bool
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "added": self.added, "changed": self.changed, "unchanged": self.unchanged,
                "rejected": self.rejected}


async def import_csv(session: AsyncSession, platform: Platform, text: str, now: datetime, *,
                     dry_run: bool) -> ImportReport:
    """Judge every line, then (unless dry_run) apply the accepted ones; the caller commits."""
    report = ImportReport(dry_run=dry_run)
    # newline="": the csv module reads line breaks itself, so a bare \r inside a line is data, not an error.
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        lines = list(reader)
    except csv.Error as exc:  # e.g. a field past the csv module's size limit
        raise ValueError(f"the CSV could not be read: {exc}") from None
    if not reader.fieldnames or not {"member", "im_user_id"} <= {f.strip() for f in reader.fieldnames}:
        raise ValueError("the CSV needs a header with the columns member, im_user_id (and optionally id_type)")
    members = {m.id: m for m in (await session.execute(select(Member))).scalars()}
    by_email = {m.email.lower(): m for m in members.values() if m.email}
    existing = {r.im_user_id: r for r in (await session.execute(
        select(MappingRow).where(MappingRow.platform == platform.value))).scalars()}
    seen: dict[str, int] = {}
    accepted: list[tuple[int, str, str]] = []
    for line_no, raw in enumerate(lines, start=2):
        if line_no - 1 > MAX_ROWS:
            raise ValueError(f"at most {MAX_ROWS} rows per import")
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}

        def reject(reason: str, row: dict[str, str] = row, line_no: int = line_no) -> None:
            report.rejected.append({"line": line_no, "member": row.get("member", ""),
                                    "im_user_id": row.get("im_user_id", ""), "reason": reason})

        ref, im_id = row.get("member", ""), row.get("im_user_id", "")
        member = members.get(int(ref)) if ref.isdigit() else by_email.get(ref.lower())
        if member is None:
            reject(f"unknown member {ref!r}")
            continue
        try:
            id_type = check_identity(platform, im_id, row.get("id_type") or None)
        except ValueError as exc:
            reject(f"bad format: {exc}")
            continue
        if im_id in seen:
            reject(f"duplicate IM id: {im_id} is also on line {seen[im_id]}")
            continue
        seen[im_id] = line_no
        old = existing.get(im_id)
        if old is not None and old.member_id != member.id and not old.stale:
            other = members.get(old.member_id)
            reject(f"duplicate IM id: {im_id} is already linked to {other.name if other else old.member_id}")
            continue
        if old is None:
            report.added += 1
        elif (old.member_id, old.id_type, old.stale) == (member.id, id_type, False):
            report.unchanged += 1
        else:
            report.changed += 1
        accepted.append((member.id, im_id, id_type))
    if not dry_run:
        for member_id, im_id, id_type in accepted:
            await upsert(session, platform, member_id, im_id, id_type, now)
    return report


async def export_csv(session: AsyncSession, platform: Platform) -> str:
    """The platform's mapping table as CSV, importable again (member = member id)."""
    rows = await session.execute(
        select(MappingRow, Member).join(Member, Member.id == MappingRow.member_id)
        .where(MappingRow.platform == platform.value).order_by(MappingRow.id))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["member", *EXPORT_COLUMNS[1:]])
    for row, member in rows:
        writer.writerow([member.id, member.email or "", member.name, row.im_user_id, row.id_type,
                         "yes" if row.stale else ""])
    return out.getvalue()


async def count(session: AsyncSession, platform: Platform) -> int:
    return (await session.execute(select(func.count()).select_from(MappingRow).where(
        MappingRow.platform == platform.value))).scalar_one()
