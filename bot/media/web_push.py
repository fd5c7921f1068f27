"""The `app` medium: Web Push to each browser or installed Vigil app a member subscribed.

Each subscription gets its own request to its push service (RFC 8030): the payload encrypted for that
browser (RFC 8291, aes128gcm, with pywebpush's encoder) and signed with the installation's VAPID key
(RFC 8292, py_vapid), sent on Vigil's egress-guarded session. pywebpush's own `webpush_async` is not used for
the request: our shared helper (bot/adapters/_http.py) gives the timeout, the bounded read, Retry-After and
the secret redaction every other provider has.

One delivery is one page to a member: it is sent when any push service accepted it. A subscription its push
service answers 404 or 410 for is gone (the browser unsubscribed, the app was removed) and is deleted; when
every one is gone, or the member has none, the delivery fails for good and the fallback chain goes on.
Other failures retry like any medium's (transient vs permanent as bot/adapters/_http.py classifies them).

The payload is small JSON the service worker (bot/web/static/sw.js) shows: the incident's id, title,
severity and channel, its page, and a signed action token (bot/media/senders.action_token, the voice
keypad's) that the notification's Acknowledge button posts to bot/web/push.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from py_vapid import Vapid02
from pywebpush import WebPusher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters._http import DETAIL_LIMIT, error_for_status, send_request
from bot.media.senders import action_token
from core import push
from core.clock import utcnow
from core.errors import DeliveryError
from core.models import Channel, Incident, PushSubscription
from core.paging import Page, Recipient, Sender

log = logging.getLogger("vigil.web_push")

PROVIDER = "web_push"
TIMEOUT = 10.0
# A page a phone was offline for longer than this is stale: the escalation has moved on by then.
TTL_SECONDS = 3600
VAPID_LIFETIME = 12 * 3600  # RFC 8292 allows at most 24 h; some push services refuse more than that
URGENCY = {"Critical": "high", "Warning": "high", "Info": "normal"}  # RFC 8030 5.3: high wakes a sleeping phone
TITLE_LIMIT, CHANNEL_LIMIT = 200, 100  # the whole payload must stay far below the 4 KB push services take


def payload(page: Page, channel: str, token: str) -> dict[str, Any]:
    """What the service worker receives for a page."""
    return {"v": 1, "incident_id": page.incident_id, "title": (page.subject or "")[:TITLE_LIMIT],
            "severity": page.severity, "channel": channel[:CHANNEL_LIMIT], "url": page.url, "event": page.event_type,
            "ack_token": token}


def origin(endpoint: str) -> str:
    """The push service's origin: the VAPID `aud` claim for its endpoint."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def vapid_claims(endpoint: str, subject: str, now: float) -> dict[str, Any]:
    """The JWT claims for one request: for this push service, valid for VAPID_LIFETIME, naming who sends."""
    return {"aud": origin(endpoint), "exp": int(now) + VAPID_LIFETIME, "sub": subject}


def vapid_subject(base_url: str) -> str:
    """Who to contact about our pushes (RFC 8292 `sub`): the Vigil URL when it is https, as push services
    want a mailto: or https: URI."""
    return base_url if base_url.startswith("https://") else "mailto:vigil@example.invalid"


def outcome(results: Sequence[str | DeliveryError]) -> str | DeliveryError:
    """One delivery's outcome from the pushes to each subscription: the first accepted push's id, else one
    error: retryable when any subscription may still take it (waiting for the longest Retry-After)."""
    accepted = [r for r in results if isinstance(r, str)]
    if accepted:
        return accepted[0]
    errors = [r for r in results if isinstance(r, DeliveryError)]
    if not errors:
        return DeliveryError("no app subscription: the member has not enabled notifications in the Vigil app",
                             retryable=False)
    if all(e.gone for e in errors):
        return DeliveryError(f"every app subscription ({len(errors)}) is gone (push service: 404/410); removed",
                             retryable=False, gone=True)
    transient = [e for e in errors if e.retryable]
    chosen = transient or [e for e in errors if not e.gone]
    text = "; ".join(dict.fromkeys(str(e) for e in chosen))[:DETAIL_LIMIT]
    waits = [e.retry_after for e in transient if e.retry_after]
    return DeliveryError(text, retryable=bool(transient), retry_after=max(waits) if waits else None)


