"""/account: the personal center. This module draws the page and keeps the member's own sign-in settings
(password and the TOTP second factor); each other area of the page is its own module that adds a section
here (`section`): contacts.py, notifications.py, oncall.py, calendar.py, devices.py, tokens.py.

Changing the password or second factor needs the current password when there is one, so a session opened by
a link token (or a browser left signed in) cannot lock the member out. A member who arrived by a link and has
no password yet may set a first one: that is how a member gets a password without an admin. This browser
stays signed in after a change; the member's other sessions end (the epoch rises).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SETTINGS
from bot.web import auth
from bot.web.render import page, redirect
from core import passwords, sign_in, totp
from core.clock import utcnow
from core.errors import InvalidInput
from core.models import Member
from core.models.web import MemberLogin

# What each section adds to the page's context, in page order.
Section = Callable[[web.Request, AsyncSession, auth.Viewer], Awaitable[dict[str, Any]]]
SECTIONS: list[Section] = []
# ?done=<key> after a change: which section says so, and what it says.
DONE: dict[str, tuple[str, str]] = {
    "password": ("password", "Password saved. Your other sessions were signed out."),
    "totp": ("second-factor", "Second factor on. Sign-in now asks for a code."),
    "totp-off": ("second-factor", "Second factor off."),
}


def section(fn: Section) -> Section:
    """Register a page area's context (at import; bot/web/__init__.py imports every area)."""
    SECTIONS.append(fn)
    return fn


async def show(request: web.Request, db: AsyncSession, who: auth.Viewer, status: int = 200, *, error: str = "",
               at: str = "", **context: Any) -> web.Response:
    """The whole page; `error` is shown in section `at` (an element id), or at the top."""
    login = await sign_in.login_of(db, who.member_id)
    enrol = (await get_session(request)).get("enrol")
    account = who.email or f"member {who.member_id}"
    parts: dict[str, Any] = {}
    for fn in SECTIONS:
        parts.update(await fn(request, db, who))
    done_at, done_text = DONE.get(request.query.get("done", ""), ("", ""))
    return page(request, "account.html", status, viewer=who, has_password=bool(login and login.password_hash),
                has_totp=bool(login and login.totp_sealed), min_length=passwords.MIN_LENGTH,
                enrol_key=totp.grouped(enrol) if enrol else "",
                enrol_uri=totp.enrolment_uri(enrol, account) if enrol else "",
                error=error, error_at=at, done_at=done_at, done_text=done_text, **{**parts, **context})


async def _current_password_ok(login: MemberLogin | None, given: str) -> bool:
    """True without a password yet; else whether `given` is it."""
    if login is None or login.password_hash is None:
        return True
    return await sign_in.check_password_of(login, given)


async def _stay_signed_in(request: web.Request, db: AsyncSession, who: auth.Viewer, epoch: int) -> None:
    member = await db.get(Member, who.member_id)
    assert member is not None
    await auth.begin(request, member, epoch, who.via)


@auth.members_only
async def show_account(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    return await show(request, db, who)


@auth.members_only
async def change_password(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    form = await request.post()
    login = await sign_in.login_of(db, who.member_id)
    if not await _current_password_ok(login, str(form.get("current", ""))):
        return await show(request, db, who, 400, error="The current password is not right.", at="password")
    new = str(form.get("password", ""))
    if new != str(form.get("repeat", "")):
        return await show(request, db, who, 400, error="The two new passwords differ.", at="password")
    try:
        row = await sign_in.set_password(db, who.member_id, new, utcnow())
    except InvalidInput as exc:
        return await show(request, db, who, 400, error=str(exc).removeprefix("password: ").capitalize() + ".",
                          at="password")
    await db.commit()
    await _stay_signed_in(request, db, who, row.epoch)
    return redirect("/account?done=password")


@auth.members_only
async def start_totp(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    form = await request.post()
    login = await sign_in.login_of(db, who.member_id)
    if login is None or login.password_hash is None:
        return await show(request, db, who, 400, error="Set a password before adding a second factor.",
                          at="second-factor")
    if not await _current_password_ok(login, str(form.get("current", ""))):
        return await show(request, db, who, 400, error="The current password is not right.", at="second-factor")
    (await get_session(request))["enrol"] = totp.new_secret()  # kept in the encrypted cookie until confirmed
    return redirect("/account#second-factor")


@auth.members_only
async def confirm_totp(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    form = await request.post()
    session = await get_session(request)
    secret = session.get("enrol")
    if not secret:
        return redirect("/account")
    try:
        row = await sign_in.enable_totp(db, who.member_id, request.app[SETTINGS].secret_key, secret,
                                        str(form.get("code", "")), utcnow())
    except InvalidInput as exc:
        return await show(request, db, who, 400, error=str(exc).removeprefix("code: ").capitalize() + ".",
                          at="second-factor")
    await db.commit()
    session.pop("enrol", None)
    await _stay_signed_in(request, db, who, row.epoch)
    return redirect("/account?done=totp")


@auth.members_only
async def remove_totp(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    form = await request.post()
    login = await sign_in.login_of(db, who.member_id)
    if not await _current_password_ok(login, str(form.get("current", ""))):
        return await show(request, db, who, 400, error="The current password is not right.", at="second-factor")
    await sign_in.disable_totp(db, who.member_id, utcnow())
    await db.commit()
    if login is not None:
        await _stay_signed_in(request, db, who, login.epoch)
    return redirect("/account?done=totp-off")


def setup(app: web.Application) -> None:
    # The other areas of the page import this module to add their sections, so they are imported here, when
    # the page is mounted, not at the top (that would be a cycle).
    from bot.web import calendar, contacts, devices, notifications, oncall, tokens

    for area in (contacts, notifications, oncall, calendar, devices, tokens):
        area.setup(app)
    app.router.add_get("/account", show_account)
    app.router.add_post("/account/password", change_password)
    app.router.add_post("/account/totp/start", start_totp)
    app.router.add_post("/account/totp", confirm_totp)
    app.router.add_post("/account/totp/off", remove_totp)
