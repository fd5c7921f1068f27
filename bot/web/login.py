"""/login (e-mail + password), /login/code (the TOTP second factor) and /logout."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS, SETTINGS
from bot.web import auth, oidc, signed_out
from bot.web.render import page, redirect
from core import sign_in, sign_in_limits
from core.clock import utcnow
from core.models import Member

LIMITS = sign_in_limits.Limits()
PENDING_SECONDS = 300  # between a right password and its code
WRONG = "That e-mail and password do not match a member who can sign in."
TOO_MANY = "Too many failed sign-ins. Wait a quarter of an hour and try again, or ask an admin."


def _address(request: web.Request) -> str:
    return sign_in_limits.address_key(request.remote or "unknown")


async def _form_page(request: web.Request, template: str, status: int = 200, **context: object) -> web.Response:
    session = await get_session(request)
    if template == "login.html":
        context["sso_name"] = await oidc.button_name(request)
    return page(request, template, status=status, viewer=None, csrf=auth.csrf_of(session), **context)


async def show_login(request: web.Request) -> web.StreamResponse:
    if not auth.enabled(request):
        return auth.off_page(request)
    next_path = auth.safe_next(request.query.get("next"))
    async with request.app[SESSIONS]() as db:
        if await auth.viewer(request, db) is not None:
            return redirect(next_path)
    return await _form_page(request, "login.html", next=next_path, email="", error="")


async def _refused(db: AsyncSession, keys: list[str]) -> bool:
    counts = await sign_in_limits.recent_failures(db, keys, utcnow(), LIMITS)
    return sign_in_limits.refused(counts, keys[0], keys[1], LIMITS)


async def _failed(db: AsyncSession, keys: list[str]) -> None:
    await sign_in_limits.note_failure(db, keys, utcnow(), LIMITS)
    await db.commit()


async def post_login(request: web.Request) -> web.StreamResponse:
    if not auth.enabled(request):
        return auth.off_page(request)
    form = await request.post()
    if not await auth.csrf_ok(request, form):
        return auth.forbidden(request)
    email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
    next_path = auth.safe_next(str(form.get("next", "")))
    keys = [sign_in_limits.account_key(email), _address(request)]
    async with request.app[SESSIONS]() as db:
        if await _refused(db, keys):
            return await _form_page(request, "login.html", 429, next=next_path, email=email, error=TOO_MANY)
        found = await sign_in.check_password(db, email, password)
        if found is None:
            await _failed(db, keys)
            return await _form_page(request, "login.html", 401, next=next_path, email=email, error=WRONG)
        member, login = found
        await sign_in_limits.forget_account(db, keys[0])
        await db.commit()
        if login.totp_sealed:
            session = await get_session(request)
            session["pending"] = {"member": member.id, "epoch": login.epoch, "account": keys[0],
                                  "next": next_path, "at": int(utcnow().timestamp())}
            return redirect("/login/code")
        await auth.begin(request, member, login.epoch, "password")
        return redirect(next_path)


async def _pending(request: web.Request) -> dict | None:
    pending = (await get_session(request)).get("pending")
    if not isinstance(pending, dict) or utcnow().timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    return pending


async def show_code(request: web.Request) -> web.StreamResponse:
    if not auth.enabled(request):
        return auth.off_page(request)
    if await _pending(request) is None:
        return redirect("/login")
    return await _form_page(request, "login_code.html", error="")


async def post_code(request: web.Request) -> web.StreamResponse:
    if not auth.enabled(request):
        return auth.off_page(request)
    form = await request.post()
    if not await auth.csrf_ok(request, form):
        return auth.forbidden(request)
    pending = await _pending(request)
    if pending is None:
        return redirect("/login")
    keys = [pending["account"], _address(request)]
    secret_key = request.app[SETTINGS].secret_key
    async with request.app[SESSIONS]() as db:
        member = await db.get(Member, pending["member"])
        login = await sign_in.login_of(db, pending["member"]) if member else None
        if member is None or login is None or login.epoch != pending["epoch"] or await _refused(db, keys):
            (await get_session(request)).pop("pending", None)
            return await _form_page(request, "login.html", 429 if member else 401, next=pending["next"],
                                    email="", error=TOO_MANY if member else WRONG)
        if not sign_in.check_totp(login, secret_key, str(form.get("code", "")), utcnow()):
            await _failed(db, keys)
            return await _form_page(request, "login_code.html", 401,
                                    error="That code is not right (or was already used). Try the next one.")
        await sign_in_limits.forget_account(db, keys[0])
        await db.commit()
        await auth.begin(request, member, login.epoch, "password")
        return redirect(pending["next"])


async def logout(request: web.Request) -> web.StreamResponse:
    if not auth.enabled(request):
        return auth.off_page(request)
    if not await auth.csrf_ok(request, await request.post()):
        return auth.forbidden(request)
    session = await get_session(request)
    # Streams of this session held by other processes end when they next read this (bot/web/signed_out.py).
    async with request.app[SESSIONS]() as db:
        await signed_out.record(db, session["csrf"], utcnow(), auth.MAX_AGE_SECONDS)
        await db.commit()
    session.invalidate()
    return redirect("/login")


def setup(app: web.Application) -> None:
    app.router.add_get("/login", show_login)
    app.router.add_post("/login", post_login)
    app.router.add_get("/login/code", show_code)
    app.router.add_post("/login/code", post_code)
    app.router.add_post("/logout", logout)
