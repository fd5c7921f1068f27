"""Live updates of an open incident list: its stream of server-sent events (bot/web/live_list.py), read as a
browser's EventSource reads it. A new incident the list would show is counted ("new"), one it would not show
this member is not; a change to a row it shows says "changed"."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.web.conftest import Browser, new_member
from tests.web.test_live import _next_event, _quiet


async def _open_list(browser: Browser, query: str = "") -> Any:
    """Open the list page, then its stream as live_list.js does."""
    status, _, body = await browser.get(f"/incidents{query}")
    assert status == 200
    url = html.unescape(re.search(r'data-live-list="([^"]+)"', body).group(1))
    return await browser.client.get(url)


async def _incident(app, key: str, title: str) -> int:  # type: ignore[no-untyped-def]
    await app.push(key, {"event_status": "Critical", "title_rule": title, "alert_key": title})
    return next(i["incident_id"] for i in (await app.get("/incidents"))["items"] if i["title"] == title)


async def test_a_new_incident_is_counted_and_a_shown_one_changes(app, browser: Browser):
    await new_member(app, "alice")
    _, key = await app.channel_with_integration("prod")
    shown = await _incident(app, key, "db down")
    await app.settle()
    await browser.sign_in("alice@example.com")
    stream = await _open_list(browser)
    assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
    assert await _quiet(stream, 1.5)  # the page is current: nothing to say
    await _incident(app, key, "cache down")
    assert await _next_event(stream) == ("new", "1")
    await _incident(app, key, "queue down")
    assert await _next_event(stream) == ("new", "2")
    await app.post(f"/incidents/{shown}/ack")
    event, version = await _next_event(stream)
    assert event == "changed" and version
    stream.close()


async def test_the_count_keeps_to_the_members_scope(app, browser: Browser):
    alice = await new_member(app, "alice")
    team = await app.post("/teams", {"name": "db", "member_ids": [alice]})
    _, theirs = await app.channel_with_integration("databases", team_ids=[team["team_id"]])
    _, others = await app.channel_with_integration("frontends")
    await _incident(app, theirs, "replica lag")
    await app.settle()
    await browser.sign_in("alice@example.com")
    stream = await _open_list(browser, "?scope=teams")
    everything = await _open_list(browser)
    await _incident(app, others, "nginx 5xx")  # not a channel of alice's teams
    assert await _next_event(everything) == ("new", "1")
    assert await _quiet(stream, 2.5)
    await _incident(app, theirs, "replica down")
    assert await _next_event(stream) == ("new", "1")
    older = await _open_list(browser, "?before=2")  # an older page is history: it hears of no new incident
    await _incident(app, theirs, "replica gone")
    assert await _quiet(older, 2.5)
    for s in (stream, everything, older):
        s.close()


async def test_a_list_stream_needs_a_session_and_sane_rows(app, browser: Browser):
    await new_member(app, "alice")
    assert (await browser.client.get("/incidents/live?rows=&top=0")).status == 401
    await browser.sign_in("alice@example.com")
    for query in ("rows=1,x&top=0", "rows=&top=", "rows=" + ",".join(["1"] * 31) + "&top=0"):
        resp = await browser.client.get(f"/incidents/live?{query}")
        assert resp.status == 400 and "rows" in await resp.text(), query
