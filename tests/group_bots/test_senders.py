"""Each group bot posts to the six-platform fake: signatures, native @mentions, failures and redaction."""

from __future__ import annotations

import dataclasses
import time
from typing import Any
from urllib.parse import quote

import pytest

from bot.adapters.errors import DeliveryError
from bot.group_bots import BOT_TYPES, BOTS, Mention, send
from bot.group_bots._common import webhook_url
from bot.group_bots.model import BotConfig
from tests.conftest import free_port
from tests.group_bots.conftest import (
    DINGTALK_SECRET,
    DINGTALK_TOKEN,
    FEISHU_SECRET,
    FEISHU_TOKEN,
    SLACK_PATH,
    TELEGRAM_CHATS,
    TELEGRAM_TOKEN,
    WECOM_KEY,
    ZOOM_TOKEN,
    Running,
    assert_no_secret,
)


def test_registry_covers_every_bot_type():
    assert set(BOTS) == set(BOT_TYPES)
    assert all(sender.type == name for name, sender in BOTS.items())


async def test_feishu_posts_signed_post_with_at_tags(bots: Running, http, page):
    assert await send(bots.config("feishu"), page, http) == ""
    [got] = bots.fake.of("feishu")
    assert got.body["msg_type"] == "post" and got.body["sign"] and got.body["timestamp"]
    post = got.body["content"]["post"]["zh_cn"]
    assert post["title"] == "[Critical] [Triggered] CPU > 95% on db-1"
    items = [item for line in post["content"] for item in line]
    assert {i["user_id"] for i in items if i["tag"] == "at"} == {"111", "333"}
    assert any(i["tag"] == "text" and "@Bob" in i["text"] for i in items)  # no Feishu id: named in text
    assert {"tag": "a", "text": "View incident", "href": page.url} in items


async def test_dingtalk_signs_url_and_ats_by_phone(bots: Running, http, page):
    await send(bots.config("dingtalk", at_all=True), page, http)
    [got] = bots.fake.of("dingtalk")
    assert got.query["access_token"] == DINGTALK_TOKEN and got.query["sign"] and got.query["timestamp"]
    assert got.body["msgtype"] == "markdown"
    assert got.body["at"] == {"atMobiles": ["13800000001", "13800000002"], "atUserIds": ["333"], "isAtAll": True}
    for tag in ("@13800000001", "@13800000002", "@333"):  # DingTalk only notifies when the @ is in the text
        assert tag in got.body["markdown"]["text"]


async def test_wecom_uses_text_mention_lists_when_someone_has_only_a_phone(bots: Running, http, page):
    await send(bots.config("wecom"), page, http)
    [got] = bots.fake.of("wecom")
    assert got.body["msgtype"] == "text"
    assert got.body["text"]["mentioned_list"] == ["111", "333"]
    assert got.body["text"]["mentioned_mobile_list"] == ["13800000002"]


async def test_wecom_uses_markdown_with_userid_tags_when_everyone_is_mapped(bots: Running, http, page):
    mapped = dataclasses.replace(page, mentions=(Mention("Alice", "111"), Mention("Carol", "333")))
    await send(bots.config("wecom"), mapped, http)
    [got] = bots.fake.of("wecom")
    assert got.body["msgtype"] == "markdown"
    assert "<@111>" in got.body["markdown"]["content"] and "<@333>" in got.body["markdown"]["content"]


async def test_slack_posts_mrkdwn_with_user_mentions_and_escapes_text(bots: Running, http, page):
    await send(bots.config("slack"), page, http)
    [got] = bots.fake.of("slack")
    section = got.body["blocks"][0]["text"]
    assert section["type"] == "mrkdwn"
    assert "<@111>" in section["text"] and "<@333>" in section["text"] and "@Bob" in section["text"]
    assert "&amp; rising &lt;fast&gt;" in section["text"]
    assert f"<{page.url}|" in section["text"]


async def test_zoom_sends_verification_token_and_full_format(bots: Running, http, page):
    mapped = dataclasses.replace(page, mentions=(Mention("Alice", "alice_jid@xmpp.zoom.us"),))
    await send(bots.config("zoom"), mapped, http)
    [got] = bots.fake.of("zoom")
    assert got.headers["Authorization"] == ZOOM_TOKEN and got.query["format"] == "full"
    content = got.body["content"]
    assert content["head"]["text"].startswith("[Critical]")
    assert any(item.get("text") == "<!alice_jid@xmpp.zoom.us|Alice>" for item in content["body"])


async def test_telegram_sends_one_html_message_per_chat(bots: Running, http, page):
    ids = await send(bots.config("telegram"), page, http)
    got = bots.fake.of("telegram")
    assert [r.body["chat_id"] for r in got] == list(TELEGRAM_CHATS)
    assert ids == ",".join(f"{r.body['chat_id']}:{n}" for r, n in zip(got, (1001, 1002)))
    text = got[0].body["text"]
    assert got[0].body["parse_mode"] == "HTML"
    assert '<a href="tg://user?id=111">Alice</a>' in text and '<a href="tg://user?id=333">Carol</a>' in text
    assert "&amp; rising &lt;fast&gt;" in text  # the fake rejects unescaped HTML, so acceptance proves it


