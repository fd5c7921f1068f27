"""Posts incident messages to group-chat bots: the `bot` medium of deliveries, and event updates.

A level's bots get a Delivery (medium "bot") when the level fires; later incident events
(acknowledged, closed...) post to the same bots when their event filter asks for them. Messages
are rendered with the bot platform's own template (`feishu_bot`, `dingtalk_bot`...), and mention
the incident's responders through the platform's mapping table.

Platform rate limits (bot/group_bots/pacing.py) are kept per bot from the posts recorded in the database
(`BotPost`, booked before each post goes out), so they hold across processes and restarts. While a
bot has room, a message goes at once like any delivery. Otherwise the delivery stays pending, held
in the bot's queue (`provider == "bot_queue"`), and the durable `bot_queue` job posts the queue when
a slot frees: singles while they fit, and one digest covering the rest in the last free slot. Nothing
is dropped: each delivery a digest covers ends "sent" with the digest's message id and a timeline
entry naming the digest; a failed post is retried with backoff, then recorded as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.group_bots import BotConfig, BotMessage, Mention, send, wants
from bot.group_bots.pacing import LIMITS, outgoing_message
from core import custom_fields, events, incidents, jobs
from core.clock import utcnow
from core.crypto import unseal
from core.errors import DeliveryError, DeliveryQueued
from core.models import Bot, BotPost, Channel, Delivery, Incident, Job, MappingRow, Member
from core.paging import Page, Recipient, Sender, retry_in
from core.templates import TemplateSet, incident_context
from core.types import Platform, Progress, Severity

log = logging.getLogger("vigil.bots")

QUEUED = "bot_queue"  # Delivery.provider of a bot message held in its bot's queue
FLUSH_JOB = "bot_queue"
# A message the queue is posting is not taken again for this long: a flush that died mid-post re-sends after it.
IN_FLIGHT = timedelta(seconds=60)

PLATFORM = {
    "feishu": Platform.FEISHU,
    "dingtalk": Platform.DINGTALK,
    "wecom": Platform.WECOM,
    "slack": Platform.SLACK,
    "zoom": Platform.ZOOM,
    "telegram": Platform.TELEGRAM,
}


def config_of(row: Bot, secret_key: str) -> BotConfig:
    creds = unseal(secret_key, row.credentials)
    return BotConfig(
        type=row.type,
        url=creds.get("url", ""),
        secret=creds.get("secret", ""),
        alias=row.alias,
        severities=tuple(Severity(s) for s in row.severities),
        event_types=tuple(row.event_types),
        at_all=row.at_all,
        chat_ids=tuple(row.chat_ids),
        keyword=row.keyword,
    )


async def message_for(
    session: AsyncSession, bot_type: str, incident: Incident, event_type: str, base_url: str
) -> BotMessage:
    channel = await session.get(Channel, incident.channel_id)
    ids = [r["person_id"] for r in incident.responders]
    members = (await session.execute(select(Member).where(Member.id.in_(ids)))).scalars().all() if ids else []
    rows: Sequence[MappingRow] = []
    if members:
        stmt = select(MappingRow).where(
            MappingRow.member_id.in_([m.id for m in members]),
            MappingRow.platform == PLATFORM[bot_type].value,
            MappingRow.stale.is_(False),
        )
        rows = (await session.execute(stmt)).scalars().all()
    im = {r.member_id: r.im_user_id for r in rows}
    mentions = tuple(Mention(m.name, im.get(m.id, ""), m.phone or "") for m in members)
    url = f"{base_url}/incidents/{incident.id}"
    mapping = {
        "incident_id": incident.id,
        "num": incident.num,
        "title": incident.title,
        "description": incident.description,
        "incident_severity": incident.severity,
        "progress": incident.progress,
        "labels": incident.labels,
        "fields": await custom_fields.values_of(session, incident),
        "alert_cnt": incident.alert_cnt,
        "channel_name": channel.name if channel else "",
        "detail_url": url,
    }
    rendered = TemplateSet().render(
        f"{bot_type}_bot", event_type, incident_context(mapping, event_type=event_type, base_url=base_url)
    )
    return BotMessage(
        title=incident.title,
        severity=Severity(incident.severity),
        progress=Progress(incident.progress),
        event_type=event_type,
        text=rendered.text,
        url=url,
        mentions=mentions,
        markup=True,  # the bot template's own markup: senders post it as written
    )


def bot_sender(
    sessions: async_sessionmaker[AsyncSession],
    http: aiohttp.ClientSession,
    base_url: str,
    secret_key: str,
    now: Callable[[], datetime] = utcnow,
) -> Sender:
    """The delivery sender for medium `bot`; over the bot's rate limit it hands the delivery to the queue."""

    async def deliver(_recipient: Recipient, page: Page) -> str:
        async with sessions() as session:
            d = await session.get(Delivery, page.delivery_id)
            row = await session.get(Bot, d.bot_id) if d and d.bot_id else None
            if row is None or row.status != "enabled":
                raise DeliveryError("the bot was removed or disabled", retryable=False)
            incident = await incidents.get(session, page.incident_id)
            event_type = _event_type(page.event_type)
            config = config_of(row, secret_key)
            if not wants(config, Severity(incident.severity), event_type):
                return "filtered"
            message = await message_for(session, row.type, incident, event_type, base_url)
            if not await take_slot(session, row, d.id, now):
                raise DeliveryQueued(f"{row.type} bot at its rate limit: queued")
        return await send(config, message, http) or "sent"

    return deliver


