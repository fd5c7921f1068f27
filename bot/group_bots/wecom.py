"""WeCom (WeChat Work) group robot: markdown with <@userid>, or text with mention lists for phone-only people.

Docs: https://developer.work.weixin.qq.com/document/path/91770. Answers HTTP 200 with
`{"errcode": 0, "errmsg": "ok"}`; 93000 is an invalid webhook key, 45009 the rate limit (20/min).
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp

from bot.group_bots._common import check_code, heading, post_json, webhook_url
from bot.group_bots.model import BotConfig, BotMessage

DEFAULT_BASE = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
RATE_LIMITED = frozenset({45009, 45033})
# WeCom rejects markdown content over 4096 bytes and text over 2048 bytes.
MARKDOWN_LIMIT = 4096
TEXT_LIMIT = 2048


def _clip(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "..."


def to_body(message: BotMessage) -> dict[str, Any]:
    """Markdown when every person has a WeCom user id (markdown can only @ by <@userid>), else text."""
    people = message.mentions
    link = f"\n[View incident]({message.url})" if message.url else ""
    if all(m.im_user_id for m in people):
        tags = " ".join(f"<@{m.im_user_id}>" for m in people)
        content = f"**{heading(message)}**\n{message.text}{link}" + (f"\n{tags}" if tags else "")
        return {"msgtype": "markdown", "markdown": {"content": _clip(content, MARKDOWN_LIMIT)}}
    named = [m.member_name for m in people if not m.im_user_id and not m.phone and m.member_name]
    tail = f"\n{message.url}" if message.url else ""
    names = ("\n@" + " @".join(named)) if named else ""
    return {"msgtype": "text", "text": {
        "content": _clip(f"{heading(message)}\n{message.text}{tail}{names}", TEXT_LIMIT),
        "mentioned_list": [m.im_user_id for m in people if m.im_user_id],
        "mentioned_mobile_list": [m.phone for m in people if m.phone and not m.im_user_id],
    }}


class WeComBot:
    """Posts to a WeCom group through its robot webhook."""

    type: ClassVar[str] = "wecom"

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        url = webhook_url(config, DEFAULT_BASE, query_key="key")
        reply = await post_json(config, http, url, to_body(message), provider="wecom")
        check_code(config, reply, provider="wecom", code_key="errcode", text_key="errmsg", retryable=RATE_LIMITED)
        return ""
