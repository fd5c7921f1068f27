"""The personal center's read-only areas: the member's upcoming on-call shifts (the next 14 days across every
schedule, as their calendar feed reads them: core/member_shifts.py) and the IM accounts the mapping tables
link to them (an admin maintains those rows; a stale one no longer reaches anyone)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import account, auth
from core.clock import utcnow
from core.member_shifts import shifts_of
from core.models import MappingRow, OncallRole

UPCOMING = timedelta(days=14)
PLATFORMS = {"slack": "Slack", "feishu": "Feishu / Lark", "dingtalk": "DingTalk", "wecom": "WeCom",
             "teams": "Microsoft Teams", "telegram": "Telegram", "zoom": "Zoom"}


@account.section
async def context(_request: web.Request, db: AsyncSession, who: auth.Viewer) -> dict[str, Any]:
    now = utcnow()
    mine = await shifts_of(db, who.member_id, now, now + UPCOMING)
    ids = {s.role_id for _name, s in mine if s.role_id is not None}
    roles = dict((await db.execute(select(OncallRole.id, OncallRole.name).where(OncallRole.id.in_(ids)))).all()) \
        if ids else {}
    shifts = [{"schedule": name, "role": roles.get(s.role_id), "start": s.start, "end": s.end,
               "now": s.start <= now < s.end} for name, s in mine]
    rows = (await db.execute(select(MappingRow).where(MappingRow.member_id == who.member_id)
                             .order_by(MappingRow.platform, MappingRow.id))).scalars()
    linked = [{"platform": PLATFORMS.get(r.platform, r.platform), "user": r.im_user_id, "id_type": r.id_type,
               "stale": r.stale} for r in rows]
    return {"shifts": shifts, "upcoming_days": UPCOMING.days, "linked": linked}


def setup(_app: web.Application) -> None:
    """Nothing to post: both areas are read-only."""