@pytest.mark.parametrize("bot_type", ["feishu", "dingtalk"])
async def test_a_wrong_signing_secret_is_a_permanent_failure_despite_http_200(bots: Running, http, page, bot_type):
    with pytest.raises(DeliveryError) as err:
        await send(bots.config(bot_type, secret="wrong-secret-value"), page, http)
    assert not err.value.retryable
    assert {"feishu": "19021", "dingtalk": "310000"}[bot_type] in str(err.value)
    assert_no_secret(err.value, "wrong-secret-value")
    assert bots.fake.of(bot_type) == []


async def test_an_unsigned_message_to_a_signed_feishu_bot_is_rejected(bots: Running, http, page):
    with pytest.raises(DeliveryError, match="19021") as err:
        await send(bots.config("feishu", secret=""), page, http)
    assert not err.value.retryable


@pytest.mark.parametrize(("bot_type", "url_part", "expect"), [
    ("feishu", "/open-apis/bot/v2/hook/unknown-token-123", "19001"),
    ("dingtalk", "/robot/send?access_token=unknown-token-123", "300001"),
    ("wecom", "/cgi-bin/webhook/send?key=unknown-key-123", "93000"),
    ("slack", "/services/T1/B1/unknown-hook-123", "no_service"),
    ("zoom", "/chat/webhooks/incomingwebhook/unknown-endpoint-123", "404"),
    ("telegram", "/botunknown-token-123", "401"),
])
async def test_an_unknown_bot_is_a_permanent_failure(bots: Running, http, page, bot_type, url_part, expect):
    with pytest.raises(DeliveryError, match=expect) as err:
        await send(bots.config(bot_type, url=bots.url + url_part), page, http)
    assert not err.value.retryable
    assert_no_secret(err.value, "unknown-token-123", "unknown-key-123", "unknown-hook-123", "unknown-endpoint-123")


async def test_a_wrong_zoom_verification_token_is_permanent(bots: Running, http, page):
    with pytest.raises(DeliveryError, match="401") as err:
        await send(bots.config("zoom", secret="not-the-token"), page, http)
    assert not err.value.retryable
    assert_no_secret(err.value, "not-the-token")


async def test_a_telegram_chat_the_bot_is_not_in_fails_but_the_other_chats_still_get_the_page(bots, http, page):
    with pytest.raises(DeliveryError, match="chat not found") as err:
        await send(bots.config("telegram", chat_ids=("-1001", "-999")), page, http)
    assert not err.value.retryable
    assert [r.body["chat_id"] for r in bots.fake.of("telegram")] == ["-1001"]


@pytest.mark.parametrize(("bot_type", "status", "body", "headers", "retry_after"), [
    ("dingtalk", 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, None, None),
    ("dingtalk", 200, {"errcode": 410100, "errmsg": "send too fast"}, None, None),
    ("feishu", 200, {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]"}, None, None),
    ("feishu", 200, {"code": 9499, "msg": "too many request"}, None, None),
    ("wecom", 200, {"errcode": 45009, "errmsg": "api freq out of limit"}, None, None),
    ("slack", 429, "rate_limited", {"Retry-After": "7"}, 7.0),
    ("zoom", 429, {"code": 429, "message": "Too many requests"}, {"Retry-After": "3"}, 3.0),
    ("telegram", 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5",
                       "parameters": {"retry_after": 5}}, None, 5.0),
])
async def test_rate_limit_answers_are_retryable(bots, http, page, bot_type, status, body, headers, retry_after):
    bots.fake.answer_next(bot_type, status, body, headers)
    with pytest.raises(DeliveryError) as err:
        await send(bots.config(bot_type, chat_ids=TELEGRAM_CHATS[:1]) if bot_type == "telegram"
                   else bots.config(bot_type), page, http)
    assert err.value.retryable
    assert err.value.retry_after == retry_after


@pytest.mark.parametrize(("bot_type", "body"), [
    ("feishu", {"code": 9499, "msg": "Bad Request", "data": {}}),
    ("feishu", {"StatusCode": 19002, "StatusMessage": "bot not in chat"}),
    ("dingtalk", {"errcode": 310000, "errmsg": "keywords not in content"}),
    ("wecom", {"errcode": 93000, "errmsg": "invalid webhook url"}),
])
async def test_platform_error_json_with_http_200_is_a_permanent_failure(bots, http, page, bot_type, body):
    bots.fake.answer_next(bot_type, 200, body)
    with pytest.raises(DeliveryError) as err:
        await send(bots.config(bot_type), page, http)
    assert not err.value.retryable


@pytest.mark.parametrize("bot_type", BOT_TYPES)
async def test_a_5xx_answer_is_retryable(bots: Running, http, page, bot_type):
    bots.fake.answer_next(bot_type, 502, "<html>Bad Gateway</html>")
    bots.fake.answer_next(bot_type, 502, "<html>Bad Gateway</html>")
    with pytest.raises(DeliveryError) as err:
        await send(bots.config(bot_type), page, http)
    assert err.value.retryable