def _event_type(delivery_event: str) -> str:
    return "i_new" if delivery_event == "escalation" else delivery_event


async def take_slot(session: AsyncSession, bot: Bot, delivery_id: int, clock: Callable[[], datetime]) -> bool:
    """Book a post for this delivery now (True), or hold it in the bot's queue for the `bot_queue` job.

    It goes now only when nothing is queued for the bot and the limit leaves room (see
    BotLimiter.skips_queue). The delivery runner counts an attempt only once the sender returns, so a
    held delivery has not used one. Commits either way.
    """
    limiter = LIMITS[bot.type]
    await _lock(session, bot.id)
    # The time after the lock: a slot booked at a time read before waiting for it could sit closer
    # to the post the lock's holder is making than the limit allows.
    now = clock()
    d = await session.get(Delivery, delivery_id, populate_existing=True)
    sent = await _post_times(session, bot.id, now, limiter.horizon)
    if (
        d.state == "pending"
        and d.provider != QUEUED
        and not await _queued(session, bot.id)
        and limiter.skips_queue(sent, now)
    ):
        session.add(BotPost(bot_id=bot.id, at=now))
        await session.commit()
        return True
    if d.state == "pending":  # not already sent by the queue (a re-run of the first delivery job)
        due = limiter.next_slot(sent, now)
        if d.provider != QUEUED:
            d.provider, d.next_attempt_at, d.updated_at = QUEUED, due, now
            if due > now:
                events.note(
                    session,
                    d.incident_id,
                    "delivery_queued",
                    now=now,
                    detail={
                        "delivery_id": d.id,
                        "medium": d.medium,
                        "bot_id": bot.id,
                        "reason": f"the {bot.type} bot is at its rate limit",
                        "send_after": int(due.timestamp()),
                    },
                )
        await _schedule_flush(session, bot.id, due)
    await session.commit()
    return False


