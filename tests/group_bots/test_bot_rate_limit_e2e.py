"""A running Vigil (in-process jobs, real time) keeps a Telegram bot to one post a second during a burst."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from aiohttp import web

from tests.fakes.group_bots import FakeGroupBots
from tests.kit import Api, until

TOKEN, CHAT = "123456:ABC-telegramBotToken_xyz", "-1001"


@pytest.fixture
async def env(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    fake = FakeGroupBots(telegram={TOKEN: {CHAT}})
    arrivals: list[float] = []
    app = fake.app()

    async def stamp(_request: web.Request, _response: web.StreamResponse) -> None:
        arrivals.append(time.monotonic())

    app.on_response_prepare.append(stamp)
    server = await aiohttp_server(app)
    api = Api(
        await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), "test-admin-token-0123456789abcdef"
    )
    return api, fake, arrivals, str(server.make_url(f"/bot{TOKEN}"))


async def test_a_burst_is_paced_and_merged_and_every_delivery_ends_sent(env):
    api, fake, arrivals, url = env
    bot = await api.post("/bots", {"type": "telegram", "alias": "ops", "url": url, "chat_ids": [CHAT]})
    cid, key = await api.channel_with_integration()
    await api.post(
        f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [{"bot_ids": [bot["bot_id"]]}]}
    )
    await asyncio.gather(
        *(
            api.push(key, {"event_status": "Critical", "title_rule": f"disk {i} full", "alert_key": f"d{i}"})
            for i in range(8)
        )
    )

    async def bot_deliveries() -> list[dict]:
        incidents = (await api.get("/incidents"))["items"]
        return [
            d
            for i in incidents
            for d in (await api.get(f"/incidents/{i['incident_id']}/deliveries"))["items"]
        ]

    async def all_sent() -> bool:
        ds = await bot_deliveries()
        return len(ds) == 8 and all(d["state"] == "sent" for d in ds)

    await until(all_sent, timeout=30)
    ds = await bot_deliveries()
    posts = fake.of("telegram")
    assert len(posts) < 8, "at one post a second, part of the burst went out as a digest"
    assert {d["provider_message_id"] for d in ds} == {f"{CHAT}:{1001 + n}" for n in range(len(posts))}
    named = [set(re.findall(r"disk (\d+) full", p.body["text"])) for p in posts]
    assert sum(len(n) for n in named) == len(set().union(*named)) == 8, (
        "every incident is in exactly one post"
    )
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    # Slots are booked a second apart; arrivals jitter by the time each post takes to render and send.
    assert all(g > 0.5 for g in gaps), f"posts closer than the limit allows: {gaps}"
