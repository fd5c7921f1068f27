"""A chat callback is refused before its body is read when its headers already show it is not the platform's:
signature missing or stale (every platform that signs in headers), or wrong where the platform signs only
headers (DingTalk's timestamp/sign, Teams' token); and a body larger than any callback is refused unread.
An attacker who declares a large body and sends it slowly holds nothing.

Feishu puts its URL challenge and unsigned apps' token in the body, so it has nothing to check first: its
callbacks are read (under the request deadline) and verified as before.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.chat.test_callback_replay import Kit, incident_clicked_by_ann, post, progress
from tests.fakes import dingtalk as dt
from tests.kit import Api

SIGNED_IN_HEADERS = ["dingtalk", "slack", "teams", "wecom"]


async def _declare_and_stall(app: Api, platform: str, headers: dict[str, str], query: str = "",
                             declared: int = 100_000) -> bytes:
    """POST headers that promise `declared` bytes, send a few, and return what the server answers meanwhile."""
    server = app.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "application/json")
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items()
                    if k.lower() not in ("content-type", "content-length", "host")) + f"Content-Type: {ctype}\r\n"
    writer.write(f"POST /im/{platform}/callback{query} HTTP/1.1\r\nHost: vigil\r\n"
                 f"{lines}Content-Length: {declared}\r\n\r\n{{\"a\":".encode())
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(4096), timeout=3)  # well inside the 10 s read deadline
    finally:
        writer.close()


@pytest.mark.parametrize("kit", SIGNED_IN_HEADERS, indirect=True)
async def test_an_unsigned_callback_is_refused_before_its_body_arrives(vigil, kit: Kit) -> None:
    iid = await incident_clicked_by_ann(vigil, kit)
    started = time.monotonic()
    answer = await _declare_and_stall(vigil, kit.platform, {})
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    assert b"signature missing, stale or wrong" in answer
    assert time.monotonic() - started < 3
    assert await progress(vigil, iid) == "Triggered"


# A Teams token carries no timestamp of the request: its expiry is checked with the body.
@pytest.mark.parametrize("kit", ["dingtalk", "slack", "wecom"], indirect=True)
async def test_a_stale_signature_is_refused_before_the_body(vigil, kit: Kit) -> None:
    """The platform's own signing, but of a click captured an hour ago."""
    await incident_clicked_by_ann(vigil, kit)
    fresh = kit.sign("ack:1")
    stale = {k: v for k, v in fresh.headers.items()}
    query = dict(fresh.query)
    for name in ("X-Slack-Request-Timestamp", "timestamp"):
        if name in stale:
            stale[name] = str(int(stale[name]) - (3_600_000 if kit.platform == "dingtalk" else 3_600))
    if "timestamp" in query:
        query["timestamp"] = str(int(query["timestamp"]) - 3_600)
    qs = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    answer = await _declare_and_stall(vigil, kit.platform, stale, qs)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]


@pytest.mark.parametrize("kit", ["dingtalk"], indirect=True)
async def test_a_forged_dingtalk_sign_is_refused_before_the_body(vigil, kit: Kit) -> None:
    """DingTalk signs only its timestamp, so the whole check runs on the headers."""
    await incident_clicked_by_ann(vigil, kit)
    forged = dt.signed_headers("not-the-app-secret", int(time.time() * 1000))
    answer = await _declare_and_stall(vigil, kit.platform, forged)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]


@pytest.mark.parametrize("kit", SIGNED_IN_HEADERS, indirect=True)
async def test_a_body_larger_than_any_callback_is_refused_unread(vigil, kit: Kit) -> None:
    iid = await incident_clicked_by_ann(vigil, kit)
    signed = kit.sign(f"cls:{iid}")
    answer = await _declare_and_stall(vigil, kit.platform, signed.headers,
                                      "?" + "&".join(f"{k}={v}" for k, v in signed.query.items())
                                      if signed.query else "", declared=900_000)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert await progress(vigil, iid) == "Triggered"
    assert await post(vigil, kit, signed) == 200  # the same click, as the platform sends it, still works