@jobs.job(FLUSH_JOB)
async def flush(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    """Post what one bot's rate limit allows now from its queue, and come back for the rest."""
    bot_id = args["bot_id"]
    async with ctx.sessionmaker() as session:
        await _lock(session, bot_id)
        now = ctx.now()  # after the lock, as in take_slot
        row = await session.get(Bot, bot_id)
        queued = await _queued(session, bot_id)
        if row is None or row.status != "enabled":
            for d in queued:
                _record(
                    session, d, bot_id, now, DeliveryError("the bot was removed or disabled", retryable=False)
                )
            await session.commit()
            return
        limiter = LIMITS[row.type]
        config = config_of(row, ctx.services.get("secret_key", ""))
        sent = await _post_times(session, bot_id, now, limiter.horizon)
        ready = [d for d in queued if d.next_attempt_at is None or d.next_attempt_at <= now]
        covers, wait_until = limiter.split(len(ready), sent, now)
        posts: list[tuple[BotPost, list[int]]] = []
        for cover in covers:
            post = BotPost(bot_id=bot_id, at=now)
            session.add(post)
            posts.append((post, [ready[i].id for i in cover]))
            for i in cover:
                ready[i].next_attempt_at = now + IN_FLIGHT
        taken = {i for _, ids in posts for i in ids}
        rest = [d for d in queued if d.id not in taken]
        if rest:
            slot = wait_until or limiter.next_slot([*sent, *[now] * len(posts)], now)
            await _schedule_flush(session, bot_id, max(slot, min(d.next_attempt_at or now for d in rest)))
        await session.commit()
    for n, (post, ids) in enumerate(posts):
        retry_at = await _post(ctx, config, bot_id, post.id, ids)
        if retry_at is not None:  # the platform is struggling: the rest waits behind the retry, in order
            await _release(ctx, bot_id, posts[n + 1 :], retry_at)
            return


async def _post(
    ctx: jobs.JobContext, config: BotConfig, bot_id: int, post_id: int, ids: list[int]
) -> datetime | None:
    """Post one message, or a digest of several, for queued deliveries and record the outcome on each.

    Returns when the post will be retried, if it failed and will be.
    """
    async with ctx.sessionmaker() as session:
        rows = [d for d in await _rows(session, ids) if d.state == "pending"]
        if not rows:
            return None
        messages = [
            await message_for(
                session,
                config.type,
                await incidents.get(session, d.incident_id),
                _event_type(d.event_type),
                ctx.services.get("base_url", ""),
            )
            for d in rows
        ]
    outcome: str | DeliveryError
    try:
        outcome = (await send(config, outgoing_message(messages), ctx.services["http"]) or "sent")[:200]
    except DeliveryError as exc:
        outcome = exc
    except Exception as exc:  # a bug in a sender must not lose the messages: transient, as for any delivery
        log.exception("%s bot post crashed", config.type)
        outcome = DeliveryError(type(exc).__name__, retryable=True)
    now = ctx.now()
    async with ctx.sessionmaker() as session:
        await _lock(session, bot_id)
        digest = {"post_id": post_id, "updates": len(rows)} if len(rows) > 1 else None
        retries = [
            t
            for d in await _rows(session, ids)
            if d.state == "pending" and (t := _record(session, d, bot_id, now, outcome, digest)) is not None
        ]
        retry_at = min(retries, default=None)
        if retry_at is not None:
            await _schedule_flush(session, bot_id, retry_at)
        await session.commit()
    return retry_at


def _record(
    session: AsyncSession,
    d: Delivery,
    bot_id: int,
    now: datetime,
    outcome: str | DeliveryError,
    digest: dict[str, int] | None = None,
) -> datetime | None:
    """Mark one queued delivery sent, retrying or failed, on the timeline too; the retry time if retrying."""
    d.attempts += 1
    d.updated_at = now
    detail: dict[str, Any] = {"delivery_id": d.id, "medium": d.medium, "person_id": None, "bot_id": bot_id}
    detail.update(attempt=d.attempts, queued=True, **({"digest": digest} if digest else {}))
    retry_at = None
    if not isinstance(outcome, DeliveryError):
        d.state, d.provider_message_id = "sent", outcome
        kind = "delivery_sent"
        detail["provider_message_id"] = outcome
    elif (delay := retry_in(d, outcome, now)) is not None:
        d.last_error, d.next_attempt_at = str(outcome)[:2000], now + timedelta(seconds=delay)
        kind, retry_at = "delivery_retry", d.next_attempt_at
        detail.update(error=d.last_error, retry_in_seconds=delay)
    else:
        d.state, d.last_error = "failed", str(outcome)[:2000]
        kind = "delivery_failed"
        detail["error"] = d.last_error
    events.note(session, d.incident_id, kind, now=now, detail=detail)
    return retry_at


async def _release(
    ctx: jobs.JobContext, bot_id: int, posts: Sequence[tuple[BotPost, list[int]]], when: datetime
) -> None:
    """Give booked but unsent posts back: their slots free again, their messages wait until `when`."""
    if not posts:
        return
    async with ctx.sessionmaker() as session:
        await _lock(session, bot_id)
        await session.execute(delete(BotPost).where(BotPost.id.in_([p.id for p, _ in posts])))
        for d in await _rows(session, [i for _, ids in posts for i in ids]):
            d.next_attempt_at = when
        await session.commit()


async def _lock(session: AsyncSession, bot_id: int) -> None:
    """Take the bot's lock for this transaction, before reading anything: a no-op UPDATE row-locks the bot on
    PostgreSQL and takes the write lock on SQLite, so slot decisions for one bot never interleave."""
    await session.execute(update(Bot).where(Bot.id == bot_id).values(status=Bot.status))


async def _post_times(
    session: AsyncSession, bot_id: int, now: datetime, horizon: timedelta
) -> list[datetime]:
    """When the bot was posted to within the limiter's horizon (older records are pruned)."""
    await session.execute(delete(BotPost).where(BotPost.bot_id == bot_id, BotPost.at <= now - horizon))
    rows = await session.execute(select(BotPost.at).where(BotPost.bot_id == bot_id))
    return [t for t in rows.scalars() if t is not None]


async def _queued(session: AsyncSession, bot_id: int) -> list[Delivery]:
    """The bot's held deliveries, oldest first."""
    stmt = (
        select(Delivery)
        .where(
            Delivery.bot_id == bot_id,
            Delivery.medium == "bot",
            Delivery.state == "pending",
            Delivery.provider == QUEUED,
        )
        .order_by(Delivery.id)
    )
    return list((await session.execute(stmt)).scalars())


async def _rows(session: AsyncSession, ids: list[int]) -> list[Delivery]:
    stmt = select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id)
    return list((await session.execute(stmt)).scalars())