@pytest.mark.parametrize("bot_type", BOT_TYPES)
async def test_a_bot_url_that_hangs_times_out_as_retryable(bots: Running, http, page, bot_type):
    bots.fake.delay[bot_type] = 2.0
    with pytest.raises(DeliveryError, match="timed out") as err:
        await send(bots.config(bot_type, timeout=0.2, chat_ids=TELEGRAM_CHATS[:1]) if bot_type == "telegram"
                   else bots.config(bot_type, timeout=0.2), page, http)
    assert err.value.retryable
    assert_no_secret(err.value)


@pytest.mark.parametrize("bot_type", BOT_TYPES)
async def test_an_unreachable_bot_is_retryable_and_keeps_its_url_secret(http, page, bot_type):
    token = "tok-unreachable-9f8e7d6c"
    config = BotConfig(type=bot_type, url=f"http://127.0.0.1:{free_port()}/hook/{token}?key={token}x",
                       secret="sign-secret-abc123" if bot_type != "zoom" else "zoom-verify-abc123",
                       chat_ids=("-1",), timeout=1.0)
    with pytest.raises(DeliveryError) as err:
        await send(config, page, http)
    assert err.value.retryable
    assert_no_secret(err.value, token, f"{token}x", "sign-secret-abc123", "zoom-verify-abc123")


@pytest.mark.parametrize("bot_type", BOT_TYPES)
async def test_an_error_body_echoing_credentials_is_redacted(bots: Running, http, page, bot_type):
    config = bots.config(bot_type)
    raw = {"feishu": FEISHU_TOKEN, "dingtalk": DINGTALK_TOKEN, "wecom": WECOM_KEY, "slack": SLACK_PATH,
           "zoom": ZOOM_TOKEN, "telegram": TELEGRAM_TOKEN}[bot_type]
    echo = f"denied for {config.url} secret={config.secret} token={raw} quoted={quote(raw, safe='')}"
    answer: Any = {"feishu": {"code": 19001, "msg": echo}, "dingtalk": {"errcode": 300001, "errmsg": echo},
                   "wecom": {"errcode": 93000, "errmsg": echo}, "slack": echo,
                   "zoom": {"code": 403, "message": echo},
                   "telegram": {"ok": False, "error_code": 403, "description": echo}}[bot_type]
    bots.fake.answer_next(bot_type, 200 if bot_type in ("feishu", "dingtalk", "wecom") else 403, answer)
    bots.fake.answer_next(bot_type, 403, answer)
    with pytest.raises(DeliveryError) as err:
        await send(config, page, http)
    assert not err.value.retryable
    assert_no_secret(err.value)


async def test_the_fake_dingtalk_limit_is_a_retryable_failure(bots: Running, http, page):
    for _ in range(20):
        await send(bots.config("dingtalk"), page, http)
    with pytest.raises(DeliveryError, match="130101") as err:
        await send(bots.config("dingtalk"), page, http)
    assert err.value.retryable


async def test_any_domain_is_accepted(aiohttp_server, http, page):
    """Bots are often pointed at a relay: a DingTalk-format endpoint on another path still receives posts."""
    from aiohttp import web

    seen: list[dict[str, Any]] = []

    async def relay(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/my/relay", relay)
    server = await aiohttp_server(app)
    await send(BotConfig(type="dingtalk", url=str(server.make_url("/my/relay"))), page, http)
    assert seen and seen[0]["msgtype"] == "markdown"


@pytest.mark.parametrize(("bot_type", "token", "expected"), [
    ("dingtalk", "abc", "https://oapi.dingtalk.com/robot/send?access_token=abc"),
    ("wecom", "k1", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1"),
    ("feishu", "h1", "https://open.feishu.cn/open-apis/bot/v2/hook/h1"),
])
def test_a_bare_token_goes_into_the_public_webhook_url(bot_type, token, expected):
    module = __import__(f"bot.group_bots.{bot_type}", fromlist=["DEFAULT_BASE"])
    key = {"dingtalk": "access_token", "wecom": "key", "feishu": ""}[bot_type]
    assert webhook_url(BotConfig(type=bot_type, url=token), module.DEFAULT_BASE, query_key=key) == expected


def test_signatures_match_the_documented_algorithms():
    import base64
    import hashlib
    import hmac

    from bot.group_bots import dingtalk, feishu

    stamp = int(time.time())
    assert feishu.sign(FEISHU_SECRET, stamp) == base64.b64encode(
        hmac.new(f"{stamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()).decode()
    assert dingtalk.sign(DINGTALK_SECRET, stamp * 1000) == base64.b64encode(
        hmac.new(DINGTALK_SECRET.encode(), f"{stamp * 1000}\n{DINGTALK_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()


async def test_digest_messages_are_accepted_by_every_platform(bots: Running, http, page):
    from bot.bot_queue import digest

    many = digest([dataclasses.replace(page, title=f"incident {i} <x> & y") for i in range(60)])
    for bot_type in BOT_TYPES:
        await send(bots.config(bot_type), many, http)
        assert bots.fake.of(bot_type), bot_type
