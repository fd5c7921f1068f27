"""/incidents: the incident list, newest first, filtered, keyset-paged.

Filters (all plain query parameters, so a filtered list is a link and the form works without JavaScript):
scope (all / mine / teams), channel, progress, severity, a start-time range (since / until, in the viewer's
time zone) and a search over title and labels.

Keyset paging (`?before=<id>`) keeps a page one index range scan however deep the list goes; an offset would
read and throw away every row before it. A page with a start-time range (since / until) is ordered by
(start_time, id) instead and keyed on the start time of the `before` incident, so it walks the start_time
index over the range alone: ordered by id, SQLite (which Vigil never ANALYZEs) walked the merged_into_id
index from the newest incident down to the range, every row in between read and dropped (bench/web_pages.py,
one day's page at 100k incidents: 18 ms of CPU a request, 298 ms p99 on a loaded machine; now 2 ms).

"My teams" means incidents of the channels that belong to one of the member's teams (Channel.team_ids), not
incidents where a team of theirs was paged: a delivery row records the member reached, not the team that led
to them, so "paged through my team" would mean reading every incident's frozen escalation rule. Channel
ownership is two small tables read once, and then `channel_id IN (...)` on an indexed column.

Search has no index to use (LIKE '%word%' on the title and on the labels' JSON text), so it is bounded: one
request looks at SEARCH_WINDOW incidents by id at most, and the page offers "Search older" from where it
stopped. A search for something rare therefore costs the same at 100k incidents as at 10k.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy import false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import auth, live
from bot.web.render import STATIC, page
from core.models import Channel, Delivery, Incident, Team, TimelineEntry
from core.types import Progress, Severity

PAGE_SIZE = 30
SEARCH_WINDOW = 5_000  # incidents (by id) one search request reads at most: 20,000 cost 27 ms of CPU (bench)
SEARCH_MAX = 100  # characters of a search kept
SCOPES = ("all", "mine", "teams")
PROGRESS = ("open", *(p.value for p in Progress))  # "open" = not Closed, what a responder looks at first
SEVERITIES = tuple(s.value for s in Severity)


LIVE_JS_VERSION = str(int((STATIC / "live_list.js").stat().st_mtime))  # in the script's URL: a new one is fetched


def _int(raw: str | None) -> int | None:
    raw = raw or ""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


def _moment(raw: str | None) -> str:
    """A date (YYYY-MM-DD) or a datetime-local value (YYYY-MM-DDTHH:MM), else ""."""
    raw = (raw or "").strip()
    if not raw.isascii() or len(raw) not in (10, 16):
        return ""
    try:
        (date if len(raw) == 10 else datetime).fromisoformat(raw)
    except ValueError:
        return ""
    return raw


def instant(raw: str, zone: str, *, end: bool) -> datetime | None:
    """A since/until value as a UTC instant in the viewer's zone; `end` gives the first instant after it, so
    "until 5 May" takes in all of that day and "until 10:00" all of that minute."""
    if not raw:
        return None
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = UTC
    if len(raw) == 10:
        day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
        return datetime.combine(day, time(), tz).astimezone(UTC)
    at = datetime.fromisoformat(raw).replace(tzinfo=tz) + timedelta(minutes=1 if end else 0)
    return at.astimezone(UTC)


@dataclass(frozen=True)
class ListFilter:
    """The list's filters, read leniently from the query: an unknown value means no filter."""

    scope: str = "all"
    progress: str = ""
    severity: str = ""
    before: int | None = None
    channel: int | None = None
    since: str = ""
    until: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query: dict[str, str]) -> ListFilter:
        return cls(scope=query.get("scope") if query.get("scope") in SCOPES else "all",
                   progress=query.get("progress") if query.get("progress") in PROGRESS else "",
                   severity=query.get("severity") if query.get("severity") in SEVERITIES else "",
                   before=_int(query.get("before")), channel=_int(query.get("channel")),
                   since=_moment(query.get("since")), until=_moment(query.get("until")),
                   q=" ".join((query.get("q") or "").split())[:SEARCH_MAX])

    def query(self, **change: object) -> str:
        """This filter as a query string, with `change` applied (None drops a key)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v not in (None, "", "all")})


async def team_channel_ids(db: AsyncSession, member_id: int) -> set[int]:
    """Channels owned by a team the member is in (team membership is a JSON list: read whole, as everywhere)."""
    teams = {t for t, ids in (await db.execute(select(Team.id, Team.member_ids))).all() if member_id in ids}
    if not teams:
        return set()
    return {c for c, owners in (await db.execute(select(Channel.id, Channel.team_ids))).all()
            if teams.intersection(owners)}


def _unindexed(column: Any) -> Any:
    """`column` as an expression no index can serve: SQLite's planner, without statistics, takes any equality
    on an indexed column (merged_into_id IS NULL holds for nearly every row) over a range; on a time-range
    page the start_time range is the one to walk. (SQLite documents a unary + for this; `+ 0` and `|| ''`
    say the same in PostgreSQL, whose planner has statistics and is not misled either way.)"""
    return column + 0 if isinstance(column.type, sa.Integer) else column.concat("")


def _statement(f: ListFilter, member_id: int, zone: str, team_channels: set[int] | None,
               search_floor: int | None):  # type: ignore[no-untyped-def]
    since, until = instant(f.since, zone, end=False), instant(f.until, zone, end=True)
    ranged = since is not None or until is not None
    col = _unindexed if ranged else (lambda c: c)
    stmt = select(Incident).where(col(Incident.merged_into_id).is_(None))
    if ranged:
        stmt = stmt.order_by(Incident.start_time.desc(), Incident.id.desc())
        if since is not None:
            stmt = stmt.where(Incident.start_time >= since)
        if until is not None:
            stmt = stmt.where(Incident.start_time < until)
        if f.before is not None:  # after the row `before` in (start_time, id) order
            at = select(Incident.start_time).where(Incident.id == f.before).scalar_subquery()
            stmt = stmt.where(Incident.start_time <= at,
                              or_(Incident.start_time < at, Incident.id < f.before))
    else:
        stmt = stmt.order_by(Incident.id.desc())
        if f.before is not None:
            stmt = stmt.where(Incident.id < f.before)
    if f.progress == "open":
        stmt = stmt.where(col(Incident.progress) != Progress.CLOSED.value)
    elif f.progress:
        stmt = stmt.where(col(Incident.progress) == f.progress)
    if f.severity:
        stmt = stmt.where(Incident.severity == f.severity)
    if f.channel is not None:
        stmt = stmt.where(col(Incident.channel_id) == f.channel)
    if f.scope == "mine":
        # Mine: incidents that paged me or that I acted on (responders are a JSON column, not queried inside).
        stmt = stmt.where(or_(
            col(Incident.id).in_(select(Delivery.incident_id).where(Delivery.member_id == member_id)),
            col(Incident.id).in_(select(TimelineEntry.incident_id).where(TimelineEntry.actor_id == member_id))))
    elif f.scope == "teams":
        stmt = stmt.where(col(Incident.channel_id).in_(sorted(team_channels)) if team_channels else false())
    if f.q:
        pattern = f.q.lower()
        stmt = stmt.where(Incident.id >= search_floor, or_(
            func.lower(Incident.title).contains(pattern, autoescape=True),
            # Labels' JSON text: a key or a value (or "key": "value" as stored) matches.
            func.lower(sa.cast(Incident.labels, sa.Text)).contains(pattern, autoescape=True)))
    return stmt.limit(PAGE_SIZE + 1)


def live_url(f: ListFilter, shown: dict[int, str], newest: int) -> str:
    """The page's live stream (bot/web/live_list.py): its filter, the rows it shows, the newest incident when it
    was read (a later one is new) and the version of its rows."""
    rows = ",".join(str(i) for i in shown)
    version = live.version_of_many(shown, tuple(shown))
    return "/incidents/live?" + "&".join(p for p in (f.query(), urlencode({"rows": rows, "top": newest, "v": version}))
                                         if p)


def rows_query(f: ListFilter, rows: list[Incident]) -> str:
    """A query that shows these rows again once newer incidents have come: by id, the page just above its top
    row. (By start time no such bound exists, since `before` excludes its own row: the same query then.)"""
    if rows and not (f.since or f.until):
        return f.query(before=rows[0].id + 1)
    return f.query()


def _search_floor(f: ListFilter, newest: int) -> int | None:
    if not f.q:
        return None
    top = f.before if f.before is not None else newest + 1
    return max(top - SEARCH_WINDOW, 0)


def statement(f: ListFilter, member_id: int, zone: str, team_channels: set[int] | None, newest: int):  # type: ignore[no-untyped-def]
    """The page's statement for the member (their scope and zone); `newest` is the newest incident's id."""
    return _statement(f, member_id, zone, team_channels, _search_floor(f, newest))


async def newest_id(db: AsyncSession) -> int:
    return (await db.execute(select(func.max(Incident.id)))).scalar() or 0


@auth.members_only
async def show_list(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    f = ListFilter.from_query(dict(request.query))
    team_channels = await team_channel_ids(db, who.member_id) if f.scope == "teams" else None
    newest = await newest_id(db)  # read first: an incident committed meanwhile is then counted as new (live_list)
    floor = _search_floor(f, newest)
    # Each row with its live version, from the same statement: what the page shows is what the version says.
    read = (await db.execute(_statement(f, who.member_id, who.time_zone, team_channels, floor)
                             .add_columns(*live.timeline_columns()))).all()
    more, read = len(read) > PAGE_SIZE, read[:PAGE_SIZE]
    rows = [r for r, _, _ in read]
    shown = {r.id: live.version_of(r.updated_at, r.alert_event_cnt, n, m) for r, n, m in read}
    # Channel names for the rows and for the filter's choices: channels are few (configuration, not data).
    channels = dict((await db.execute(select(Channel.id, Channel.name).order_by(Channel.name))).all())
    next_query = f.query(before=rows[-1].id) if more else None
    search_older = None
    if f.q and not more and floor and floor > ((await db.execute(select(func.min(Incident.id)))).scalar() or 0):
        search_older = f.query(before=floor)  # incidents below the window are left to read
    return page(request, "incidents.html", viewer=who, incidents=rows, channels=channels, filter=f,
                scopes=SCOPES, progresses=PROGRESS, severities=SEVERITIES, next_query=next_query,
                search_older=search_older, search_window=SEARCH_WINDOW,
                first_query=f.query(before=None) if f.before is not None else None,
                live_url=live_url(f, shown, newest), live_rows="/incidents?" + rows_query(f, rows),
                live_js_version=LIVE_JS_VERSION)


def setup(app: web.Application) -> None:
    app.router.add_get("/incidents", show_list)
