"""Each group bot posts to the six-platform fake: signatures, native @mentions, failures and redaction."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any
from urllib.parse import quote

import pytest

from bot.adapters.errors import DeliveryError
from bot.group_bots import BOT_TYPES, BOTS, BotMessage, Mention, send
from bot.group_bots._common import webhook_url
from bot.group_bots.model import BotConfig
from core.templates import TemplateSet, incident_context
from core.types import Progress, Severity
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
    from bot.group_bots.pacing import digest

    many = digest([dataclasses.replace(page, title=f"incident {i} <x> & y") for i in range(60)])
    for bot_type in BOT_TYPES:
        await send(bots.config(bot_type), many, http)
        assert bots.fake.of(bot_type), bot_type


# -- templated messages: the bot template's own markup is posted once, as written -------------------------

URL = "https://vigil.example.com/incidents/42"
INCIDENT = {"incident_id": 42, "num": 42, "title": "db-1 <disk> 95% & *full*", "incident_severity": "Critical",
            "progress": "Triggered", "channel_name": "Payments", "labels": {"host": "db-1"}, "alert_cnt": 3,
            "detail_url": URL}
HEADLINE = "[Critical] [Triggered] db-1 <disk> 95% & *full*"  # the senders' own headline (titles, fallbacks)


def templated(page: BotMessage, bot_type: str) -> BotMessage:
    """`page` with its text rendered from the shipped bot template, as bot_sender.message_for builds it."""
    context = incident_context(INCIDENT, event_type="i_new", base_url="https://vigil.example.com")
    rendered = TemplateSet().render(f"{bot_type}_bot", "i_new", context)
    return dataclasses.replace(page, title=INCIDENT["title"], text=rendered.text, markup=True)


def test_a_bot_message_is_plain_text_unless_marked_as_markup():
    message = BotMessage(title="t", severity=Severity.INFO, progress=Progress.TRIGGERED, event_type="i_new", text="x")
    assert message.markup is False  # digests and test messages; bot_sender.message_for marks template output


async def test_feishu_templated_post_has_bold_text_one_link_and_at_tags(bots: Running, http, page):
    await send(bots.config("feishu"), templated(page, "feishu"), http)
    [got] = bots.fake.of("feishu")
    assert got.body["content"]["post"]["zh_cn"] == {"title": HEADLINE, "content": [
        [{"tag": "text", "text": "🔴 "}, {"tag": "text", "text": "[Critical] Triggered", "style": ["bold"]}],
        [{"tag": "text", "text": "db-1 <disk> 95% & *full*", "style": ["bold"]}],
        [{"tag": "text", "text": "Channel: Payments · Alerts: 3 · Triggered"}],
        [{"tag": "text", "text": "host: db-1"}],
        [{"tag": "a", "text": "Open incident", "href": URL}],
        [{"tag": "at", "user_id": "111", "user_name": "Alice"}, {"tag": "text", "text": "@Bob "},
         {"tag": "at", "user_id": "333", "user_name": "Carol"}],
    ]}


def test_feishu_lark_md_lines_become_post_elements():
    from bot.group_bots.feishu import lark_md_line

    assert lark_md_line("a **b** c **d** [e &amp; f](https://x.test/1?a=1&amp;b=2) &lt;g&gt;") == [
        {"tag": "text", "text": "a "}, {"tag": "text", "text": "b", "style": ["bold"]},
        {"tag": "text", "text": " c "}, {"tag": "text", "text": "d", "style": ["bold"]},
        {"tag": "text", "text": " "}, {"tag": "a", "text": "e & f", "href": "https://x.test/1?a=1&b=2"},
        {"tag": "text", "text": " <g>"}]
    assert lark_md_line("") == [{"tag": "text", "text": ""}]
    assert lark_md_line("[not a link](javascript:x) 2 ** 3") == [
        {"tag": "text", "text": "[not a link](javascript:x) 2 ** 3"}]


async def test_dingtalk_templated_markdown_keeps_its_title_and_at_phones(bots: Running, http, page):
    await send(bots.config("dingtalk"), templated(page, "dingtalk"), http)
    [got] = bots.fake.of("dingtalk")
    assert got.body == {
        "msgtype": "markdown",
        "markdown": {"title": HEADLINE, "text": (
            "### 🔴 [Critical] Triggered\n\n**db-1 ＜disk> 95% & ＊full＊**\n\n- Channel: Payments\n- Alerts: 3\n"
            f"- Progress: Triggered\n- host: db-1\n\n[Open incident]({URL})\n\n@13800000001 @13800000002 @333")},
        "at": {"atMobiles": ["13800000001", "13800000002"], "atUserIds": ["333"], "isAtAll": False},
    }


async def test_wecom_templated_markdown_is_posted_as_written_with_userid_tags(bots: Running, http, page):
    mapped = dataclasses.replace(page, mentions=(Mention("Alice", "111"), Mention("Carol", "333")))
    await send(bots.config("wecom"), templated(mapped, "wecom"), http)
    [got] = bots.fake.of("wecom")
    assert got.body == {"msgtype": "markdown", "markdown": {"content": (
        '**<font color="warning">[Critical] Triggered</font>**\n\n> **db-1 ＜disk> 95% & ＊full＊**\n'
        f"> Channel: Payments\n> Alerts: 3 · Triggered\n> host: db-1\n\n[Open incident]({URL})\n<@111> <@333>")}}


async def test_wecom_templated_text_message_shows_no_markdown_syntax(bots: Running, http, page):
    await send(bots.config("wecom"), templated(page, "wecom"), http)
    [got] = bots.fake.of("wecom")
    assert got.body == {"msgtype": "text", "text": {
        "content": ("[Critical] Triggered\n\ndb-1 <disk> 95% & *full*\nChannel: Payments\nAlerts: 3 · Triggered\n"
                    f"host: db-1\n\nOpen incident: {URL}"),
        "mentioned_list": ["111", "333"],
        "mentioned_mobile_list": ["13800000002"],
    }}


async def test_slack_templated_mrkdwn_is_escaped_once(bots: Running, http, page):
    await send(bots.config("slack"), templated(page, "slack"), http)
    [got] = bots.fake.of("slack")
    assert got.body == {
        "text": "[Critical] [Triggered] db-1 &lt;disk&gt; 95% &amp; *full* <@111> @Bob <@333>",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": (
            "🔴 *[Critical] Triggered*: db-1 &lt;disk&gt; 95% &amp; *full*\n#42 · Payments · 3 alerts · Triggered\n"
            f"`host=db-1`\n<{URL}|Open incident>\n<@111> @Bob <@333>")}}],
    }


async def test_zoom_templated_body_has_one_link(bots: Running, http, page):
    mapped = dataclasses.replace(page, mentions=(Mention("Alice", "alice_jid@xmpp.zoom.us"), Mention("Bob")))
    await send(bots.config("zoom"), templated(mapped, "zoom"), http)
    [got] = bots.fake.of("zoom")
    assert got.body == {"content": {
        "settings": {"default_sidebar_color": "#D93026"},
        "head": {"text": HEADLINE, "style": {"bold": True}},
        "body": [
            {"type": "message", "is_markdown_support": True,
             "text": f"🔴 [Critical] Triggered: db-1 <disk> 95% & *full*\nPayments · 3 alerts · Triggered\n{URL}"},
            {"type": "message", "text": "<!alice_jid@xmpp.zoom.us|Alice> @Bob", "is_markdown_support": True},
        ],
    }}


async def test_telegram_templated_html_is_not_escaped_again(bots: Running, http, page):
    await send(bots.config("telegram", chat_ids=TELEGRAM_CHATS[:1]), templated(page, "telegram"), http)
    [got] = bots.fake.of("telegram")  # the fake parses the HTML: unbalanced or unescaped markup is refused
    assert got.body["text"] == (
        "🔴 <b>[Critical] Triggered</b>: db-1 &lt;disk&gt; 95% &amp; *full*\n#42 · Payments · 3 alerts · Triggered\n"
        f'<code>host=db-1</code>\n<a href="{URL}">Open incident</a>\n'
        '<a href="tg://user?id=111">Alice</a> @Bob <a href="tg://user?id=333">Carol</a>')


@pytest.mark.parametrize("bot_type", BOT_TYPES)
async def test_every_templated_message_has_one_link_no_double_escaping_and_the_mentions(bots, http, page, bot_type):
    await send(bots.config(bot_type), templated(page, bot_type), http)
    got = bots.fake.of(bot_type)[0].body
    shown = json.dumps(got, ensure_ascii=False)
    assert "View incident" not in shown and "&amp;lt;" not in shown and "&amp;amp;" not in shown
    assert "&lt;b&gt;" not in shown and "&lt;a " not in shown and "&lt;http" not in shown
    assert shown.count("Open incident") == 1 or bot_type == "zoom"  # the zoom template shows the bare URL
    assert shown.count(URL) == 1
    assert shown.count("[Critical] Triggered") == 1, "the template's headline once, and not ours in the body"
    assert "13800000001" in shown if bot_type == "dingtalk" else "111" in shown  # Alice, natively
    assert "333" in shown  # Carol


# -- plain text (digests, test messages): escaped, under our headline, with our link ----------------------


async def test_a_digest_is_still_escaped_with_headline_and_links(bots: Running, http, page):
    from bot.group_bots.pacing import digest

    one = digest([dataclasses.replace(page, title=f"disk {i} <x> & y") for i in range(2)])
    assert not one.markup
    for bot_type in BOT_TYPES:
        await send(bots.config(bot_type, chat_ids=TELEGRAM_CHATS[:1]) if bot_type == "telegram"
                   else bots.config(bot_type), one, http)
    telegram = bots.fake.of("telegram")[0].body["text"]
    assert telegram.startswith("<b>[Critical] [Triggered] 2 incident updates</b>\n")
    assert f"- [Critical] [Triggered] disk 0 &lt;x&gt; &amp; y {URL}" in telegram
    assert f'<a href="{URL}">View incident</a>' in telegram
    section = bots.fake.of("slack")[0].body["blocks"][0]["text"]["text"]
    assert section.startswith(f"*<{URL}|[Critical] [Triggered] 2 incident updates>*\n")
    assert "disk 1 &lt;x&gt; &amp; y" in section and section.endswith("<@111> @Bob <@333>")
    dingtalk = bots.fake.of("dingtalk")[0].body["markdown"]["text"]
    assert dingtalk.startswith("#### [Critical] [Triggered] 2 incident updates\n\n")
    assert f"[View incident]({URL})" in dingtalk
    post = bots.fake.of("feishu")[0].body["content"]["post"]["zh_cn"]
    assert post["title"] == "[Critical] [Triggered] 2 incident updates"
    assert [{"tag": "a", "text": "View incident", "href": URL}] in post["content"]


async def test_long_markup_keeps_the_mentions(bots: Running, http, page):
    from bot.group_bots import slack, telegram, wecom

    lines = "\n".join(f"<code>line {i}</code> &amp; more text to make it long" for i in range(200))
    long_html = dataclasses.replace(page, text=f"<b>head</b>\n{lines}", markup=True)
    html_text = telegram.to_html(long_html)  # too long to post whole: sent as its plain text, escaped
    assert html_text.startswith("<b>[Critical] [Triggered] CPU &gt; 95% on db-1</b>\nhead\nline 0 &amp; more")
    assert "line 3 &amp; more" in html_text and "<code>" not in html_text
    assert html_text.endswith('<a href="tg://user?id=111">Alice</a> @Bob <a href="tg://user?id=333">Carol</a>')
    await send(bots.config("telegram", chat_ids=TELEGRAM_CHATS[:1]), long_html, http)
    long_md = dataclasses.replace(page, text="\n".join(f"`x{i}` and more text to make it long" for i in range(400)),
                                  markup=True)
    section = slack.to_blocks(long_md)["blocks"][0]["text"]["text"]
    assert len(section) <= slack.SECTION_LIMIT and section.endswith("…\n<@111> @Bob <@333>")
    mapped = dataclasses.replace(long_md, mentions=(Mention("Alice", "111"),))
    content = wecom.to_body(mapped)["markdown"]["content"]
    assert len(content.encode()) <= wecom.MARKDOWN_LIMIT and content.endswith("…\n<@111>")
    for bot_type in ("slack", "wecom"):
        await send(bots.config(bot_type), long_md, http)


async def test_the_test_message_endpoint_text_is_plain_and_escaped(bots: Running, http, page):
    message = BotMessage(title="Vigil test message", severity=Severity.INFO, progress=Progress.TRIGGERED,
                         event_type="i_new", text="Vigil test message for bot <ops> & co: delivery works.",
                         url="https://vigil.example.com")
    await send(bots.config("telegram", chat_ids=TELEGRAM_CHATS[:1]), message, http)
    assert bots.fake.of("telegram")[0].body["text"] == (
        "<b>[Info] [Triggered] Vigil test message</b>\nVigil test message for bot &lt;ops&gt; &amp; co: delivery "
        'works.\n<a href="https://vigil.example.com">View incident</a>')
