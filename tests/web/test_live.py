"""Live updates of an open incident page: its stream of server-sent events (bot/web/live.py), read as a
browser's EventSource reads it."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.web import live
from tests.web.conftest import Browser, new_incident, new_member


async def _open(browser: Browser, iid: int, *, version: str | None = None) -> Any:
    """Open the page, then its stream as live.js does (with the version the page shows)."""
    body = (await browser.get(f"/incidents/{iid}"))[2]
    url = html.unescape(re.search(r'data-live-stream="([^"]+)"', body).group(1))
    if version is not None:
        url = url.split("?")[0] + f"?v={version}"
    return await browser.client.get(url)


async def _next_event(resp: Any, timeout: float = 10.0) -> tuple[str, str]:
    """(event, data) of the next event, skipping the retry hint and keep-alive comments."""
    while True:
        block = (await asyncio.wait_for(resp.content.readuntil(b"\n\n"), timeout)).decode()
        fields = {name: value.removeprefix(" ") for name, _, value in
                  (line.partition(":") for line in block.strip("\n").split("\n") if not line.startswith(":"))}
        if "event" in fields:
            return fields["event"], fields.get("data", "")


async def _quiet(resp: Any, seconds: float) -> bool:
    """True when no event arrives for `seconds`."""
    try:
        await _next_event(resp, seconds)
    except TimeoutError:
        return True
    return False


async def _token_of(app, member_id: int) -> str:  # type: ignore[no-untyped-def]
    return (await app.post("/tokens", {"name": f"t{member_id}", "member_id": member_id, "role": "responder"}))["token"]


async def test_another_members_comment_reaches_an_open_page(app, browser: Browser):
    await new_member(app, "alice")
    bob = await new_member(app, "bob")
    iid = await new_incident(app)
    await app.settle()
    await browser.sign_in("alice@example.com")
    stream = await _open(browser, iid)
    assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
    assert await _quiet(stream, 1.5)  # the page shows the current version: nothing to say
    await app.post(f"/incidents/{iid}/comment", {"comment": "rolled back"}, token=await _token_of(app, bob))
    event, version = await _next_event(stream)
    assert event == "changed" and version
    assert "rolled back" in (await browser.get(f"/incidents/{iid}"))[2]
    stream.close()


async def test_a_page_older_than_the_incident_is_told_at_once(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    stream = await _open(browser, iid, version="0.0.0.0")
    assert (await _next_event(stream, 3))[0] == "changed"
    stream.close()


async def test_a_stream_needs_a_session_and_an_incident(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app)
    resp = await browser.client.get(f"/incidents/{iid}/live")
    assert resp.status == 401  # EventSource gives up on anything but 200 text/event-stream
    await browser.sign_in("alice@example.com")
    assert (await browser.client.get("/incidents/999999/live")).status == 404


async def test_a_member_has_a_bounded_number_of_streams(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    streams = [await _open(browser, iid) for _ in range(live.MAX_STREAMS_PER_MEMBER)]
    assert [s.status for s in streams] == [200] * live.MAX_STREAMS_PER_MEMBER
    refused = await _open(browser, iid)
    assert refused.status == 429 and "close one" in await refused.text()
    streams[0].close()
    hub = app.client.app[live.HUB]

    async def freed() -> bool:
        await asyncio.sleep(0.05)
        return hub.per_member.total() < live.MAX_STREAMS_PER_MEMBER

    # the server notices a closed stream at its next write: make one (a change to send)
    await app.post(f"/incidents/{iid}/comment", {"comment": "x"})
    for _ in range(200):
        if await freed():
            break
    assert (await _open(browser, iid)).status == 200


async def test_a_demoted_member_is_signed_out_of_the_stream(app, browser: Browser):
    alice = await new_member(app, "alice")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    stream = await _open(browser, iid)
    await app.patch(f"/members/{alice}", {"role": "observer"})
    assert await _next_event(stream) == ("signed-out", "")
    assert await stream.content.read() == b""  # and the stream ends


async def test_signing_out_ends_the_sessions_streams(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    stream = await _open(browser, iid)
    status, location, _ = await browser.post("/logout", {}, form_at=f"/incidents/{iid}")
    assert (status, location) == (303, "/login")
    assert await _next_event(stream, 3) == ("signed-out", "")


@pytest.mark.parametrize("role, epoch, row, expected", [
    ("responder", 0, ("responder", None), True),
    ("responder", 2, ("responder", 2), True),
    ("responder", 0, ("observer", None), False),  # demoted
    ("responder", 1, ("responder", 2), False),  # password changed elsewhere
    ("responder", 0, None, False),  # removed
])
def test_still_signed_in(role, epoch, row, expected):
    assert live.still_signed_in(role, epoch, row) is expected


def test_version_changes_with_the_row_and_the_timeline():
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    base = live.version_of(at, 3, 10, 40)
    assert base == f"{int(at.timestamp() * 1_000_000)}.3.10.40"
    # a late commit below the last id seen still changes the count
    assert len({base, live.version_of(at, 3, 11, 40), live.version_of(at, 4, 10, 40), live.version_of(None, 3, 10, 40)}) == 4


async def test_signing_out_on_another_process_ends_the_stream(settings, aiohttp_client):
    """Two Vigil processes on one database (two applications here): the page's stream is held by one, the
    sign-out reaches the other. The stream's process finds the session signed out at its next session check."""
    from bot.server import create_app
    from tests.kit import Api

    settings = settings.model_copy(update={"web_session_check_seconds": 0.5})
    one = Api(await aiohttp_client(create_app(settings)), "test-admin-token-0123456789abcdef")
    other = Browser(await aiohttp_client(create_app(settings)))
    await new_member(one, "alice")
    iid = await new_incident(one)
    browser = Browser(one.client)
    await browser.sign_in("alice@example.com")
    stream = await _open(browser, iid)
    assert stream.status == 200 and await _quiet(stream, 1.2)  # signed in: a session check passes
    # the same browser, its request sent to the other process
    other.client.session.cookie_jar.update_cookies(browser.client.session.cookie_jar.filter_cookies(
        one.client.make_url("/")))
    status, location, _ = await other.post("/logout", {}, form_at=f"/incidents/{iid}")
    assert (status, location) == (303, "/login")
    assert one.client.app[live.HUB].streams  # no in-process notice reached the stream's process
    assert await _next_event(stream, 3) == ("signed-out", "")
    assert await stream.content.read() == b""


def test_the_version_of_a_lists_rows():
    one = live.version_of_many({7: "1.0.2.9"}, (7,))
    assert one == "1.0.2.9" and live.version_of_many({}, (7,)) == "gone"  # an incident page's, as before
    rows = {1: "a", 2: "b", 3: "c"}
    base = live.version_of_many(rows, (1, 2, 3))
    assert base == live.version_of_many(rows, (3, 1, 2))  # the rows' order on the page does not matter
    assert base != live.version_of_many({**rows, 2: "b2"}, (1, 2, 3))  # any row's change does
    assert base != live.version_of_many({1: "a", 3: "c"}, (1, 2, 3))  # so does a row that is gone
