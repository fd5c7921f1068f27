"""/incidents: the incident list, newest first, filtered (mine / all, progress, severity), keyset-paged.

Keyset paging (`?before=<id>`) keeps a page one index range scan however deep the list goes; an offset would
read and throw away every row before it. Filters are plain query parameters, so a filtered list is a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import auth
from bot.web.render import page
from core.models import Channel, Delivery, Incident, TimelineEntry
from core.types import Progress, Severity

PAGE_SIZE = 30
SCOPES = ("all", "mine")
PROGRESS = ("open", *(p.value for p in Progress))  # "open" = not Closed, what a responder looks at first
SEVERITIES = tuple(s.value for s in Severity)


@dataclass(frozen=True)
class ListFilter:
    """The list's filters, read leniently from the query: an unknown value means no filter."""

    scope: str = "all"
    progress: str = ""
    severity: str = ""
    before: int | None = None

    @classmethod
    def from_query(cls, query: dict[str, str]) -> ListFilter:
        before = query.get("before", "")
        return cls(scope=query.get("scope") if query.get("scope") in SCOPES else "all",
                   progress=query.get("progress") if query.get("progress") in PROGRESS else "",
                   severity=query.get("severity") if query.get("severity") in SEVERITIES else "",
                   before=int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None)

    def query(self, **change: object) -> str:
        """This filter as a query string, with `change` applied (None drops a key)."""
        values = {"scope": self.scope, "progress": self.progress, "severity": self.severity, "before": self.before}
        values.update(change)
        return urlencode({k: v for k, v in values.items() if v not in (None, "", "all")})


def _statement(f: ListFilter, member_id: int):  # type: ignore[no-untyped-def]
    stmt = select(Incident).where(Incident.merged_into_id.is_(None)).order_by(Incident.id.desc())
    if f.before is not None:
        stmt = stmt.where(Incident.id < f.before)
    if f.progress == "open":
        stmt = stmt.where(Incident.progress != Progress.CLOSED.value)
    elif f.progress:
        stmt = stmt.where(Incident.progress == f.progress)
    if f.severity:
        stmt = stmt.where(Incident.severity == f.severity)
    if f.scope == "mine":
        # Mine: incidents that paged me or that I acted on (responders are a JSON column, not queried inside).
        stmt = stmt.where(or_(
            Incident.id.in_(select(Delivery.incident_id).where(Delivery.member_id == member_id)),
            Incident.id.in_(select(TimelineEntry.incident_id).where(TimelineEntry.actor_id == member_id))))
    return stmt.limit(PAGE_SIZE + 1)


@auth.members_only
async def show_list(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    f = ListFilter.from_query(dict(request.query))
    rows = list((await db.execute(_statement(f, who.member_id))).scalars())
    more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    ids = {i.channel_id for i in rows}
    channels = dict((await db.execute(select(Channel.id, Channel.name).where(Channel.id.in_(ids)))).all()) \
        if ids else {}
    return page(request, "incidents.html", viewer=who, incidents=rows, channels=channels, filter=f,
                scopes=SCOPES, progresses=PROGRESS, severities=SEVERITIES,
                next_query=f.query(before=rows[-1].id) if more else None,
                first_query=f.query(before=None) if f.before is not None else None)


def setup(app: web.Application) -> None:
    app.router.add_get("/incidents", show_list)
