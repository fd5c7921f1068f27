"""Group-bot rate limits through the real delivery path, in virtual time, on SQLite and PostgreSQL.

Alerts go through ingest, escalation and the `deliver` job to the bot sender, which posts to the
six-platform fake over HTTP. The fake runs on the same virtual clock and enforces DingTalk's 20
messages a minute itself, so a post over the limit would come back as an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.group_bots import sender as bot_sender
from core import events, jobs, paging
from core.crypto import seal
from core.db import make_engine, make_sessionmaker
from core.ingest import IntegrationRef, ingest_batch
from core.models import Bot, Channel, Delivery, EscalationRule, Integration, TimelineEntry
from core.types import AlertEvent, EventStatus
from tests.group_bots.conftest import Running

KEY = "bot-rate-limit-test-key"
BASE_URL = "http://vigil.test"


class Clock:
    """Virtual time starting now (the fake checks signature timestamps against real time, within an hour)."""

    def __init__(self) -> None:
        self.t = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.t

    def seconds(self) -> float:
        return self.t.timestamp()

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


@dataclass
class World:
    bots: Running
    clock: Clock
    db_url: str
    http: Any
    contexts: list[jobs.JobContext] = field(default_factory=list)
    engines: list[Any] = field(default_factory=list)

    @property
    def ctx(self) -> jobs.JobContext:
        return self.contexts[0]

    async def start(self, processes: int = 2) -> None:
        """Processes sharing the database: each with its own engine, sender and job context."""
        await self.stop()
        for _ in range(processes):
            engine = make_engine(self.db_url)
            sessions = make_sessionmaker(engine)
            sender = bot_sender.bot_sender(sessions, self.http, BASE_URL, KEY, now=self.clock)
            services = {
                "senders": {"bot": sender},
                "http": self.http,
                "secret_key": KEY,
                "base_url": BASE_URL,
            }
            self.engines.append(engine)
            self.contexts.append(jobs.JobContext(sessions, services=services, now=self.clock))

    async def stop(self) -> None:
        for engine in self.engines:
            await engine.dispose()
        self.engines, self.contexts = [], []

    def posts(self) -> list[dict[str, Any]]:
        """The markdown bodies DingTalk accepted, in order."""
        return [r.body["markdown"] for r in self.bots.fake.of("dingtalk")]


@pytest.fixture
async def world(db_url, bots: Running, http):
    clock = Clock()
    bots.fake.clock = clock.seconds  # the fake's own 20-a-minute limit runs in virtual time too
    w = World(bots, clock, db_url, http)
    await w.start()
    saved = list(events._SUBSCRIBERS)
    events._SUBSCRIBERS.clear()
    paging.register()
    bot_sender.register()
    yield w
    events._SUBSCRIBERS[:] = saved
    await w.stop()


async def drain(*contexts: jobs.JobContext) -> None:
    """Run every job due now, including those they schedule for now; with several contexts, concurrently."""
    for _ in range(100):
        async with contexts[0].sessionmaker() as s:
            due = [j.id for j in await jobs.sweep(s, contexts[0].now(), timedelta(0))]
        if not due:
            return
        await asyncio.gather(*(jobs.run_job(contexts[i % len(contexts)], j) for i, j in enumerate(due)))
    raise AssertionError("jobs keep scheduling themselves now: a loop")


async def setup(w: World, bot_type: str = "dingtalk") -> IntegrationRef:
    config = w.bots.config(bot_type)
    now = w.clock()
    async with w.ctx.sessionmaker() as s:
        bot = Bot(
            type=bot_type,
            alias="ops",
            credentials=seal(KEY, {"url": config.url, "secret": config.secret}),
            chat_ids=list(config.chat_ids),
            created_at=now,
            updated_at=now,
        )
        channel = Channel(name="prod", created_at=now, updated_at=now)
        s.add_all([bot, channel])
        await s.flush()
        integ = Integration(name="i", type="standard", channel_id=channel.id, key="k", key_hash="h")
        s.add_all(
            [
                integ,
                EscalationRule(
                    channel_id=channel.id, name="r", definition={"levels": [{"bot_ids": [bot.id]}]}
                ),
            ]
        )
        await s.commit()
        return IntegrationRef(integ.id, "standard", channel.id)


async def burst(w: World, ref: IntegrationRef, count: int, first: int = 0) -> None:
    """`count` alerts, each a new incident, in one moment."""
    async with w.ctx.sessionmaker() as s:
        await ingest_batch(
            s,
            [
                (ref, AlertEvent(EventStatus.CRITICAL, f"disk {i} full", f"disk-{i}"))
                for i in range(first, first + count)
            ],
            w.clock(),
        )
        await s.commit()


async def deliveries(w: World) -> list[Delivery]:
    async with w.ctx.sessionmaker() as s:
        return list((await s.execute(select(Delivery).order_by(Delivery.id))).scalars())


async def timeline(w: World, kind: str) -> list[dict[str, Any]]:
    async with w.ctx.sessionmaker() as s:
        rows = await s.execute(
            select(TimelineEntry).where(TimelineEntry.kind == kind).order_by(TimelineEntry.id)
        )
        return [t.detail for t in rows.scalars()]


def title(heading: str) -> str:
    """The incident title in a headline such as "[Critical] [Triggered] disk 3 full"."""
    return heading.split("] ", 2)[2]


def digest_titles(post: dict[str, Any]) -> list[str]:
    """The incidents a digest lists, one line each ("- [Critical] [Triggered] disk 3 full http://...")."""
    return [title(line).rsplit(" http", 1)[0] for line in post["text"].splitlines() if line.startswith("- [")]


async def test_a_burst_over_the_limit_ends_in_one_digest_and_nothing_is_lost(world: World):
    ref = await setup(world)
    await burst(world, ref, 30)
    await drain(world.ctx)
    posts = world.posts()
    assert len(posts) == 20, "DingTalk allows 20 a minute"
    assert all("11 incident updates" not in p["title"] for p in posts[:19])
    assert "11 incident updates" in posts[19]["title"]
    singles = {title(p["title"]) for p in posts[:19]}
    assert sorted(singles | set(digest_titles(posts[19]))) == sorted(f"disk {i} full" for i in range(30))
    assert not singles & set(digest_titles(posts[19])), "each incident is posted exactly once"
    ds = await deliveries(world)
    assert len(ds) == 30 and {d.state for d in ds} == {"sent"}
    assert all(d.attempts == 1 and not d.last_error for d in ds), "the fake never had to refuse a post"
    sent = await timeline(world, "delivery_sent")
    assert len(sent) == 30
    in_digest = [d for d in sent if "digest" in d]
    assert len(in_digest) == 11
    assert {d["digest"]["updates"] for d in in_digest} == {11} and len(
        {d["digest"]["post_id"] for d in in_digest}
    ) == 1
    covered = {d["delivery_id"] for d in in_digest}
    assert len({d.provider_message_id for d in ds if d.id in covered}) == 1


async def test_held_messages_go_out_when_the_window_passes_even_after_a_restart(world: World):
    ref = await setup(world)
    await burst(world, ref, 20)
    await drain(world.ctx)
    assert len(world.posts()) == 20  # 19 alone, then the last slot
    world.clock.advance(seconds=10)
    await burst(world, ref, 5, first=20)
    await drain(world.ctx)
    assert len(world.posts()) == 20, "the minute is full: the new messages wait"
    held = [d for d in await deliveries(world) if d.state == "pending"]
    assert len(held) == 5 and all(d.attempts == 0 for d in held), "holding is not a failed attempt"
    queued = await timeline(world, "delivery_queued")
    assert len(queued) == 5 and all(
        q["send_after"] == int((world.clock() + timedelta(seconds=50)).timestamp()) for q in queued
    )
    await world.start(processes=1)  # a restart: new processes, only the database remembers
    world.clock.advance(seconds=49)
    await drain(world.ctx)
    assert len(world.posts()) == 20
    world.clock.advance(seconds=1)
    await drain(world.ctx)
    assert sorted(title(p["title"]) for p in world.posts()[20:]) == [f"disk {i} full" for i in range(20, 25)]
    assert {d.state for d in await deliveries(world)} == {"sent"}


async def test_a_failed_digest_post_is_retried_and_recorded(world: World):
    ref = await setup(world)
    for _ in range(19):
        world.bots.fake.answer_next("dingtalk", 200, {"errcode": 0, "errmsg": "ok"})
    world.bots.fake.answer_next("dingtalk", 502, "<html>Bad Gateway</html>")  # the digest in the 20th slot
    await burst(world, ref, 30)
    await drain(world.ctx)
    retries = await timeline(world, "delivery_retry")
    assert len(retries) == 11 and all(r["digest"]["updates"] == 11 and "502" in r["error"] for r in retries)
    pending = [d for d in await deliveries(world) if d.state == "pending"]
    assert len(pending) == 11 and all(d.attempts == 1 for d in pending)
    world.clock.advance(seconds=2)  # the backoff is over, but the failed post used the minute's last slot
    await drain(world.ctx)
    assert len([d for d in await deliveries(world) if d.state == "pending"]) == 11
    world.clock.advance(seconds=58)
    await drain(world.ctx)
    ds = await deliveries(world)
    assert {d.state for d in ds} == {"sent"}
    assert sorted(d.attempts for d in ds) == [1] * 19 + [2] * 11
    titles = [p["title"] for p in world.posts()]
    assert len(titles) == 19 + 1 + 11  # the failed digest was received too; the retry fits alone now
    assert sorted(title(t) for t in titles[20:]) == sorted(digest_titles(world.posts()[19]))


async def test_a_removed_bot_fails_its_held_messages_on_the_timeline(world: World):
    ref = await setup(world)
    await burst(world, ref, 20)
    await drain(world.ctx)
    await burst(world, ref, 5, first=20)
    await drain(world.ctx)
    async with world.ctx.sessionmaker() as s:
        bot = (await s.execute(select(Bot))).scalar_one()
        bot.status = "disabled"
        await s.commit()
    world.clock.advance(minutes=1)
    await drain(world.ctx)
    ds = await deliveries(world)
    assert [d.state for d in ds].count("sent") == 20 and [d.state for d in ds].count("failed") == 5
    failed = await timeline(world, "delivery_failed")
    assert len(failed) == 5 and all("disabled" in f["error"] for f in failed)


async def test_two_processes_sharing_the_database_never_overbook_a_bot(world: World):
    ref = await setup(world)
    await burst(world, ref, 30)
    await drain(*world.contexts)  # every step's jobs run at once, split over both processes
    posts = world.posts()
    assert len(posts) == 20 and "11 incident updates" in posts[-1]["title"]
    ds = await deliveries(world)
    assert {d.state for d in ds} == {"sent"} and all(d.attempts == 1 for d in ds)


@pytest.mark.parametrize(
    ("bot_type", "size", "singles"),
    [
        ("slack", 5, 0),  # one a second: the whole burst goes in one digest, at once
        ("feishu", 8, 4),  # five a second: four alone, the fifth slot a digest of the other four
    ],
)
async def test_per_second_limits(world: World, bot_type, size, singles):
    ref = await setup(world, bot_type)
    await burst(world, ref, size)
    await drain(world.ctx)
    got = world.bots.fake.of(bot_type)
    heads = [
        title(r.body["text"] if bot_type == "slack" else r.body["content"]["post"]["zh_cn"]["title"]).strip()
        for r in got
    ]
    assert len(heads) == singles + 1 and heads[-1] == f"{size - singles} incident updates"
    assert len(set(heads[:-1])) == singles and all(h.startswith("disk ") for h in heads[:-1])
    assert {d.state for d in await deliveries(world)} == {"sent"}
