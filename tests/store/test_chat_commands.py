"""Read-only chat commands (bot/chat/commands.py): who is on call now and my open incidents, read from the
database on SQLite and PostgreSQL, and their wording, which every platform shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chat import commands as cc
from core.db import make_engine, make_sessionmaker
from core.models import Channel, Incident, MappingRow, Member, Schedule, Team
from core.types import Platform, Progress, Severity

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)
ALWAYS = {"start": "2026-01-05T00:00:00Z", "rotation": {"unit": "days", "value": 1}}


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def add(sessions: Sessions, *rows: Any) -> list[int]:
    async with sessions() as s:
        s.add_all(rows)
        await s.commit()
        return [r.id for r in rows]


async def test_oncall_now_names_members_expands_teams_and_finds_the_next_handoff(sessions: Sessions) -> None:
    ann, bob, cat = await add(sessions, Member(name="Ann"), Member(name="Bob"), Member(name="Cat"))
    # 2026-01-05 to 2026-03-04 is 58 days: day turns are even, so the "b rotation" has Ann on call.
    ops, empty = await add(sessions, Team(name="ops", member_ids=[bob, cat]), Team(name="empty"))
    await add(
        sessions,
        Schedule(
            name="b rotation",
            definition={"layers": [{**ALWAYS, "members": [[{"member_id": ann}], [{"member_id": bob}]]}]},
        ),
        Schedule(
            name="a teams",
            definition={
                "layers": [
                    {**ALWAYS, "members": [[{"team_id": ops}, {"member_id": bob}, {"team_id": empty}]]}
                ]
            },
        ),
        Schedule(
            name="c override",
            definition={
                "layers": [{**ALWAYS, "members": [[{"member_id": ann}]]}],
                "overrides": [
                    {
                        "participants": [{"member_id": cat}],
                        "start": "2026-03-04T10:00:00Z",
                        "end": "2026-03-04T12:00:00Z",
                    }
                ],
            },
        ),
        Schedule(
            name="d over",
            definition={
                "layers": [{**ALWAYS, "end": "2026-02-01T00:00:00Z", "members": [[{"member_id": ann}]]}]
            },
        ),
        Schedule(name="e broken", definition={"layers": "not a list"}),
    )
    async with sessions() as s:
        rows = await cc.oncall_now(s, NOW)
    assert rows == [
        cc.OnCallNow("a teams", ("Bob", "Cat", "team empty (no members)")),
        cc.OnCallNow("b rotation", ("Ann",), until=datetime(2026, 3, 5, tzinfo=UTC)),
        cc.OnCallNow("c override", ("Cat",), until=datetime(2026, 3, 4, 12, tzinfo=UTC), override=True),
        cc.OnCallNow("d over"),
        cc.OnCallNow("e broken", broken=True),
    ]
    assert cc.oncall_text(rows, NOW).splitlines() == [
        "On call now (2026-03-04 10:30 UTC):",
        "• a teams: Bob, Cat, team empty (no members)",
        "• b rotation: Ann, until 2026-03-05 00:00 UTC",
        "• c override: Cat (override), until 2026-03-04 12:00 UTC",
        "• d over: nobody",
        "• e broken: (this schedule cannot be read; ask a Vigil admin to fix it)",
    ]



async def test_a_disabled_schedule_has_nobody_on_call(sessions: Sessions) -> None:
    [ann] = await add(sessions, Member(name="Ann"))
    layers = {"layers": [{**ALWAYS, "members": [[{"member_id": ann}]]}]}
    await add(sessions, Schedule(name="on", definition=layers), Schedule(name="paused", definition=layers,
                                                                         status="disabled"))
    async with sessions() as s:
        assert await cc.oncall_now(s, NOW) == [cc.OnCallNow("on", ("Ann",)), cc.OnCallNow("paused")]

async def test_open_incidents_of_lists_what_the_member_responds_to_and_is_not_closed(
    sessions: Sessions,
) -> None:
    ann, bob = await add(sessions, Member(name="Ann"), Member(name="Bob"))
    [channel] = await add(sessions, Channel(name="prod"))

    def incident(title: str, people: list[int], progress: str = "Triggered", **kw: Any) -> Incident:
        return Incident(
            channel_id=channel,
            title=title,
            severity="Critical",
            status="Critical",
            progress=progress,
            responders=[{"person_id": p, "assigned_at": 0, "acknowledged_at": 0} for p in people],
            start_time=NOW,
            **kw,
        )

    ids = await add(
        sessions,
        incident("mine 1", [ann]),
        incident("bob's", [bob]),
        incident("closed", [ann], "Closed"),
        incident("shared", [bob, ann], "Processing"),
        incident("merged away", [ann], merged_into_id=1),
    )
    async with sessions() as s:
        shown, total = await cc.open_incidents_of(s, ann, "http://v")
        assert [i.title for i in shown] == ["shared", "mine 1"] and total == 2  # newest first
        assert shown[0].url == f"http://v/incidents/{ids[3]}" and shown[0].progress is Progress.PROCESSING
        shown, total = await cc.open_incidents_of(s, ann, "http://v", limit=1)
        assert [i.title for i in shown] == ["shared"] and total == 2
        assert await cc.open_incidents_of(s, 999, "http://v") == ([], 0)


async def test_answer_resolves_the_asker_through_the_mapping_table(sessions: Sessions) -> None:
    [ann] = await add(sessions, Member(name="Ann"))
    await add(
        sessions,
        MappingRow(platform="slack", member_id=ann, im_user_id="U0ANN"),
        MappingRow(platform="slack", member_id=ann, im_user_id="U0OLD", stale=True),
    )
    ask = lambda user, name: cc.answer(cc.Query(Platform.SLACK, user, name), sessions, "http://v", NOW)  # noqa: E731
    assert await ask("U0ANN", cc.MINE) == "Ann, you have no open incidents."
    for stranger in ("U0OLD", "U0NOBODY"):
        reply = await ask(stranger, cc.MINE)
        assert "is not linked to a Vigil member" in reply and "which incidents are yours" in reply
        assert "nothing was changed" not in reply  # it asked, it did not act
    assert await ask("U0NOBODY", cc.ONCALL) == "No on-call schedules are set up yet."


def test_mine_text_shows_state_snooze_and_how_many_more() -> None:
    one = cc.OpenIncident(
        "42",
        "db-1 is down",
        Severity.CRITICAL,
        Progress.PROCESSING,
        "http://v/incidents/42",
        snoozed_until=NOW + timedelta(hours=1),
    )
    text = cc.mine_text("Ann", [one], 13, "http://v")
    assert text.splitlines() == [
        "Ann, your open incidents (13):",
        "• 🔴 #42 db-1 is down · 👀 Processing · 💤 until 2026-03-04 11:30 UTC · http://v/incidents/42",
        "…and 12 more: http://v/incidents",
    ]


def test_oncall_text_is_bounded() -> None:
    rows = [cc.OnCallNow(f"s{n:02}", ("Ann",)) for n in range(cc.SCHEDULES_SHOWN + 3)]
    lines = cc.oncall_text(rows, NOW).splitlines()
    assert len(lines) == cc.SCHEDULES_SHOWN + 2 and lines[-1] == "…and 3 more schedules."


def test_help_text_uses_the_platform_prefix() -> None:
    text = cc.help_text("@Vigil ")
    assert text.startswith("Vigil commands:") and "• `@Vigil oncall`: who is on call now" in text
