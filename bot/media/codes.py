"""Sending a contact's verification code (core/contact_codes.py) through the configured media: an e-mail
address gets it by the email medium, a phone number by the SMS medium, each through the provider pages use.
The personal center and the Open API both send through `send_new_code`."""

from __future__ import annotations

from datetime import datetime

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.keys import HTTP, SETTINGS
from bot.media.base import Contact, Message
from bot.media.failover import ProviderChain
from bot.media.senders import provider_for
from core import contact_codes
from core.contact_codes import LIFETIME, MEDIUM
from core.errors import DeliveryError, InvalidInput
from core.models import Member
from core.settings import Settings
from core.signing import derived_key


def code_key(settings: Settings) -> bytes:
    """The key codes are stored under (an HMAC), derived from the operator's secret."""
    secret = settings.secret_key or settings.admin_token
    if not secret:
        raise InvalidInput("contact verification needs VIGIL_SECRET_KEY to be set")
    return derived_key(secret, "contact-code")


def _provider(settings: Settings, http: aiohttp.ClientSession, kind: str) -> ProviderChain:
    medium = MEDIUM[kind]
    try:
        provider = provider_for(settings, medium, http)
    except ValueError:
        provider = None
    if provider is None:
        raise InvalidInput(f"{kind}: this Vigil has no working {medium} provider to send a code with; "
                           f"an admin sets one with VIGIL_{medium.upper()}")
    return provider


async def send_new_code(app: web.Application, session: AsyncSession, member: Member, kind: str,
                        now: datetime) -> str:
    """Issue a code for the member's current `kind` contact, commit it, send it; the value it went to.
    InvalidInput (or contact_codes.TooManyCodes) says why not, without a provider's secrets (its
    DeliveryError messages never carry them)."""
    settings: Settings = app[SETTINGS]
    contact_codes.check_kind(kind)
    provider = _provider(settings, app[HTTP], kind)  # before issuing: a missing provider costs no send
    value = contact_codes.value_of(member, kind) or ""
    try:
        to = Contact(member_id=member.id, name=member.name, email=value if kind == "email" else None,
                     phone=value if kind == "phone" else None)
    except ValueError as exc:  # a phone number that is not E.164 cannot be texted
        raise InvalidInput(f"{kind}: {exc}") from None
    value, code = await contact_codes.issue(session, member, kind, code_key(settings), now)
    await session.commit()  # counted even if the send fails below: the limits hold for a failing provider too
    minutes = int(LIFETIME.total_seconds() // 60)
    text = f"Your Vigil verification code is {code}. It works once, for {minutes} minutes."
    if kind == "email":
        text += "\n\nIf you did not ask for it, someone typed your address into Vigil by mistake: ignore this."
    try:
        # Each code is its own message: a gateway that deduplicates by key must not drop a resent code.
        await provider.send(to, Message(subject="Your Vigil verification code", text=text, incident_id="",
                                        idempotency_key=f"vigil-code-{member.id}-{kind}-{now.timestamp():.0f}"))
    except DeliveryError as exc:
        raise InvalidInput(f"{kind}: the code could not be sent ({exc})") from None
    return value
