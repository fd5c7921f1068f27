"""Group-chat bots through a running Vigil: a level posts to a DingTalk bot (signed, @mentions by phone),
the ack posts again when the bot asks for acks, and the test-message endpoint; every platform posts the
bot template's markup once (no second escaping, headline or link) with its mentions."""

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
    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), "test-admin-token-0123456789abcdef")
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


async def test_every_platform_posts_its_template_once_with_mentions(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    fake = FakeGroupBots(feishu={"fs-hook": ""}, dingtalk={"dt-hook": ""}, wecom={"wc-hook"}, slack={"T1/B1/sk-hook"},
                         zoom={"zm-hook": "zoom-token"}, telegram={"123:tg": {"-100"}})
    server = await aiohttp_server(fake.app())
    base = str(server.make_url("")).rstrip("/")
    app = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), "test-admin-token-0123456789abcdef")
    urls = {"feishu": f"{base}/open-apis/bot/v2/hook/fs-hook", "dingtalk": f"{base}/robot/send?access_token=dt-hook",
            "wecom": f"{base}/cgi-bin/webhook/send?key=wc-hook", "slack": f"{base}/services/T1/B1/sk-hook",
            "zoom": f"{base}/chat/webhooks/incomingwebhook/zm-hook", "telegram": f"{base}/bot123:tg"}
    bot_ids = [(await app.post("/bots", {"type": t, "alias": t, "url": u, "secret": "zoom-token" if t == "zoom" else "",
                                         "chat_ids": ["-100"] if t == "telegram" else []}))["bot_id"]
               for t, u in urls.items()]
    ann = (await app.post("/members", {"name": "ann", "phone": "+8613800138000"}))["member_id"]
    for platform, im_id in (("slack", "U024BE7LH"), ("telegram", "4242"), ("wecom", "ann.w")):
        await app.post(f"/mapping-tables/{platform}/rows", {"member_id": ann, "im_user_id": im_id})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann]}, "media": ["email"], "bot_ids": bot_ids}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "disk <0> & full", "alert_key": "a"})
    await until(lambda: all(fake.of(t) for t in urls))
    [inc] = (await app.get("/incidents"))["items"]
    link = f"http://vigil.test/incidents/{inc['incident_id']}"
    body = {t: fake.of(t)[0].body for t in urls}

    telegram = body["telegram"]["text"]
    assert telegram.startswith("🔴 <b>[Critical] Triggered</b>: disk &lt;0&gt; &amp; full\n")
    assert telegram.endswith(f'<a href="{link}">Open incident</a>\n<a href="tg://user?id=4242">ann</a>')
    section = body["slack"]["blocks"][0]["text"]["text"]
    assert section.startswith("🔴 *[Critical] Triggered*: disk &lt;0&gt; &amp; full\n")
    assert section.endswith(f"<{link}|Open incident>\n<@U024BE7LH>")
    assert body["slack"]["text"] == "[Critical] [Triggered] disk &lt;0&gt; &amp; full <@U024BE7LH>"
    markdown = body["dingtalk"]["markdown"]
    assert markdown["title"] == "[Critical] [Triggered] disk <0> & full"
    # DingTalk markdown has no escape: "<" becomes its full-width look-alike so no tag can open (core/escaping.py)
    assert markdown["text"].startswith("### 🔴 [Critical] Triggered\n\n**disk ＜0> & full**\n")
    assert markdown["text"].endswith(f"[Open incident]({link})\n\n@+8613800138000")
    assert body["dingtalk"]["at"]["atMobiles"] == ["+8613800138000"]
    wecom = body["wecom"]["markdown"]["content"]
    assert wecom.startswith('**<font color="warning">[Critical] Triggered</font>**\n')
    assert wecom.endswith(f"[Open incident]({link})\n<@ann.w>")
    post = body["feishu"]["content"]["post"]["zh_cn"]
    assert post["title"] == "[Critical] [Triggered] disk <0> & full"
    assert post["content"][:2] == [
        [{"tag": "text", "text": "🔴 "}, {"tag": "text", "text": "[Critical] Triggered", "style": ["bold"]}],
        [{"tag": "text", "text": "disk <0> & full", "style": ["bold"]}]]
    assert post["content"][-2:] == [[{"tag": "a", "text": "Open incident", "href": link}],
                                    [{"tag": "text", "text": "@ann "}]]
    zoom = body["zoom"]["content"]
    assert zoom["head"]["text"] == "[Critical] [Triggered] disk <0> & full"
    assert [item["text"] for item in zoom["body"]] == [
        f"🔴 [Critical] Triggered: disk <0> & full\nprod · 1 alert · Triggered\n{link}", "@ann"]
    for platform, sent in body.items():
        shown = str(sent)
        assert "View incident" not in shown and "&amp;lt;" not in shown and "&lt;b&gt;" not in shown, platform
        assert shown.count(link) == 1, platform

    result = await app.post(f"/bots/{bot_ids[-1]}/test")  # plain text: escaped, our headline and link
    assert result["ok"] is True
    assert fake.of("telegram")[-1].body["text"] == (
        "<b>[Info] [Triggered] Vigil test message</b>\nVigil test message for bot telegram: delivery works.\n"
        '<a href="http://vigil.test">View incident</a>')
