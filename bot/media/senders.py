"""Turns the configured media providers (VIGIL_EMAIL / VIGIL_SMS / VIGIL_VOICE) into delivery senders."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import aiohttp

from bot.media.base import Contact, MediaProvider, Message
from bot.media.failover import ProviderChain
from bot.media.registry import build_provider
from core.errors import DeliveryError
from core.paging import Page, Recipient, Sender, Sent
from core.settings import Settings

DEFAULT_PROVIDER = {"email": "email", "sms": "twilio_sms", "voice": "twilio_voice"}


def build_senders(settings: Settings, http: aiohttp.ClientSession) -> tuple[dict[str, Sender], list[str]]:
    """One sender per configured medium, and the configuration problems found (logged, not fatal)."""
    senders: dict[str, Sender] = {}
    problems = []
    for medium in ("email", "sms", "voice"):
        try:
            provider = provider_for(settings, medium, http)
        except ValueError as exc:
            problems.append(f"VIGIL_{medium.upper()}: {exc}")
            continue
        if provider is not None:
            senders[medium] = _sender(provider, settings.secret_key or settings.admin_token)
    return senders, problems


def provider_for(settings: Settings, medium: str, http: aiohttp.ClientSession) -> ProviderChain | None:
    """The providers configured for `medium`, in order (None: not configured); ValueError names a configuration
    problem. Pages use it through their sender; a contact's verification code (bot/media/codes.py) directly."""
    raw: dict[str, Any] | list[dict[str, Any]] | None = getattr(settings, medium)
    if not raw:
        return None
    entries = raw if isinstance(raw, list) else [raw]
    providers = []
    for i, entry in enumerate(entries, 1):
        where = f"provider {i}: " if isinstance(raw, list) else ""
        try:
            provider = _provider(settings, medium, entry, http)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
        if provider.medium.value != medium:
            raise ValueError(f"{where}{provider.name} sends {provider.medium.value}, not {medium}")
        providers.append(provider)
    return ProviderChain(providers)


def _provider(settings: Settings, medium: str, raw: Any, http: aiohttp.ClientSession) -> MediaProvider:
    if not isinstance(raw, dict):
        raise ValueError("must be a JSON object with a \"provider\"")
    config = dict(raw)
    name = config.pop("provider", DEFAULT_PROVIDER[medium])
    if medium == "voice" and name == "twilio_voice" and not config.get("callback_url"):
        config["callback_url"] = f"{settings.resolved_base_url()}/im/voice/callback"
    return build_provider(name, config, http)


def _sender(provider: ProviderChain | MediaProvider, key: str) -> Sender:
    chain = provider if isinstance(provider, ProviderChain) else ProviderChain([provider])

    async def send(recipient: Recipient, page: Page) -> Sent:
        try:
            contact = Contact(member_id=recipient.member_id, name=recipient.name, email=recipient.email,
                              phone=recipient.phone)
        except ValueError as exc:  # e.g. a phone number that is not E.164
            raise DeliveryError(f"{recipient.name}: {exc}", retryable=False, recipient=True) from None
        if provider.medium.value in ("sms", "voice") and not contact.phone:
            raise DeliveryError(f"{recipient.name} has no phone number", retryable=False, recipient=True)
        if provider.medium.value == "email" and not contact.email:
            raise DeliveryError(f"{recipient.name} has no email address", retryable=False, recipient=True)
        message = Message(subject=page.subject or page.text[:120], text=page.text, html=page.html,
                          incident_id=str(page.incident_id),
                          action_token=action_token(key, page.incident_id, recipient.member_id),
                          idempotency_key=f"vigil-delivery-{page.delivery_id}")
        attempt = await chain.attempt(contact, message)
        return Sent(attempt.message_id, attempt.provider, attempt.skipped_text())

    return send


def action_token(key: str, incident_id: int, member_id: int) -> str:
    """A token for a voice call's keypad: which incident, acted on as which member (HMAC-signed)."""
    body = f"{incident_id}.{member_id}"
    mac = hmac.new(key.encode(), body.encode(), hashlib.sha256).digest()[:12]
    return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def read_action_token(key: str, token: str) -> tuple[int, int] | None:
    """(incident_id, member_id) of a token made by `action_token`, or None if forged or malformed."""
    try:
        incident_id, member_id, _mac = token.split(".")
        expected = action_token(key, int(incident_id), int(member_id))
    except ValueError:
        return None
    return (int(incident_id), int(member_id)) if hmac.compare_digest(expected, token) else None
