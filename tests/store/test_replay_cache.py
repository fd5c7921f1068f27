"""The callback replay cache in the database (bot/chat/replay.py): an id is taken once while it is valid, even
when copies race from many connections; it is taken again once expired; expired rows are purged by inserts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import CallbackId, replayable_for
from bot.chat import replay
from core.db import make_engine, make_sessionmaker
from core.models.chat import SeenCallback
from core.types import Platform

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TEN_MINUTES = timedelta(minutes=10)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def rows(sessions: Sessions) -> int:
    async with sessions() as s:
        return (await s.execute(select(func.count()).select_from(SeenCallback))).scalar_one()


@pytest.mark.parametrize(("window", "kept"), [
    (timedelta(minutes=5), timedelta(minutes=11)),  # Slack, Feishu, WeCom, DingTalk HTTP
    (timedelta(0), timedelta(minutes=1)),
    (timedelta(hours=1), timedelta(minutes=121)),
])
def test_an_id_is_kept_for_twice_the_window_and_a_minute(window, kept) -> None:
    # A timestamp `window` ahead of our clock is accepted, and stays accepted `window` past itself.
    assert replayable_for(window) == kept


def test_keys_are_fixed_length_and_per_platform() -> None:
    same = CallbackId("v0=abc", TEN_MINUTES)
    assert replay.cache_key(Platform.SLACK, same) != replay.cache_key(Platform.FEISHU, same)
    assert len(replay.cache_key(Platform.SLACK, CallbackId("x" * 5000, TEN_MINUTES))) == 64


def test_about_one_insert_in_sixteen_purges() -> None:
    keys = [replay.cache_key(Platform.WECOM, CallbackId(str(i), TEN_MINUTES)) for i in range(4000)]
    share = sum(map(replay.purges, keys)) / len(keys)
    assert 0.04 < share < 0.09


async def test_an_id_is_taken_once_while_valid_then_again_once_expired(sessions) -> None:
    callback = CallbackId("sig-1", TEN_MINUTES)
    assert await replay.take_once(sessions, Platform.SLACK, callback, NOW) is True
    assert await replay.take_once(sessions, Platform.SLACK, callback, NOW + timedelta(minutes=9)) is False
    # the same id from another platform is another callback
    assert await replay.take_once(sessions, Platform.FEISHU, callback, NOW) is True
    # past its window no copy passes verification, so the id means nothing any more
    assert await replay.take_once(sessions, Platform.SLACK, callback, NOW + TEN_MINUTES) is True
    assert await replay.take_once(sessions, Platform.SLACK, callback, NOW + TEN_MINUTES) is False


async def test_a_callback_without_an_id_is_not_recorded(sessions) -> None:
    assert await replay.take_once(sessions, Platform.DINGTALK, None, NOW) is True
    assert await rows(sessions) == 0


async def test_racing_copies_take_an_id_exactly_once(sessions) -> None:
    callback = CallbackId("raced", TEN_MINUTES)
    taken = await asyncio.gather(*(replay.take_once(sessions, Platform.TEAMS, callback, NOW) for _ in range(8)))
    assert sorted(taken) == [False] * 7 + [True]


async def test_inserts_purge_expired_rows_now_and_then(sessions) -> None:
    for i in range(40):
        await replay.take_once(sessions, Platform.WECOM, CallbackId(f"old-{i}", TEN_MINUTES), NOW)
    assert await rows(sessions) == 40
    later = NOW + timedelta(hours=1)
    ids = [CallbackId(f"new-{i}", TEN_MINUTES) for i in range(200)]
    purging = next(c for c in ids if replay.purges(replay.cache_key(Platform.WECOM, c)))
    quiet = [c for c in ids if not replay.purges(replay.cache_key(Platform.WECOM, c))][:5]
    for callback in quiet:
        await replay.take_once(sessions, Platform.WECOM, callback, later)
    assert await rows(sessions) == 45  # nothing purged yet
    await replay.take_once(sessions, Platform.WECOM, purging, later)
    assert await rows(sessions) == 6  # only the ids still valid at `later` are left
