"""Who is signed in: web sessions in encrypted cookies, their CSRF token, and the checks of every request.

A session is an encrypted, authenticated cookie (aiohttp-session's EncryptedCookieStorage, Fernet) whose
key is derived from VIGIL_SECRET_KEY; without that secret web sign-in stays off. The cookie holds the
member, the role and the credential epoch it began with; every request compares them with the member's rows
now, so a member who is demoted, removed, or whose password changed elsewhere is signed out at once.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp_session import Session, get_session, new_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SESSIONS, SETTINGS
from bot.web.render import page, redirect
from core import sign_in
from core.models import Member
from core.settings import Settings
from core.signing import derived_key
from core.types import Role

log = logging.getLogger("vigil.web")

COOKIE = "vigil_session"
# A session ends a week after sign-in, whatever happens in between (the cookie's own encryption time is
# checked too). A phone on call every other week signs in again then, or opens a card's link.
MAX_AGE_SECONDS = 7 * 24 * 3600
ENABLED = web.AppKey("web_sign_in", bool)
OFF_MESSAGE = ("Web sign-in is off because VIGIL_SECRET_KEY is not set. Set it (any long random string, e.g. "
               "python -c 'import secrets; print(secrets.token_urlsafe(32))') and restart Vigil.")


@dataclass(frozen=True)
class Viewer:
    """The signed-in member, as the pages need them."""

    member_id: int
    name: str
    email: str | None
    role: Role
    time_zone: str
    via: str  # how this session began: "password" or "link" (a signed incident link)
    csrf: str


def setup(app: web.Application, settings: Settings) -> None:
    if not settings.secret_key:
        log.warning(OFF_MESSAGE)
        app[ENABLED] = False
        return
    storage = EncryptedCookieStorage(
        derived_key(settings.secret_key, "web-session"), cookie_name=COOKIE, max_age=MAX_AGE_SECONDS,
        secure=settings.resolved_base_url().startswith("https://"), httponly=True, samesite="Lax")
    # The middleware only reads the cookie when a handler asks for the session, so the Open API and ingest
    # routes it also wraps never touch it.
    app.middlewares.append(session_middleware(storage))
    app[ENABLED] = True


def enabled(request: web.Request) -> bool:
    return request.app[ENABLED]


def off_page(request: web.Request) -> web.Response:
    return page(request, "message.html", status=503, viewer=None, title="Web sign-in is off", message=OFF_MESSAGE)


def csrf_of(session: Session) -> str:
    """The session's CSRF token, made on first use: every form carries it back."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


async def csrf_ok(request: web.Request, form: Any) -> bool:
    """Whether a posted form carries this session's CSRF token (a cross-site form cannot know it)."""
    expected = (await get_session(request)).get("csrf")
    given = form.get("csrf")
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def forbidden(request: web.Request) -> web.Response:
    return page(request, "message.html", status=403, viewer=None, title="That form has expired",
                message="The form was not sent from this Vigil page, or it is too old. Go back, reload the "
                        "page and try again. Nothing was changed.")


async def viewer(request: web.Request, db: AsyncSession) -> Viewer | None:
    """The member signed in on this request, or None; a session that no longer matches the member's role or
    credentials is ended here."""
    session = await get_session(request)
    member_id = session.get("member")
    if member_id is None:
        return None
    member = await db.get(Member, member_id)
    login = await sign_in.login_of(db, member_id) if member is not None else None
    if member is None or member.role != session.get("role") or (login.epoch if login else 0) != session.get("epoch"):
        session.invalidate()
        return None
    return Viewer(member.id, member.name, member.email, Role(member.role), member.time_zone,
                  session.get("via", "password"), csrf_of(session))


async def begin(request: web.Request, member: Member, epoch: int, via: str) -> None:
    """Sign `member` in on this browser: a brand-new session (nothing from before survives, so a session
    planted before sign-in is worth nothing) with a new CSRF token."""
    session = await new_session(request)
    session.update(member=member.id, role=member.role, epoch=epoch, via=via)
    csrf_of(session)


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go to after sign-in; anything else (another site, a scheme) becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def login_url(request: web.Request) -> str:
    return "/login?next=" + quote(request.path_qs if request.method == "GET" else request.path, safe="/")


Page = Callable[[web.Request, AsyncSession, Viewer], Awaitable[web.StreamResponse]]


def members_only(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a page handler: sign-in must be on and a member signed in (else the sign-in page, then back);
    posted forms must carry the CSRF token (else 403, and nothing changes)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        if not enabled(request):
            return off_page(request)
        async with request.app[SESSIONS]() as db:
            who = await viewer(request, db)
            if who is None:
                return redirect(login_url(request))
            if request.method == "POST" and not await csrf_ok(request, await request.post()):
                return forbidden(request)
            return await handler(request, db, who)

    return wrapped


def base_url(request: web.Request) -> str:
    return request.app[SETTINGS].resolved_base_url()
