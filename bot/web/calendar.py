"""The calendar subscription URL: the member's on-call shifts as an iCalendar feed that calendar apps fetch
by URL alone (they cannot send the Open API's bearer header). The secret in the URL is derived from
VIGIL_SECRET_KEY (core/calendar_feed.py); rotating it from the page ends the old URL at once.

  GET  /calendar/{member_id}/{secret}.ics    the feed (next 30 days, as /api/v1/members/{id}/ical)
  POST /account/calendar                     turn the feed on, or give it a new URL
  POST /account/calendar/off                 turn it off
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.api.schedules import member_feed
from bot.keys import SESSIONS, SETTINGS
from bot.web import account, auth
from bot.web.render import redirect
from core import calendar_feed
from core.clock import utcnow
from core.models import Member

account.DONE.update({
    "calendar": ("calendar", "Calendar URL ready. A URL you gave out before no longer works."),
    "calendar-off": ("calendar", "Calendar feed off."),
})


def _url(request: web.Request, member_id: int, generation: int) -> str:
    settings = request.app[SETTINGS]
    return settings.resolved_base_url() + calendar_feed.feed_path(settings.secret_key, member_id, generation)


@account.section
async def context(request: web.Request, db: AsyncSession, who: auth.Viewer) -> dict[str, Any]:
    feed = await calendar_feed.feed_of(db, who.member_id)
    url = _url(request, who.member_id, feed.generation) if feed else ""
    return {"calendar_url": url, "webcal_url": url.replace("https://", "webcal://", 1).replace(
        "http://", "webcal://", 1) if url else ""}


@auth.members_only
async def rotate(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    await calendar_feed.rotate(db, who.member_id, utcnow())
    await db.commit()
    return redirect("/account?done=calendar#calendar")


@auth.members_only
async def turn_off(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    await calendar_feed.turn_off(db, who.member_id)
    await db.commit()
    return redirect("/account?done=calendar-off#calendar")


async def feed(request: web.Request) -> web.StreamResponse:
    """The feed itself: no session, no header; the URL's secret is the key. Any mismatch is a plain 404, the
    same for an unknown member, a feed turned off and an old secret, so the answer tells a guesser nothing."""
    member_id = int(request.match_info["member_id"])
    async with request.app[SESSIONS]() as db:
        member = await db.get(Member, member_id) if member_id < 2**63 else None
        if member is None or not await calendar_feed.opens(db, request.app[SETTINGS].secret_key, member_id,
                                                            request.match_info["secret"]):
            raise web.HTTPNotFound(text="No calendar at this address. Copy the current one from your Vigil "
                                        "account page.")
        feed_ = await calendar_feed.feed_of(db, member_id)
        assert feed_ is not None
        response = await member_feed(db, member, utcnow(), _url(request, member_id, feed_.generation))
    # The URL is the credential: keep it out of shared caches and of the Referer of anything it links to.
    response.headers.update({"Cache-Control": "private, no-cache", "Referrer-Policy": "no-referrer"})
    return response


def setup(app: web.Application) -> None:
    app.router.add_get(r"/calendar/{member_id:\d{1,19}}/{secret:[A-Za-z0-9_-]{1,64}}.ics", feed)
    app.router.add_post("/account/calendar", rotate)
    app.router.add_post("/account/calendar/off", turn_off)
