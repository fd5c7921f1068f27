"""What jobs need, composed the same way by `vigil serve` and `vigil worker`.

A job (escalate, deliver, incident_event fan-out, card sync...) is only as good as the services it
finds in its JobContext: the event subscribers, the IM adapters, the media and bot senders. Both
processes build them here, so a page goes out the same way whichever process runs its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiohttp import ClientSession
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters import adapter_class
from bot.adapters.base import Adapter
from bot.chat import card_sync
from bot.chat.group_cards import group_card_sender
from bot.chat.im_sender import im_sender
from bot.egress import EgressRefused, client_session, policy_of, preflight
from bot.group_bots import sender as bot_sender
from bot.media.senders import build_senders
from bot.media.web_push import app_sender
from core import jobs, paging, shift_notices, subscription_notices  # noqa: F401  (shift_notices: its jobs)
from core.crypto import unseal
from core.db import make_engine, make_sessionmaker
from core.egress import EgressPolicy
from core.models import ImApp
from core.notify import RetryPolicy
from core.settings import Settings
from core.template_sandbox import TemplateSandbox
from core.types import Platform
from webhooks import outgoing as outgoing_webhooks

log = logging.getLogger("vigil.services")

ADAPTER_REFRESH_SECONDS = 15.0


def register_subscribers() -> None:
    """Subscribe everything that reacts to incident events (escalation, subscriptions, cards, bots, webhooks)."""
    paging.register()
    subscription_notices.register()  # after escalation: an ack's cancelling of pages never meets a new notice
    card_sync.register()
    bot_sender.register()
    outgoing_webhooks.register()


def job_context(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                adapters: dict[Platform, Adapter]) -> jobs.JobContext:
    """A JobContext whose `adapters` is the given dict (kept current by its owner)."""
    base_url = settings.resolved_base_url()
    return jobs.JobContext(sessions, services={
        "base_url": base_url,
        "retry_policy": RetryPolicy(budget=timedelta(seconds=settings.delivery_retry_budget_seconds),
                                    handover_after=timedelta(seconds=settings.delivery_handover_seconds)),
        "adapters": adapters,
        "senders": {"im": im_sender(adapters, sessions, base_url, settings.secret_key),
                    "im_chat": group_card_sender(adapters, sessions, base_url)},
        "template_sandbox": TemplateSandbox(),  # worker processes start on the first override rendered
    })


def add_senders(ctx: jobs.JobContext, settings: Settings, http: ClientSession) -> None:
    """Media (email, SMS, voice) and group-bot senders on the shared HTTP session; a misconfigured medium
    is logged and left out (its pages fall back to the next medium), never fatal."""
    senders, problems = build_senders(settings, http)
    for problem in problems:
        log.error("media provider not available: %s", problem)
    ctx.services["senders"].update(senders)
    ctx.services["senders"]["bot"] = bot_sender.bot_sender(ctx.sessionmaker, http, settings.resolved_base_url(),
                                                           settings.secret_key)
    ctx.services["senders"]["app"] = app_sender(ctx.sessionmaker, http, secret_key=settings.secret_key,
                                                token_key=settings.secret_key or settings.admin_token,
                                                base_url=settings.resolved_base_url())
    ctx.services.update(http=http, secret_key=settings.secret_key)


async def build_adapters(sessions: async_sessionmaker[AsyncSession], secret_key: str,
                         http: ClientSession) -> tuple[dict[Platform, Adapter], list[str]]:
    """One adapter per enabled IM app (not started); and the problems found (bad settings, bad key, and what a
    working adapter reports in its `problems`, e.g. a Feishu app that cannot check callback signatures)."""
    problems = []
    built: dict[Platform, Adapter] = {}
    async with sessions() as session:
        rows = (await session.execute(select(ImApp).where(ImApp.status == "enabled").order_by(ImApp.id))).scalars()
        for row in rows:
            platform = Platform(row.platform)
            cls = await adapter_class(platform)
            if cls is None:
                problems.append(f"im app {row.id}: {platform.value} is not supported by this build")
                continue
            refused = await _refused_url(dict(row.settings), policy_of(http))
            if refused:
                problems.append(f"im app {row.id}: {refused}")
                continue
            try:
                built[platform] = cls.from_app(dict(row.settings), unseal(secret_key, row.secrets), http=http)
            except ValueError as exc:
                problems.append(f"im app {row.id}: {exc}")
                continue
            problems += [f"im app {row.id}: {p}" for p in getattr(built[platform], "problems", ())]
    return built, problems


async def _refused_url(settings: dict[str, Any], policy: EgressPolicy) -> str | None:
    """The first URL setting whose host resolves only to refused addresses, said why.

    Our aiohttp session checks every connection; the SDKs with their own HTTP client (lark-oapi's httpx,
    botframework's msrest) do not use it, so base URLs are also judged here, whenever adapters are built.
    """
    for key, value in settings.items():
        if key.endswith(("_url", "_endpoint")) and isinstance(value, str) and value:
            try:
                await preflight(value, policy)
            except EgressRefused as exc:
                return f"settings.{key}: {exc}"
            except OSError:
                continue  # not resolvable now: nothing can be reached, and the calls will say so
    return None


async def _im_apps_version(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        return (await session.execute(select(ImApp.id, ImApp.status, ImApp.updated_at).order_by(ImApp.id))).all()


@contextlib.asynccontextmanager
async def worker_context(settings: Settings) -> AsyncIterator[jobs.JobContext]:
    """Everything a `vigil worker` runs jobs with. Its adapters only send and update cards (clicks
    arrive at the web process); they are rebuilt when the IM apps change."""
    engine = make_engine(settings.resolved_database_url())
    sessions = make_sessionmaker(engine)
    register_subscribers()
    adapters: dict[Platform, Adapter] = {}
    ctx = job_context(settings, sessions, adapters)

    seen: list[Any] | None = None

    async def refresh(http: ClientSession) -> None:
        nonlocal seen
        version = await _im_apps_version(sessions)
        if version != seen:
            built, problems = await build_adapters(sessions, settings.secret_key, http)
            adapters.clear()
            adapters.update(built)
            seen = version
            for p in problems:
                log.error(p)

    async def keep_fresh(http: ClientSession) -> None:
        while True:
            await asyncio.sleep(ADAPTER_REFRESH_SECONDS)
            try:
                await refresh(http)
            except Exception:  # the database may be briefly away: keep the adapters we have
                log.exception("could not refresh IM adapters")

    async with client_session(settings.egress_policy()) as http:
        add_senders(ctx, settings, http)
        await refresh(http)
        task = asyncio.create_task(keep_fresh(http), name="vigil-adapters")
        try:
            yield ctx
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await ctx.services["template_sandbox"].close()
            await engine.dispose()
