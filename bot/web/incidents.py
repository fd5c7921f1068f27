"""/incidents/{id}: the incident page (readable and usable without JavaScript), and the signed links that open it.

Its actions are forms (bot/web/incident_actions.py); with JavaScript, static/live.js follows the page's
stream (bot/web/live.py) and replaces the parts that changed.

`?t=<token>` (core/links.py) signs the browser in as the member the link was sent to, with their current
role, then redirects to the clean URL so the token does not stay in the address bar or the history. A
forged, expired or foreign token changes nothing: the clean URL then asks for sign-in as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cards.timeline_words import SOURCES, headline, note, people
from bot.keys import SESSIONS, SETTINGS
from bot.web import auth, incident_actions, live
from bot.web.incident_escalation import escalation_view
from bot.web.render import page, redirect
from core import incidents, sign_in
from core.clock import utcnow
from core.errors import NotFound
from core.links import read_token
from core.models import Channel, Incident, Member


def _names_needed(incident: Incident, entries: list[Any]) -> set[int]:
    return {r["person_id"] for r in incident.responders} | people(entries)


async def _names(db: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await db.execute(select(Member.id, Member.name).where(Member.id.in_(ids)))
    return {i: n for i, n in rows.all()}


def _at(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


async def incident_view(db: AsyncSession, incident: Incident) -> dict[str, Any]:
    """Everything the incident page shows, read in a handful of queries."""
    channel = await db.get(Channel, incident.channel_id)
    alerts = await incidents.alerts_of(db, incident.id)
    entries = await incidents.timeline(db, incident.id)
    names = await _names(db, _names_needed(incident, entries))
    return {
        "incident": incident,
        "channel": channel.name if channel else f"channel {incident.channel_id}",
        "alerts": alerts,
        "responders": [{"name": names.get(r["person_id"], f"member {r['person_id']}"),
                        "assigned_at": _at(r.get("assigned_at")), "acknowledged_at": _at(r.get("acknowledged_at"))}
                       for r in incident.responders],
        "timeline": [{"at": e.at, "text": headline(e.kind, e.actor_id, e.source, e.detail, names),
                      "note": note(e.kind, e.detail), "source": SOURCES.get(e.source, e.source)}
                     for e in reversed(entries)],  # newest first: at 3 a.m. the latest matters most
        **await escalation_view(db, incident),
    }


async def _follow_link(request: web.Request, incident_id: int) -> web.StreamResponse:
    """Sign in with a link token when it is genuine, then go to the clean URL either way."""
    clean = f"/incidents/{incident_id}"
    if not auth.enabled(request):
        return redirect(clean)
    grant = read_token(request.app[SETTINGS].secret_key, request.query["t"], incident_id, utcnow())
    if grant is None:
        return redirect(clean)
    async with request.app[SESSIONS]() as db:
        member = await db.get(Member, grant.member_id)
        if member is None:
            return redirect(clean)
        who = await auth.viewer(request, db)
        if who is None or who.member_id != member.id:
            login = await sign_in.login_of(db, member.id)
            await auth.begin(request, member, login.epoch if login else 0, "link")
    return redirect(clean)


async def show_incident(request: web.Request) -> web.StreamResponse:
    incident_id = int(request.match_info["id"])
    if "t" in request.query:
        return await _follow_link(request, incident_id)
    return await _incident_page(request)


@auth.members_only
async def _incident_page(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    incident_id = int(request.match_info["id"])
    # The version first: a change made while the page is read then makes its stream say "changed" once more,
    # instead of going unseen.
    version = (await live.versions(db, {incident_id})).get(incident_id)
    try:
        incident = await incidents.get(db, incident_id)
    except NotFound:
        return page(request, "message.html", 404, viewer=who, title="No such incident",
                    message=f"Incident {incident_id} does not exist (or was removed).")
    context = {**await incident_view(db, incident), **await incident_actions.actions_view(db, incident, who.member_id)}
    return page(request, "incident.html", viewer=who, flash=await incident_actions.take_flash(request),
                live_url=f"/incidents/{incident_id}/live?v={version}", live_js_version=live.SCRIPT_VERSION, **context)


def setup(app: web.Application) -> None:
    app.router.add_get(r"/incidents/{id:\d{1,18}}", show_incident)
