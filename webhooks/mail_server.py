"""The SMTP receiver of e-mail integrations: `vigil serve` runs it on VIGIL_MAIL_PORT (off when unset).

It runs in the web process, on its event loop, rather than as a separate `vigil mail` process: a message is
answered 250 only once its alert event is committed by the same ingest writer the Event API uses (group
commit, fair across integrations, the same rate limits), so "accepted" means "on disk" here too, and there
is no second process to deploy, watch and point at the database.

The conversation refuses early what it can: an address that is not an enabled e-mail integration's gets 550
at RCPT, an integration over its rate limit 451 (the sending server retries later), a message larger than
VIGIL_MAIL_MAX_BYTES 552 (announced as SMTP SIZE and enforced while reading DATA). After DATA: a message that
cannot be read 554 naming why, one no channel takes 550 (and it is recorded as an unrouted event), a failed
commit 451. Every refusal reaches the sending server, which retries or bounces: nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.keys import SESSIONS, SETTINGS, WRITER
from core.clock import utcnow
from core.ingest import IngestResult, IntegrationRef
from core.models import Integration, MailRules
from webhooks import mail
from webhooks.routes import LIMITER, events_counter, integration_by_key, unrouted_message

log = logging.getLogger("vigil.mail")

MAIL_SERVER = web.AppKey("mail_server", asyncio.AbstractServer)
MAX_RECIPIENTS = 10  # e-mail integrations one message may be addressed to
REPLY_MAX = 400  # characters of a reply's text (RFC 5321 allows 512 for the whole line)
IDLE_TIMEOUT = 60.0  # seconds a connection may sit between commands


def reply(code: str, text: str) -> str:
    """One SMTP reply line: the text made ASCII and single-line, as every client can read it."""
    text = " ".join(text.split()).encode("ascii", "backslashreplace").decode()
    return f"{code} {text[:REPLY_MAX]}"


class MailHandler:
    """aiosmtpd handler hooks (RCPT, DATA) over the app's integrations, rate limiter and ingest writer."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.domain = app[SETTINGS].mail_domain

    async def _integration(self, address: str) -> Integration | None:
        key = mail.key_of(address, self.domain)
        if key is None:
            return None
        row = await integration_by_key(self.app, key)
        return row if row is not None and row.type == "email" and row.status == "enabled" else None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        integration = await self._integration(address)
        if integration is None:
            return reply("550", f"5.1.1 <{address}>: no e-mail integration has this address")
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return reply("452", f"4.5.3 at most {MAX_RECIPIENTS} recipients per message")
        if self.app[LIMITER].wait(integration.id, time.monotonic()):
            return reply("451", "4.7.1 too many alerts for this integration; try again later")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        targets: dict[int, Integration] = {}
        for address in envelope.rcpt_tos:
            integration = await self._integration(address)
            if integration is None:  # disabled or re-keyed since RCPT
                return reply("550", f"5.1.1 <{address}>: no e-mail integration has this address")
            targets[integration.id] = integration
        keys = []
        for integration in targets.values():
            outcome = await self._ingest(integration, raw)
            if outcome.startswith(("4", "5")):
                return outcome
            keys.append(outcome)
        return reply("250", f"2.0.0 OK alert_key {' '.join(keys)}")

    async def _ingest(self, integration: Integration, raw: bytes) -> str:
        """The alert key the message became for one integration, or the SMTP reply refusing it."""
        async with self.app[SESSIONS]() as session:
            stored = await session.get(MailRules, integration.id)
        rules = mail.MailRules.model_validate(stored.rules if stored is not None else {})
        try:
            event = mail.parse(raw, rules, utcnow())
        except mail.BadMail as exc:
            events_counter("email", "rejected").inc()
            return reply("554", f"5.6.0 {exc}")
        if self.app[LIMITER].take(integration.id, time.monotonic(), 1):
            events_counter("email", "limited").inc()
            return reply("451", "4.7.1 too many alerts for this integration; try again later")
        ref = IntegrationRef(integration.id, integration.type, integration.channel_id, integration.routing or {})
        try:
            results: list[IngestResult] = await self.app[WRITER].submit(ref, [event])
        except Exception:
            log.exception("mail for integration %s could not be stored", integration.id)
            events_counter("email", "failed").inc()
            return reply("451", "4.3.0 the alert could not be stored; try again later")
        for r in results:
            events_counter("email", r.outcome).inc()
        if any(r.unrouted is not None for r in results):
            return reply("550", f"5.4.4 {unrouted_message(integration.id, results)}")
        return results[0].alert_key


def smtp_factory(app: web.Application) -> Any:
    """A protocol factory for one SMTP conversation per connection."""
    settings, handler = app[SETTINGS], MailHandler(app)
    return lambda: SMTP(handler, data_size_limit=settings.mail_max_bytes, enable_SMTPUTF8=True,
                        decode_data=False, hostname=settings.mail_domain, ident="Vigil", timeout=IDLE_TIMEOUT)


async def _serve(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    host = settings.mail_host or settings.host
    server = await asyncio.get_running_loop().create_server(smtp_factory(app), host, settings.mail_port)
    app[MAIL_SERVER] = server
    log.info("SMTP receiver for e-mail integrations on %s:%s (addresses <key>@%s)", host, settings.mail_port,
             settings.mail_domain)
    yield
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 5)


def setup(app: web.Application) -> None:
    """Run the receiver with the app when VIGIL_MAIL_PORT is set (after the ingest writer has started)."""
    if app[SETTINGS].mail_port:
        app.cleanup_ctx.append(_serve)
