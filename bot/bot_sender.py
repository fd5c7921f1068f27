"""Posts incident messages to group-chat bots: the `bot` medium of deliveries, and event updates.

A level's bots get a Delivery (medium "bot") when the level fires; later incident events
(acknowledged, closed...) post to the same bots when their event filter asks for them. Messages
are rendered with the bot platform's own template (`feishu_bot`, `dingtalk_bot`...), and mention
the incident's responders through the platform's mapping table.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.group_bots import BotConfig, BotMessage, Mention, send, wants
from core import incidents, jobs
from core.crypto import unseal
from core.errors import DeliveryError
from core.models import Bot, Channel, Delivery, Incident, MappingRow, Member
from core.paging import Page, Recipient, Sender
from core.templates import TemplateSet, incident_context
from core.types import Platform, Progress, Severity

PLATFORM = {"feishu": Platform.FEISHU, "dingtalk": Platform.DINGTALK, "wecom": Platform.WECOM,
            "slack": Platform.SLACK, "zoom": Platform.ZOOM, "telegram": Platform.TELEGRAM}


def config_of(row: Bot, secret_key: str) -> BotConfig:
    creds = unseal(secret_key, row.credentials)
    return BotConfig(type=row.type, url=creds.get("url", ""), secret=creds.get("secret", ""), alias=row.alias,
                     severities=tuple(Severity(s) for s in row.severities), event_types=tuple(row.event_types),
                     at_all=row.at_all, chat_ids=tuple(row.chat_ids))


async def message_for(session: AsyncSession, bot_type: str, incident: Incident, event_type: str,
                      base_url: str) -> BotMessage:
    channel = await session.get(Channel, incident.channel_id)
    ids = [r["person_id"] for r in incident.responders]
    members = (await session.execute(select(Member).where(Member.id.in_(ids)))).scalars().all() if ids else []
    rows = (await session.execute(select(MappingRow).where(
        MappingRow.member_id.in_([m.id for m in members]), MappingRow.platform == PLATFORM[bot_type].value,
        MappingRow.stale.is_(False)))).scalars().all() if members else []
    im = {r.member_id: r.im_user_id for r in rows}
    mentions = tuple(Mention(m.name, im.get(m.id, ""), m.phone or "") for m in members)
    url = f"{base_url}/incidents/{incident.id}"
    mapping = {"incident_id": incident.id, "num": incident.num, "title": incident.title,
               "description": incident.description, "incident_severity": incident.severity,
               "progress": incident.progress, "labels": incident.labels, "alert_cnt": incident.alert_cnt,
               "channel_name": channel.name if channel else "", "detail_url": url}
    rendered = TemplateSet().render(f"{bot_type}_bot", event_type, incident_context(
        mapping, event_type=event_type, base_url=base_url))
    return BotMessage(title=incident.title, severity=Severity(incident.severity),
                      progress=Progress(incident.progress), event_type=event_type, text=rendered.text, url=url,
                      mentions=mentions)


def bot_sender(sessions: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession, base_url: str,
               secret_key: str) -> Sender:
    """The delivery sender for medium `bot`."""

    async def deliver(_recipient: Recipient, page: Page) -> str:
        async with sessions() as session:
            d = await session.get(Delivery, page.delivery_id)
            row = await session.get(Bot, d.bot_id) if d and d.bot_id else None
            if row is None or row.status != "enabled":
                raise DeliveryError("the bot was removed or disabled", retryable=False)
            incident = await incidents.get(session, page.incident_id)
            event_type = "i_new" if page.event_type == "escalation" else page.event_type
            config = config_of(row, secret_key)
            if not wants(config, Severity(incident.severity), event_type):
                return "filtered"
            message = await message_for(session, row.type, incident, event_type, base_url)
        return await send(config, message, http) or "sent"

    return deliver


async def on_event(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    """Post later incident events (ack, close...) to the bots the incident's escalation has used."""
    if args["kind"] in ("i_new",):
        return  # the escalation level posts the trigger
    async with ctx.sessionmaker() as session:
        try:
            incident = await incidents.get(session, args["incident_id"])
        except Exception:
            return
        snap = incident.escalation_snapshot or {}
        bot_ids = sorted({b for lv in snap.get("definition", {}).get("levels", []) for b in lv.get("bot_ids", [])})
        for bot_id in bot_ids:
            key = f"{incident.id}:evt{args['entry_id']}:bot{bot_id}"
            if (await session.execute(select(Delivery.id).where(Delivery.dedup_key == key))).first():
                continue
            d = Delivery(dedup_key=key, incident_id=incident.id, bot_id=bot_id, medium="bot",
                         event_type=args["kind"], next_attempt_at=ctx.now(), created_at=ctx.now(),
                         updated_at=ctx.now())
            session.add(d)
            await session.flush()
            await jobs.schedule(session, "deliver", {"delivery_id": d.id}, due_at=ctx.now(), job_id=f"deliver:{d.id}:0")
        await session.commit()


def register() -> None:
    from core import events

    events.subscribe("bots", on_event)
