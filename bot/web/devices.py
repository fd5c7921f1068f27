"""The personal center's devices: the browsers and installed apps that get the member's `app` pages by Web
Push (core/push.py), and a button that subscribes this one (static/account.js calls app.js's
vigilEnableNotifications(), which posts to /push/subscriptions; bot/web/push.py).

  POST /account/devices/{id}/remove    stop pushing to one of the member's devices
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.media.web_push import origin
from bot.web import account, auth
from bot.web.render import redirect
from core import push
from core.models import PushSubscription

account.DONE["device-removed"] = ("devices", "That device no longer gets pages.")

# First match wins: Edge and Opera also say "Chrome", and every iPhone browser says "Safari".
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("CriOS/", "Chrome"),
            ("FxiOS/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"))
SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
           ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device_name(user_agent: str) -> str:
    """A short name a person recognises, e.g. "Chrome on Android", from a browser's User-Agent."""
    browser = next((name for mark, name in BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in SYSTEMS if mark in user_agent), "")
    if re.search(r"Headless", user_agent):
        browser = f"Headless {browser}".strip()
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"


@account.section
async def context(_request: web.Request, db: AsyncSession, who: auth.Viewer) -> dict[str, Any]:
    rows = await push.subscriptions_of(db, who.member_id)
    return {"devices": [{"id": s.id, "name": device_name(s.user_agent), "service": origin(s.endpoint),
                         "since": s.created_at} for s in rows]}


@auth.members_only
async def remove(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    sub_id = int(request.match_info["id"])
    row = await db.get(PushSubscription, sub_id) if sub_id < 2**63 else None
    if row is None or row.member_id != who.member_id:  # another member's device is not found, not forbidden
        return await account.show(request, db, who, 404, error="No such device of yours.", at="devices")
    await push.remove(db, [row.id])
    await db.commit()
    return redirect("/account?done=device-removed#devices")


def setup(app: web.Application) -> None:
    app.router.add_post(r"/account/devices/{id:\d{1,19}}/remove", remove)
