"""Group-chat bots through a running Vigil: a level posts to a DingTalk bot (signed, @mentions by phone),
the ack posts again when the bot asks for acks, and the test-message endpoint."""

from __future__ import annotations

import pytest

from tests.fakes.group_bots import FakeGroupBots
from tests.kit import Api, until

TOKEN, SECRET = "dt-access-token", "SECdingtalk-signing-secret"


@pytest.fixture
async def env(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    fake = FakeGroupBots(dingtalk={TOKEN: SECRET})
    server = await aiohttp_server(fake.app())
    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), "test-admin-token")
    return api, fake, str(server.make_url(f"/robot/send?access_token={TOKEN}"))


async def test_level_bot_posts_signed_with_mentions_and_event_updates(env):
    app, fake, url = env
    bot = await app.post("/bots", {"type": "dingtalk", "alias": "ops", "url": url, "secret": SECRET,
                                   "event_types": ["i_new", "i_ack"]})
    ann = await app.post("/members", {"name": "ann", "phone": "+8613800138000"})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["email"], "bot_ids": [bot["bot_id"]]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": "a"})
    await until(lambda: fake.of("dingtalk"))
    first = fake.of("dingtalk")[0]
    assert "db down" in str(first.body) and "13800138000" in str(first.body)
    [inc] = (await app.get("/incidents"))["items"]
    await app.post(f"/incidents/{inc['incident_id']}/ack")
    await until(lambda: len(fake.of("dingtalk")) >= 2)
    await app.post(f"/incidents/{inc['incident_id']}/comment", {"comment": "not an event this bot wants"})
    await app.settle()
    assert len(fake.of("dingtalk")) == 2
    deliveries = [d for d in (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"] if d["bot_id"]]
    assert {d["state"] for d in deliveries} == {"sent"}


async def test_wrong_secret_fails_and_is_recorded(env):
    app, fake, url = env
    bot = await app.post("/bots", {"type": "dingtalk", "alias": "bad", "url": url, "secret": "wrong"})
    result = await app.post(f"/bots/{bot['bot_id']}/test")
    assert result["ok"] is False and "wrong" not in result["result"]
    good = await app.post("/bots", {"type": "dingtalk", "alias": "good", "url": url, "secret": SECRET})
    assert (await app.post(f"/bots/{good['bot_id']}/test"))["ok"] is True
    assert "Vigil test message" in str(fake.of("dingtalk")[-1].body)
