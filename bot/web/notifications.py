"""The personal center's notification preferences: for each severity the media that page the member, in
order, and the fallback chain tried when a medium fails. The same data as the Open API's members endpoints
(Member.preferences and Member.fallback, validated by core.notify).

  POST /account/notifications     save them: fields <Severity>-1..5 and fallback-1..5, each a medium or empty
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import account, auth
from bot.web.render import redirect
from core.clock import utcnow
from core.escalation import MEDIA
from core.models import Member
from core.notify import DEFAULT_FALLBACK, Preferences, check_media

SEVERITIES = ("Critical", "Warning", "Info")
SLOTS = len(MEDIA)
LABELS = {"im": "Chat app message", "sms": "Text message (SMS)", "voice": "Phone call", "email": "E-mail",
          "app": "Vigil app (push)"}

account.DONE["notifications"] = ("notifications", "Notification preferences saved.")


@account.section
async def context(_request: web.Request, db: AsyncSession, who: auth.Viewer) -> dict[str, Any]:
    member = await db.get(Member, who.member_id)
    assert member is not None
    return {"severities": SEVERITIES, "media": MEDIA, "media_labels": LABELS, "slots": range(SLOTS),
            "preferences": Preferences.model_validate(member.preferences or {}).model_dump(),
            "fallback": list(member.fallback or DEFAULT_FALLBACK)}


def chosen(form: Any, name: str) -> list[str]:
    """The media picked in the `name`-1.. selects, in order, blanks skipped."""
    return [v for i in range(1, SLOTS + 1) if (v := str(form.get(f"{name}-{i}", "")).strip())]


def read_form(form: Any) -> tuple[dict[str, list[str]], list[str]]:
    """(preferences, fallback) from the form, or ValueError naming the row at fault."""
    rows = {name: chosen(form, name) for name in (*SEVERITIES, "fallback")}
    for name, media in rows.items():
        label = "Fallback" if name == "fallback" else name
        if not media:
            raise ValueError(f"{label}: choose at least one medium")
        try:
            check_media(media)
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    fallback = rows.pop("fallback")
    return rows, fallback


@auth.members_only
async def save(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    try:
        prefs, fallback = read_form(await request.post())
        preferences = Preferences.model_validate(prefs).model_dump()
    except (ValueError, ValidationError) as exc:
        return await account.show(request, db, who, 400, error=f"{exc}.", at="notifications")
    member = await db.get(Member, who.member_id)
    assert member is not None
    member.preferences, member.fallback, member.updated_at = preferences, fallback, utcnow()
    await db.commit()
    return redirect("/account?done=notifications#notifications")


def setup(app: web.Application) -> None:
    app.router.add_post("/account/notifications", save)
