"""Feishu/Lark custom bot: a signed `post` (rich text) message with native @ tags.

Docs: https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot (signing, error codes, limits).
The bot answers HTTP 200 with `{"code": 0}` on success and a non-zero `code` on failure; old deployments
answer `{"StatusCode": 0, "StatusMessage": "success"}` instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any, ClassVar

import aiohttp

from bot.adapters._http import Reply
from bot.group_bots._common import check_code, heading, platform_error, post_json, webhook_url
from bot.group_bots.model import BotConfig, BotMessage

DEFAULT_BASE = "https://open.feishu.cn/open-apis/bot/v2/hook/"
# 9499 is also "Bad Request" for a malformed body; only its rate-limit form is worth a retry.
RATE_LIMITED = frozenset({11232, 9499})


def sign(secret: str, timestamp: int) -> str:
    """Feishu's signature: HMAC-SHA256 keyed by "timestamp\\nsecret" over an empty message, base64."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def with_keyword(post: dict[str, Any], keyword: str) -> dict[str, Any]:
    """The post carrying the bot's security keyword: Feishu refuses (19024) a post whose text lacks it.

    Put first in the content, as its own text element, unless the text already holds it: the title is
    not what every deployment checks, the content is.
    """
    if not keyword:
        return post
    body = post["post"]["zh_cn"]
    shown = "".join(item.get("text", "") for line in body["content"] for item in line)
    if keyword in shown:
        return post
    lines = [[{"tag": "text", "text": f"{keyword} "}, *body["content"][0]], *body["content"][1:]] \
        if body["content"] else [[{"tag": "text", "text": keyword}]]
    return {"post": {"zh_cn": {**body, "content": lines}}}


def to_post(message: BotMessage) -> dict[str, Any]:
    """The `post` content: the text, @ tags for mapped people and plain names for the rest.

    Post elements are plain text, so markup (the feishu_bot template, lark_md with its own headline and
    link) is turned into elements: bold spans, links and decoded entities. Plain text is posted as its
    lines and followed by our incident link. The post title is our headline either way.
    """
    if message.markup:
        lines = [lark_md_line(line) for line in message.text.strip("\n").splitlines()]
    else:
        lines = [[{"tag": "text", "text": line}] for line in message.text.splitlines()]
    people: list[dict[str, Any]] = []
    for person in message.mentions:
        if person.im_user_id:
            people.append({"tag": "at", "user_id": person.im_user_id, "user_name": person.member_name})
        elif person.member_name:
            people.append({"tag": "text", "text": f"@{person.member_name} "})
    if people:
        lines.append(people)
    if message.url and not message.markup:
        lines.append([{"tag": "a", "text": "View incident", "href": message.url}])
    return {"post": {"zh_cn": {"title": heading(message), "content": lines}}}


# The lark_md the feishu_bot template writes: **bold** (the closing ** not followed by another *, so
# "**a *b***" is bold "a *b*") and [label](http... link).
_LARK_MD = re.compile(r"\*\*(?P<bold>.+?)\*\*(?!\*)|\[(?P<label>[^\[\]]+)\]\((?P<href>https?://[^()\s]+)\)")


def lark_md_line(line: str) -> list[dict[str, Any]]:
    """One line of lark_md as post elements: text (bold where it was **bold**) and links, entities decoded."""
    items: list[dict[str, Any]] = []
    at = 0
    for match in _LARK_MD.finditer(line):
        if match.start() > at:
            items.append({"tag": "text", "text": _unescape(line[at:match.start()])})
        if match["bold"] is not None:
            items.append({"tag": "text", "text": _unescape(match["bold"]), "style": ["bold"]})
        else:
            items.append({"tag": "a", "text": _unescape(match["label"]), "href": _unescape(match["href"])})
        at = match.end()
    if at < len(line) or not items:
        items.append({"tag": "text", "text": _unescape(line[at:])})
    return items


_ESCAPED = re.compile(r"&(?:(lt|gt|amp)|#(\d{1,7}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&"}


def _unescape(text: str) -> str:
    # Exactly what lark_md_escape writes (core.escaping.lark_md), in one pass so "&amp;lt;" stays "&lt;";
    # post elements are plain text, so the decoded characters are shown, never read as markup.
    return _ESCAPED.sub(_decoded, text)


def _decoded(match: re.Match[str]) -> str:
    if match[1]:
        return _NAMED[match[1]]
    code = int(match[2])
    # Only a Unicode scalar value is a character; a surrogate or out-of-range number stays as written.
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else match[0]


class FeishuBot:
    """Posts to a Feishu/Lark group through its custom-bot webhook."""

    type: ClassVar[str] = "feishu"

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        body: dict[str, Any] = {"msg_type": "post", "content": with_keyword(to_post(message), config.keyword)}
        if config.secret:
            timestamp = int(time.time())
            body |= {"timestamp": str(timestamp), "sign": sign(config.secret, timestamp)}
        reply = await post_json(config, http, webhook_url(config, DEFAULT_BASE), body, provider="feishu")
        _check(config, reply)
        return ""


def _check(config: BotConfig, reply: Reply) -> None:
    data = reply.json()
    if isinstance(data, dict) and "code" not in data and data.get("StatusCode", 0) != 0:
        # Older deployments answer only {"StatusCode", "StatusMessage"}.
        raise platform_error(config, "feishu", data["StatusCode"], str(data.get("StatusMessage", "")),
                             retryable=False)
    if isinstance(data, dict) and data.get("code") == 9499 and "bad request" in str(data.get("msg")).lower():
        raise platform_error(config, "feishu", 9499, str(data.get("msg")), retryable=False)
    check_code(config, reply, provider="feishu", code_key="code", text_key="msg", retryable=RATE_LIMITED)