async def _schedule_flush(session: AsyncSession, bot_id: int, due: datetime) -> None:
    """Make sure a `bot_queue` job for the bot runs at `due` (one job per bot and due time)."""
    base = f"{FLUSH_JOB}:{bot_id}:{int(due.timestamp() * 1_000_000)}"
    job_id, n = base, 0
    while (job := await session.get(Job, job_id)) is not None and job.state != "pending":
        n += 1  # that one already ran (virtual time, or the same microsecond): a fresh id
        job_id = f"{base}:{n}"
    await jobs.schedule(session, FLUSH_JOB, {"bot_id": bot_id}, due_at=due, job_id=job_id)


async def on_event(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """Post later incident events (ack, close...) to the bots the incident's escalation has used."""
    later = [a for a in batch if a["kind"] != "i_new"]  # the escalation level posts the trigger
    if not later:
        return
    async with ctx.sessionmaker() as session:
        for args in later:
            await _post_event(ctx, session, args)
        await session.commit()


async def _post_event(ctx: jobs.JobContext, session: AsyncSession, args: dict[str, Any]) -> None:
    try:
        incident = await incidents.get(session, args["incident_id"])
    except Exception:
        return
    snap = incident.escalation_snapshot or {}
    bot_ids = sorted(
        {b for lv in snap.get("definition", {}).get("levels", []) for b in lv.get("bot_ids", [])}
    )
    for bot_id in bot_ids:
        key = f"{incident.id}:evt{args['entry_id']}:bot{bot_id}"
        if (await session.execute(select(Delivery.id).where(Delivery.dedup_key == key))).first():
            continue
        d = Delivery(
            dedup_key=key,
            incident_id=incident.id,
            bot_id=bot_id,
            medium="bot",
            event_type=args["kind"],
            next_attempt_at=ctx.now(),
            created_at=ctx.now(),
            updated_at=ctx.now(),
        )
        session.add(d)
        await session.flush()
        await jobs.schedule(
            session, "deliver", {"delivery_id": d.id}, due_at=ctx.now(), job_id=f"deliver:{d.id}:0"
        )


def register() -> None:
    from core import events

    events.subscribe("bots", on_event)
