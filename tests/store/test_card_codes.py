"""Single-use card update codes in the database (bot/chat/card_codes.py): a click's code reaches the clicked card,
claims take each code once even when they race, and a code the platform did not take comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import ActionEvent, update_codes, with_update_codes
from bot.chat import card_codes
from core.db import make_engine, make_sessionmaker
from core.models import CardRef, Channel, Incident
from core.types import Platform

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def incident(sessions: Sessions) -> int:
    async with sessions() as s:
        channel = Channel(name=f"ch-{datetime.now().timestamp()}", created_at=NOW, updated_at=NOW)
        s.add(channel)
        await s.flush()
        inc = Incident(
            channel_id=channel.id,
            title="db-1 is down",
            severity="Critical",
            status="Critical",
            start_time=NOW,
            created_at=NOW,
            updated_at=NOW,
        )
        s.add(inc)
        await s.commit()
        return inc.id


async def card(
    sessions: Sessions,
    incident_id: int,
    user: str = "ZhangSan",
    task: str = "task-1",
    codes: list[tuple[str, float]] | None = None,
) -> int:
    async with sessions() as s:
        ref = CardRef(
            incident_id=incident_id,
            platform="wecom",
            conversation_id=user,
            message_id=f"m-{user}-{task}",
            extra=with_update_codes({"task_id": task}, codes or []),
            created_at=NOW,
        )
        s.add(ref)
        await s.commit()
        return ref.id


async def codes_of(sessions: Sessions, ref_id: int) -> list[str]:
    async with sessions() as s:
        ref = await s.get(CardRef, ref_id)
        return [c for c, _ in update_codes(ref.extra)]


def clicked(user: str, task: str, code: str) -> ActionEvent:
    return ActionEvent(Platform.WECOM, user, "ack:1", {}, {"task_id": task, "response_code": code})


async def test_a_click_code_goes_to_the_clicked_card_only(sessions: Sessions) -> None:
    iid = await incident(sessions)
    mine = await card(sessions, iid, codes=[("sent", NOW.timestamp() - 60)])
    older_version = await card(sessions, iid, task="task-0")
    someone_else = await card(sessions, iid, user="LiSi")
    async with sessions() as s:
        assert await card_codes.remember_click(s, clicked("ZhangSan", "task-1", "click"), iid, NOW)
        await s.commit()
    assert await codes_of(sessions, mine) == ["click", "sent"]  # newest first
    assert await codes_of(sessions, older_version) == [] and await codes_of(sessions, someone_else) == []
    async with sessions() as s:  # a click without a code (any other platform) touches nothing
        assert not await card_codes.remember_click(s, ActionEvent(Platform.SLACK, "U1", "ack:1"), iid, NOW)


async def test_claims_take_the_newest_code_once_and_a_returned_code_comes_back(sessions: Sessions) -> None:
    iid = await incident(sessions)
    ref = await card(sessions, iid, codes=[("old", 1.0), ("new", 2.0)])
    assert await card_codes.claim(sessions, ref) == ("new", 2.0)
    await card_codes.give_back(sessions, ref, ("new", 2.0))
    assert await codes_of(sessions, ref) == ["new", "old"]
    assert [await card_codes.claim(sessions, ref) for _ in range(3)] == [("new", 2.0), ("old", 1.0), None]


async def test_racing_claims_and_clicks_never_hand_out_a_code_twice(sessions: Sessions) -> None:
    iid = await incident(sessions)
    ref = await card(sessions, iid, codes=[(f"sent-{n}", float(n)) for n in range(4)])

    async def click(n: int) -> None:
        async with sessions() as s:
            await card_codes.remember_click(s, clicked("ZhangSan", "task-1", f"click-{n}"), iid, NOW)
            await s.commit()

    results = await asyncio.gather(
        *[card_codes.claim(sessions, ref) for _ in range(10)], *[click(n) for n in range(3)]
    )
    taken = [r[0] for r in results if r]
    left = await codes_of(sessions, ref)
    assert len(taken) == len(set(taken)) and not set(taken) & set(left)
    assert sorted(taken + left) == sorted([f"sent-{n}" for n in range(4)] + [f"click-{n}" for n in range(3)])
