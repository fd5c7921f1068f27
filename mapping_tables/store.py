"""Mapping-table rows and the one resolver every adapter uses (IM user -> member)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import VigilError
from core.models import MappingRow, Member
from core.types import Platform


class NotLinked(VigilError):
    """The IM user has no (current) row in the platform's mapping table."""

    status = 403
    code = "AccessDenied"


def not_linked_message(platform: Platform, im_user_id: str, consequence: str = "so nothing was changed") -> str:
    """The polite reply an unmapped user gets in chat: what it means for them, and how to fix it."""
    return (f"Your {platform.value} account ({im_user_id}) is not linked to a Vigil member, {consequence}. "
            f"Ask a Vigil admin to add you to the {platform.value} mapping table "
            f"(Open API: POST /api/v1/mapping-tables/{platform.value}/rows, or a CSV import).")


async def resolve(session: AsyncSession, platform: Platform, im_user_id: str) -> Member:
    """The member behind an IM identity, or NotLinked (unknown, stale, or member deleted)."""
    row = (await session.execute(select(MappingRow).where(
        MappingRow.platform == platform.value, MappingRow.im_user_id == im_user_id))).scalar_one_or_none()
    member = await session.get(Member, row.member_id) if row is not None and not row.stale else None
    if member is None:
        raise NotLinked(not_linked_message(platform, im_user_id))
    return member


async def resolve_mention(session: AsyncSession, platform: Platform, mention: str) -> Member:
    """The member a plain-text mention names (WeCom app messages: `@<userid>` or `@<name>`): the platform user
    id in the mapping table, else the one member of that name (case-insensitive) who has a current row in the
    platform's mapping table; NotLinked when neither, or when the name is ambiguous."""
    try:
        return await resolve(session, platform, mention)
    except NotLinked:
        pass
    rows = await session.execute(select(Member).join(MappingRow, MappingRow.member_id == Member.id).where(
        MappingRow.platform == platform.value, MappingRow.stale.is_(False),
        sa.func.lower(Member.name) == mention.lower()))
    found = list({m.id: m for m in rows.scalars()}.values())  # a member may have several rows
    if len(found) != 1:
        raise NotLinked(not_linked_message(platform, mention))
    return found[0]


async def identities(session: AsyncSession, member_id: int) -> list[MappingRow]:
    """Every current IM identity of a member (for direct messages), oldest first."""
    rows = await session.execute(select(MappingRow).where(MappingRow.member_id == member_id,
                                                          MappingRow.stale.is_(False)).order_by(MappingRow.id))
    return list(rows.scalars())


async def mark_stale(session: AsyncSession, platform: Platform, im_user_id: str, now: datetime) -> bool:
    """The platform says this user is gone: keep the row for the record, stop using it."""
    row = (await session.execute(select(MappingRow).where(
        MappingRow.platform == platform.value, MappingRow.im_user_id == im_user_id))).scalar_one_or_none()
    if row is None or row.stale:
        return False
    row.stale, row.updated_at = True, now
    return True


@dataclass
class Upsert:
    outcome: str  # added | changed | unchanged
    row: MappingRow


async def upsert(session: AsyncSession, platform: Platform, member_id: int, im_user_id: str, id_type: str,
                 now: datetime) -> Upsert:
    """Link `im_user_id` to `member_id` (one IM id maps to one member; a member may have several ids)."""
    row = (await session.execute(select(MappingRow).where(
        MappingRow.platform == platform.value, MappingRow.im_user_id == im_user_id))).scalar_one_or_none()
    if row is None:
        row = MappingRow(platform=platform.value, member_id=member_id, im_user_id=im_user_id, id_type=id_type,
                         created_at=now, updated_at=now)
        session.add(row)
        return Upsert("added", row)
    if (row.member_id, row.id_type, row.stale) == (member_id, id_type, False):
        return Upsert("unchanged", row)
    row.member_id, row.id_type, row.stale, row.updated_at = member_id, id_type, False, now
    return Upsert("changed", row)
