"""A member's on-call shifts across every schedule: those naming the member, and those naming a team the
member is in. One reading for the member's iCalendar feeds and the personal center."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Schedule, Team
from core.schedules import MemberRef, Shift, TeamRef, parse_schedule, preview


async def shifts_of(session: AsyncSession, member_id: int, start: datetime, end: datetime) -> list[tuple[str, Shift]]:
    """(schedule name, shift) for each of the member's shifts overlapping [start, end), by start time; a shift's
    `role_id` names the on-call role they fill in it, if its layer has one."""
    teams = {t.id for t in (await session.execute(select(Team))).scalars() if member_id in t.member_ids}
    mine: list[tuple[str, Shift]] = []
    # A disabled schedule has nobody on call (core/paging.py): it shows no shifts either.
    for s in (await session.execute(select(Schedule).where(Schedule.status == "enabled")
                                    .order_by(Schedule.id))).scalars():
        for shift in preview(parse_schedule(s.definition), start, end):
            if any((isinstance(p, MemberRef) and p.member_id == member_id)
                   or (isinstance(p, TeamRef) and p.team_id in teams) for p in shift.participants):
                mine.append((s.name, shift))
    return sorted(mine, key=lambda x: x[1].start)
