"""The incident list's filters as a signed-in member uses them: my teams, channel, start-time range and search,
each on its own and kept across pages (plain GET links, no JavaScript)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.keys import SESSIONS
from bot.web.incident_list import ListFilter, instant
from core.models import Incident
from tests.web.conftest import Browser, new_member


def shown(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="title" href="/incidents/(\d+)"', body)]


async def _incident(app, key: str, title: str, labels: dict[str, str] | None = None) -> int:  # type: ignore[no-untyped-def]
    await app.push(key, {"event_status": "Warning", "title_rule": title, "alert_key": title, "labels": labels or {}})
    return next(i["incident_id"] for i in (await app.get("/incidents"))["items"] if i["title"] == title)


@pytest.fixture
async def estate(app):  # type: ignore[no-untyped-def]
    """Two teams owning a channel each, and a channel nobody owns; alice is in team db, bob in team web."""
    alice, bob = await new_member(app, "alice"), await new_member(app, "bob")
    db_team = await app.post("/teams", {"name": "db", "member_ids": [alice]})
    web_team = await app.post("/teams", {"name": "web", "member_ids": [bob]})
    db_ch, db_key = await app.channel_with_integration("databases", team_ids=[db_team["team_id"]])
    web_ch, web_key = await app.channel_with_integration("frontends", team_ids=[web_team["team_id"]])
    _, misc_key = await app.channel_with_integration("misc")
    ids = {
        "pg": await _incident(app, db_key, "postgres replica lag", {"host": "pg-2", "service": "orders"}),
        "nginx": await _incident(app, web_key, "nginx 5xx rate 100%_up", {"host": "edge-1"}),
        "disk": await _incident(app, misc_key, "disk full", {"host": "pg-2"}),
    }
    return {"channels": {"db": db_ch, "web": web_ch}, "ids": ids}


async def test_my_teams_shows_only_channels_of_my_teams(app, browser: Browser, estate):
    ids = estate["ids"]
    await browser.sign_in("alice@example.com")
    assert shown((await browser.get("/incidents?scope=teams"))[2]) == [ids["pg"]]
    browser.forget()
    await browser.sign_in("bob@example.com")
    body = (await browser.get("/incidents?scope=teams"))[2]
    assert shown(body) == [ids["nginx"]] and 'value="teams" selected' in body
    carol = await new_member(app, "carol")  # in no team: "my teams" is empty, not everything
    assert carol
    browser.forget()
    await browser.sign_in("carol@example.com")
    assert shown((await browser.get("/incidents?scope=teams"))[2]) == []
    assert len(shown((await browser.get("/incidents"))[2])) == 3


async def test_channel_filter(browser: Browser, estate):
    await browser.sign_in("alice@example.com")
    body = (await browser.get(f"/incidents?channel={estate['channels']['web']}"))[2]
    assert shown(body) == [estate["ids"]["nginx"]]
    assert f'<option value="{estate["channels"]["web"]}" selected>frontends</option>' in body
    assert shown((await browser.get("/incidents?channel=999999"))[2]) == []


async def test_search_matches_title_and_labels_literally(browser: Browser, estate):
    ids = estate["ids"]
    await browser.sign_in("alice@example.com")

    async def search(q: str) -> list[int]:
        return shown((await browser.get(f"/incidents?q={q}"))[2])

    assert await search("REPLICA") == [ids["pg"]]  # title, any case
    assert await search("pg-2") == [ids["disk"], ids["pg"]]  # a label value
    assert await search("orders") == [ids["pg"]]
    assert await search("100%25_") == [ids["nginx"]]  # % and _ are text, not wildcards
    assert await search("%25") == [ids["nginx"]]
    assert await search("_") == [ids["nginx"]]
    assert await search("redis") == []
    body = (await browser.get(f"/incidents?q=pg-2&channel={estate['channels']['db']}"))[2]
    assert shown(body) == [ids["pg"]] and 'value="pg-2"' in body


async def test_time_range_in_the_viewers_zone(app, browser: Browser, estate):
    ids = estate["ids"]
    async with app.app[SESSIONS]() as db:  # the pg incident is from last week
        incident = await db.get(Incident, ids["pg"])
        incident.start_time = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
        await db.commit()
    await browser.sign_in("alice@example.com")

    async def between(since: str = "", until: str = "") -> list[int]:
        return shown((await browser.get(f"/incidents?since={since}&until={until}"))[2])

    assert await between(until="2026-03-10") == [ids["pg"]]  # a date: all of that day
    assert await between(until="2026-03-10T23:29") == []
    assert await between(since="2026-03-10T23:30", until="2026-03-10T23:30") == [ids["pg"]]
    assert ids["pg"] not in await between(since="2026-03-11")
    assert set(await between(since="2026-03-11")) == {ids["nginx"], ids["disk"]}
    assert await between(since="not a date") == shown((await browser.get("/incidents"))[2])


async def test_filters_are_kept_across_pages(app, browser: Browser, monkeypatch):
    from bot.web import incident_list

    monkeypatch.setattr(incident_list, "PAGE_SIZE", 2)
    await new_member(app, "alice")
    cid, key = await app.channel_with_integration("batch")
    _, other = await app.channel_with_integration("other")
    mine = [await _incident(app, key, f"cpu high {n}") for n in range(4)]
    await _incident(app, other, "cpu high elsewhere")
    await browser.sign_in("alice@example.com")
    body = (await browser.get(f"/incidents?channel={cid}&q=cpu&since=2020-01-01"))[2]
    assert shown(body) == [mine[3], mine[2]]
    older = re.search(r'href="/incidents\?([^"]+)">Older', body).group(1).replace("&amp;", "&")
    assert f"channel={cid}" in older and "q=cpu" in older and "since=2020-01-01" in older
    assert shown((await browser.get(f"/incidents?{older}"))[2]) == [mine[1], mine[0]]


async def test_a_time_range_is_ordered_and_paged_by_start_time(app, browser: Browser, monkeypatch):
    """With since/until the page follows (start_time, id), newest start first, ties by id: every incident once."""
    from bot.web import incident_list

    monkeypatch.setattr(incident_list, "PAGE_SIZE", 2)
    await new_member(app, "alice")
    _, key = await app.channel_with_integration("w")
    ids = [await _incident(app, key, f"job {n} late") for n in range(5)]
    starts = [10, 12, 11, 11, 9]  # hour of 2026-03-10 each incident started at, in id order
    async with app.app[SESSIONS]() as db:
        for iid, hour in zip(ids, starts, strict=True):
            (await db.get(Incident, iid)).start_time = datetime(2026, 3, 10, hour, tzinfo=UTC)
        await db.commit()
    await browser.sign_in("alice@example.com")
    seen, query = [], "since=2026-03-10&until=2026-03-10"
    for _ in range(3):
        body = (await browser.get(f"/incidents?{query}"))[2]
        seen.append(shown(body))
        older = re.search(r'href="/incidents\?([^"]+)">Older', body)
        query = older.group(1).replace("&amp;", "&") if older else ""
    assert seen == [[ids[1], ids[3]], [ids[2], ids[0]], [ids[4]]] and query == ""


async def test_search_reads_a_bounded_window_and_offers_older(app, browser: Browser, monkeypatch):
    from bot.web import incident_list

    monkeypatch.setattr(incident_list, "SEARCH_WINDOW", 2)
    await new_member(app, "alice")
    _, key = await app.channel_with_integration("w")
    old = await _incident(app, key, "needle")
    for n in range(3):
        await _incident(app, key, f"hay {n}")
    await browser.sign_in("alice@example.com")
    body = (await browser.get("/incidents?q=needle"))[2]
    assert shown(body) == []
    link = re.search(r'href="/incidents\?([^"]+)">Search older', body).group(1).replace("&amp;", "&")
    body = (await browser.get(f"/incidents?{link}"))[2]
    assert shown(body) == [old] and "Search older" not in body


@pytest.mark.parametrize("query, expected", [
    ({"scope": "teams", "channel": "7", "since": "2026-05-01", "until": "2026-05-02T08:30", "q": "  disk   full "},
     ListFilter("teams", channel=7, since="2026-05-01", until="2026-05-02T08:30", q="disk full")),
    ({"channel": "x", "since": "2026-13-01", "until": "yesterday", "q": "a" * 500},
     ListFilter(q="a" * 100)),
    ({"since": "2026-05-01T08:30:00+02:00"}, ListFilter()),
])
def test_list_filter_reads_the_new_filters(query, expected):
    assert ListFilter.from_query(query) == expected


@pytest.mark.parametrize("raw, zone, end, expected", [
    ("2026-05-01", "UTC", False, datetime(2026, 5, 1, tzinfo=UTC)),
    ("2026-05-01", "UTC", True, datetime(2026, 5, 2, tzinfo=UTC)),
    ("2026-05-01T08:30", "Europe/Paris", False, datetime(2026, 5, 1, 6, 30, tzinfo=UTC)),
    ("2026-05-01T08:30", "Europe/Paris", True, datetime(2026, 5, 1, 6, 31, tzinfo=UTC)),
    ("2026-05-01", "Not/AZone", False, datetime(2026, 5, 1, tzinfo=UTC)),
    ("", "UTC", True, None),
])
def test_instant(raw, zone, end, expected):
    assert instant(raw, zone, end=end) == expected


def test_instant_never_loses_a_minute():
    assert instant("2026-05-01T08:30", "UTC", end=True) - instant("2026-05-01T08:30", "UTC", end=False) \
        == timedelta(minutes=1)
