"""Live updates of an open incident list: GET /incidents/live?<the list's filter>&rows=..&top=..&v=.., a
stream of server-sent events from the same hub as the incident page's (bot/web/live.py).

The stream watches the incidents the page's rows show (their versions, as an incident page's) and says
"changed" when one of them does: static/live_list.js then fetches the page again with the browser's own
session and swaps those rows. On the first page it also counts the incidents newer than the page (`top`,
the newest id when the page was read) that the page's own filter shows this member: the list's statement
itself (bot/web/incident_list.py), with the member's scope (mine, my teams) and time zone. It says "new"
with the count, and the script offers "N new incidents: show". The count runs only when the hub sees a newer
incident than at its last count, so a quiet installation costs one max(id) a second for all list streams.
A stream never carries incident data: what a member sees comes from the page, fetched with their session.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS
from bot.web import auth, incident_list, live
from core.models import Incident

MAX_NEW = 99  # counted at most; the page says "99+"


def _rows(raw: str) -> tuple[int, ...] | None:
    """The page's row ids (at most a page of them), or None when malformed."""
    if not raw:
        return ()
    ids = [incident_list._int(part) for part in raw.split(",")]
    if len(ids) > incident_list.PAGE_SIZE or any(i is None for i in ids):
        return None
    return tuple(i for i in ids if i is not None)


def newer_counter(f: incident_list.ListFilter, member_id: int, zone: str, team_channels: set[int] | None,
                  top: int):  # type: ignore[no-untyped-def]
    """How many incidents newer than `top` the first page of filter `f` would show the member (at most
    MAX_NEW + 1)."""
    first = dataclasses.replace(f, before=None)

    async def count(db: AsyncSession) -> int:
        newest = await incident_list.newest_id(db)
        stmt = (incident_list.statement(first, member_id, zone, team_channels, newest)
                .where(Incident.id > top).with_only_columns(Incident.id).limit(MAX_NEW + 1))
        return len((await db.execute(stmt)).all())

    return count


async def list_stream(request: web.Request) -> web.StreamResponse:
    if not auth.enabled(request):
        return live._refused(503, auth.OFF_MESSAGE)
    rows = _rows(request.query.get("rows", ""))
    top = incident_list._int(request.query.get("top"))
    if rows is None or top is None:
        return live._refused(400, "rows must be at most a page of incident ids and top an incident id.")
    f = incident_list.ListFilter.from_query(dict(request.query))
    async with request.app[SESSIONS]() as db:
        who = await auth.viewer(request, db)
        if who is None:
            return live._refused(401, "Sign in to follow the incident list live.")
        team_channels = await incident_list.team_channel_ids(db, who.member_id) if f.scope == "teams" else None
        now = live.version_of_many(await live.versions(db, set(rows)), rows)
    session = await get_session(request)
    # Only the first page hears of newer incidents: an older page is a place in history.
    newer = newer_counter(f, who.member_id, who.time_zone, team_channels, top) if f.before is None else None
    stream = live.Stream(rows, who.member_id, session.get("role", ""), session.get("epoch", 0), who.csrf, now,
                         newer=newer)
    return await live.serve(request, stream)


def setup(app: web.Application) -> None:
    app.router.add_get("/incidents/live", list_stream)
