"""The personal center's contact methods: the member's e-mail address and phone number, each verified by a
six-digit code sent to it (core/contact_codes.py; the code goes out through bot/media/codes.py).

  POST /account/contacts/email              change the e-mail address (needs the current password: it is
                                            also how the member signs in); a code goes to the new one
  POST /account/contacts/phone              change or remove the phone number; a code goes to the new one
  POST /account/contacts/{kind}/code        send a new code
  POST /account/contacts/{kind}/verify      enter the code
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import SETTINGS
from bot.media.codes import code_key, send_new_code
from bot.web import account, auth
from bot.web.render import redirect
from core import contact_codes, sign_in
from core.clock import utcnow
from core.errors import VigilError
from core.models import Member

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = TypeAdapter(EmailStr)

account.DONE.update({
    "email-sent": ("contacts", "Saved. A code is on its way to your e-mail address."),
    "phone-sent": ("contacts", "Saved. A code is on its way to your phone by text message."),
    "phone-removed": ("contacts", "Phone number removed."),
    "email-verified": ("contacts", "Your e-mail address is verified."),
    "phone-verified": ("contacts", "Your phone number is verified."),
})


@account.section
async def context(request: web.Request, db: AsyncSession, who: auth.Viewer) -> dict[str, Any]:
    member = await db.get(Member, who.member_id)
    assert member is not None
    settings = request.app[SETTINGS]
    return {"contacts": await contact_codes.status_of(db, member, utcnow()),
            "can_send": {"email": bool(settings.email), "phone": bool(settings.sms)}}


def _fail(request: web.Request, db: AsyncSession, who: auth.Viewer, text: str, status: int = 400):  # type: ignore[no-untyped-def]
    return account.show(request, db, who, status, error=text, at="contacts")


def _words(exc: VigilError) -> str:
    """An error for the page: without the field prefix the Open API puts first."""
    text = str(exc).split(": ", 1)[-1]
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


async def _send(request: web.Request, db: AsyncSession, who: auth.Viewer, member: Member, kind: str,
                done: str) -> web.StreamResponse:
    try:
        await send_new_code(request.app, db, member, kind, utcnow())
    except VigilError as exc:
        await db.rollback()
        return await _fail(request, db, who, _words(exc), exc.status)
    return redirect(f"/account?done={done}#contacts")


@auth.members_only
async def change_email(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    form = await request.post()
    member = await db.get(Member, who.member_id)
    assert member is not None
    login = await sign_in.login_of(db, who.member_id)
    if login is not None and login.password_hash and not await sign_in.check_password_of(
            login, str(form.get("current", ""))):
        return await _fail(request, db, who, "The current password is not right.")
    try:
        email = str(_EMAIL.validate_python(str(form.get("email", "")).strip()))
    except ValidationError:
        return await _fail(request, db, who, "That is not an e-mail address.")
    if email.lower() == (member.email or "").lower():
        return redirect("/account#contacts")
    try:
        await contact_codes.check_email_free(db, member.id, email)
    except VigilError as exc:
        return await _fail(request, db, who, _words(exc), exc.status)
    member.email, member.updated_at = email, utcnow()
    await db.commit()
    return await _send(request, db, who, member, "email", "email-sent")


@auth.members_only
async def change_phone(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    form = await request.post()
    member = await db.get(Member, who.member_id)
    assert member is not None
    phone = re.sub(r"[\s\-().]", "", str(form.get("phone", "")))
    if not phone:
        member.phone, member.updated_at = None, utcnow()
        await db.commit()
        return redirect("/account?done=phone-removed#contacts")
    if not E164.match(phone):
        return await _fail(request, db, who, "Write the phone number in international form: a plus, the country "
                                             "code and the number, like +14155550100.")
    if phone == member.phone:
        return redirect("/account#contacts")
    member.phone, member.updated_at = phone, utcnow()
    await db.commit()
    return await _send(request, db, who, member, "phone", "phone-sent")


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in contact_codes.KINDS:
        raise web.HTTPNotFound()
    return kind


@auth.members_only
async def send_code(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    kind = _kind(request)
    member = await db.get(Member, who.member_id)
    assert member is not None
    return await _send(request, db, who, member, kind, f"{kind}-sent")


@auth.members_only
async def verify(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    kind = _kind(request)
    form = await request.post()
    member = await db.get(Member, who.member_id)
    assert member is not None
    try:
        verdict = await contact_codes.confirm(db, member, kind, str(form.get("code", "")),
                                              code_key(request.app[SETTINGS]), utcnow())
    except VigilError as exc:
        return await _fail(request, db, who, _words(exc), exc.status)
    left = await contact_codes.attempts_left(db, member.id, kind)
    await db.commit()  # a wrong code stays counted
    if verdict is not contact_codes.Verdict.VERIFIED:
        return await _fail(request, db, who, contact_codes.explain(verdict, kind, left))
    return redirect(f"/account?done={kind}-verified#contacts")


def setup(app: web.Application) -> None:
    app.router.add_post("/account/contacts/email", change_email)
    app.router.add_post("/account/contacts/phone", change_phone)
    app.router.add_post("/account/contacts/{kind}/code", send_code)
    app.router.add_post("/account/contacts/{kind}/verify", verify)