async def push_one(http: aiohttp.ClientSession, vapid: Vapid02, subject: str, sub: PushSubscription,
                   data: bytes, urgency: str) -> str:
    """Encrypt `data` for one subscription and hand it to its push service; the message id (its Location)."""
    info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
    try:
        body = WebPusher(info).encode(data, "aes128gcm")["body"]
    except Exception as exc:  # keys that passed validation but do not work: this subscription never will
        raise DeliveryError(f"{PROVIDER}: cannot encrypt for subscription {sub.id} ({type(exc).__name__})",
                            retryable=False) from None
    headers = {**vapid.sign(vapid_claims(sub.endpoint, subject, time.time())), "TTL": str(TTL_SECONDS),
               "Urgency": urgency, "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream"}
    # The endpoint's path is the capability to push to that browser: never show it.
    secrets = [urlsplit(sub.endpoint).path, headers["Authorization"]]
    reply = await send_request(http, "POST", sub.endpoint, provider=PROVIDER, timeout=TIMEOUT, secrets=secrets,
                               headers=headers, data=body)
    if reply.status in (404, 410):
        raise DeliveryError(f"{PROVIDER}: subscription {sub.id} is gone (HTTP {reply.status})", retryable=False,
                            gone=True)
    if not reply.ok:
        raise error_for_status(PROVIDER, reply, f"subscription {sub.id}: {reply.text()[:120]}", secrets)
    return reply.headers.get("Location", "") or f"push:{sub.id}"


async def _page_data(session: AsyncSession, recipient: Recipient, page: Page
                     ) -> tuple[list[PushSubscription], str]:
    subs = await push.subscriptions_of(session, recipient.member_id)
    channel = (await session.execute(select(Channel.name).join(Incident, Incident.channel_id == Channel.id)
                                     .where(Incident.id == page.incident_id))).scalar_one_or_none()
    return subs, channel or ""


def app_sender(sessions: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession, *, secret_key: str,
               token_key: str, base_url: str) -> Sender:
    """The delivery sender for medium `app`. `secret_key` unseals the VAPID key; `token_key` signs the
    Acknowledge token as for voice calls."""
    keys: list[Vapid02] = []  # loaded once per process, made on first use if no process made it yet
    subject = vapid_subject(base_url)

    async def vapid(session: AsyncSession) -> Vapid02:
        if not keys:
            try:
                stored = await push.vapid_keys(session, secret_key, utcnow())
            except ValueError as exc:  # no VIGIL_SECRET_KEY, or a different one than sealed the key
                raise DeliveryError(f"{PROVIDER}: {exc}", retryable=False) from None
            keys.append(Vapid02.from_raw(stored.private_key.encode()))
        return keys[0]

    async def send(recipient: Recipient, page: Page) -> str:
        async with sessions() as session:
            subs, channel = await _page_data(session, recipient, page)
            signer = await vapid(session) if subs else None
        data = orjson.dumps(payload(page, channel, action_token(token_key, page.incident_id, recipient.member_id)))
        urgency = URGENCY.get(page.severity, "normal")
        results: list[str | DeliveryError] = list(await asyncio.gather(
            *(_attempt(http, signer, subject, sub, data, urgency) for sub in subs))) if signer else []
        gone = [sub.id for sub, r in zip(subs, results, strict=True) if isinstance(r, DeliveryError) and r.gone]
        if gone:
            async with sessions() as session:
                await push.remove(session, gone)
                await session.commit()
            log.info("removed %d gone push subscription(s) of member %s", len(gone), recipient.member_id)
        result = outcome(results)
        if isinstance(result, DeliveryError):
            raise result
        return result

    return send


async def _attempt(http: aiohttp.ClientSession, vapid: Vapid02, subject: str, sub: PushSubscription, data: bytes,
                   urgency: str) -> str | DeliveryError:
    try:
        return await push_one(http, vapid, subject, sub, data, urgency)
    except DeliveryError as exc:
        return exc
