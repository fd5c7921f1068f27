"""Auto-match: fill a mapping table from the platform's own directory, by member email or phone.

Each platform adapter provides a `Directory` (Slack users.lookupByEmail, Feishu batch_get_id,
DingTalk user by mobile, WeCom getuserid by mobile/email, Teams by email); this module only
walks the members and reports what it could not match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DeliveryError
from core.models import MappingRow, Member
from core.types import Platform
from mapping_tables.store import upsert


class Directory(Protocol):
    platform: ClassVar[Platform]

    async def lookup(self, *, email: str | None, phone: str | None) -> tuple[str, str] | None:
        """The (im_user_id, id_type) of the person with this email or phone, or None if unknown."""
        ...


@dataclass
class MatchReport:
    matched: list[dict[str, object]] = field(default_factory=list)
    already: int = 0
    unmatched: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"matched": self.matched, "already_linked": self.already, "unmatched": self.unmatched}


async def auto_match(session: AsyncSession, directory: Directory, now: datetime) -> MatchReport:
    """Link every member not yet in the platform's table whom the directory knows; the caller commits."""
    report = MatchReport()
    linked = set((await session.execute(select(MappingRow.member_id).where(
        MappingRow.platform == directory.platform.value, MappingRow.stale.is_(False)))).scalars())
    for member in (await session.execute(select(Member).order_by(Member.id))).scalars():
        if member.id in linked:
            report.already += 1
            continue
        if not member.email and not member.phone:
            report.unmatched.append({"member_id": member.id, "name": member.name,
                                     "reason": "the member has no email or phone to look up"})
            continue
        try:
            found = await directory.lookup(email=member.email, phone=member.phone)
        except DeliveryError as exc:
            report.unmatched.append({"member_id": member.id, "name": member.name,
                                     "reason": f"directory lookup failed: {exc}"})
            continue
        if found is None:
            report.unmatched.append({"member_id": member.id, "name": member.name,
                                     "reason": f"no {directory.platform.value} user with this email or phone"})
            continue
        im_id, id_type = found
        taken = (await session.execute(select(MappingRow).where(
            MappingRow.platform == directory.platform.value, MappingRow.im_user_id == im_id))).scalar_one_or_none()
        if taken is not None and taken.member_id != member.id and not taken.stale:
            report.unmatched.append({"member_id": member.id, "name": member.name,
                                     "reason": f"{im_id} is already linked to member {taken.member_id}"})
            continue
        await upsert(session, directory.platform, member.id, im_id, id_type, now)
        report.matched.append({"member_id": member.id, "name": member.name, "im_user_id": im_id})
    return report
