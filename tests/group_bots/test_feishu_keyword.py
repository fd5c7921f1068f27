"""Feishu's custom-bot security keyword: the fake refuses a post without it (19024, as Feishu does), and
every post of a bot with a keyword carries it, through the sender and through a running Vigil."""

from __future__ import annotations

import pytest

from bot.group_bots import send
from bot.group_bots.feishu import with_keyword
from core.errors import DeliveryError
from tests.fakes.group_bots import FakeGroupBots
from tests.group_bots.conftest import FEISHU_TOKEN, Running
from tests.kit import Api, until


def _post(*lines: list[dict]) -> dict:
    return {"post": {"zh_cn": {"title": "t", "content": list(lines)}}}


@pytest.mark.parametrize(("keyword", "lines", "first_line"), [
    ("", [[{"tag": "text", "text": "db down"}]], [{"tag": "text", "text": "db down"}]),
    ("#", [[{"tag": "text", "text": "db down"}]], [{"tag": "text", "text": "# "}, {"tag": "text", "text": "db down"}]),
    # already in the text (any element, any line): not added twice
    ("#", [[{"tag": "text", "text": "x"}], [{"tag": "a", "text": "#42", "href": "h"}]], [{"tag": "text", "text": "x"}]),
    ("告警", [], [{"tag": "text", "text": "告警"}]),
])
def test_with_keyword(keyword, lines, first_line):
    content = with_keyword(_post(*lines), keyword)["post"]["zh_cn"]
    assert content["content"][0] == first_line and content["title"] == "t"


async def test_a_post_without_the_keyword_is_refused_and_one_with_it_passes(bots: Running, http, page):
    bots.fake.feishu_keywords[FEISHU_TOKEN] = {"#"}
    with pytest.raises(DeliveryError) as err:
        await send(bots.config("feishu"), page, http)
    assert "19024" in str(err.value) and not err.value.retryable
    assert await send(bots.config("feishu", keyword="#"), page, http) == ""
    [got] = bots.fake.of("feishu")
    assert got.body["content"]["post"]["zh_cn"]["content"][0][0] == {"tag": "text", "text": "# "}


@pytest.fixture
async def vigil(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    fake = FakeGroupBots(feishu={"fs-hook": ""}, feishu_keywords={"fs-hook": {"#"}})
    server = await aiohttp_server(fake.app())
    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))),
              "test-admin-token-0123456789abcdef")
    return api, fake, str(server.make_url("/open-apis/bot/v2/hook/fs-hook"))


async def test_the_keyword_is_a_bot_setting_every_post_carries(vigil):
    app, fake, url = vigil
    bot = await app.post("/bots", {"type": "feishu", "alias": "ops", "url": url})
    refused = await app.post(f"/bots/{bot['bot_id']}/test")
    assert refused["ok"] is False and "19024" in refused["result"]

    patched = await app.patch(f"/bots/{bot['bot_id']}", {"keyword": " # "})
    assert patched["keyword"] == "#"
    assert (await app.post(f"/bots/{bot['bot_id']}/test"))["ok"] is True
    cid, key = await app.channel_with_integration()
    ann = await app.post("/members", {"name": "ann"})
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["email"], "bot_ids": [bot["bot_id"]]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": "a"})
    await until(lambda: len(fake.of("feishu")) >= 2)
    page = fake.of("feishu")[-1].body["content"]["post"]["zh_cn"]
    assert page["content"][0][0] == {"tag": "text", "text": "# "} and "db down" in str(page)
    [inc] = (await app.get("/incidents"))["items"]
    deliveries = [d for d in (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"] if d["bot_id"]]
    assert [d["state"] for d in deliveries] == ["sent"]
    assert (await app.get("/bots"))["items"][0]["keyword"] == "#"


async def test_a_keyword_on_another_platform_is_refused_by_name(vigil):
    app, _, _ = vigil
    answer = await app.post("/bots", {"type": "dingtalk", "alias": "d", "url": "dt-token", "keyword": "#"},
                            expect=400)
    assert "bot.keyword" in str(answer)
