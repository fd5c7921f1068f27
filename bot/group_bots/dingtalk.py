"""DingTalk custom robot: markdown with "@phone" in the text and the `at` block, signed in the URL.

Docs: https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages and the robot error
codes page. The robot answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; failures carry a non-zero
errcode (310000 sign/keyword/IP rejected, 300001 token gone, 130101 / 410100 sent too fast).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from bot.group_bots._common import check_code, heading, post_json, webhook_url
from bot.group_bots.model import BotConfig, BotMessage
from core.escaping import dingtalk_markdown

DEFAULT_BASE = "https://oapi.dingtalk.com/robot/send"
RATE_LIMITED = frozenset({130101, 410100})


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: HMAC-SHA256 keyed by the secret over "timestamp\\nsecret", base64."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The webhook URL with &timestamp=&sign= appended (yarl percent-encodes the base64 sign)."""
    return str(URL(url).update_query(timestamp=str(timestamp_ms), sign=sign(secret, timestamp_ms)))


def to_markdown(config: BotConfig, message: BotMessage) -> dict[str, Any]:
    """The robot's markdown body; an @ only notifies when the phone or user id also appears in the text.

    Markup (the dingtalk_bot template, with its own headline and link) is the body as written; plain text
    is escaped under our headline and link. `title` is our headline either way: it is the (plain) notification
    preview.
    """
    phones = [m.phone for m in message.mentions if m.phone]
    user_ids = [m.im_user_id for m in message.mentions if m.im_user_id and not m.phone]
    tags = [f"@{p}" for p in phones] + [f"@{u}" for u in user_ids]
    tags += [f"@{dingtalk_markdown(m.member_name)}" for m in message.mentions
             if not m.phone and not m.im_user_id and m.member_name]
    if message.markup:
        parts = [message.text.strip("\n")]
    else:
        parts = [f"#### {dingtalk_markdown(heading(message))}", dingtalk_markdown(message.text)]
        if message.url:
            parts.append(f"[View incident]({message.url})")
    if tags:
        parts.append(" ".join(tags))
    return {
        "msgtype": "markdown",
        "markdown": {"title": heading(message), "text": "\n\n".join(parts)},
        "at": {"atMobiles": phones, "atUserIds": user_ids, "isAtAll": config.at_all},
    }


class DingTalkBot:
    """Posts to a DingTalk group through its custom-robot webhook."""

    type: ClassVar[str] = "dingtalk"

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        url = webhook_url(config, DEFAULT_BASE, query_key="access_token")
        if config.secret:
            url = signed_url(url, config.secret, int(time.time() * 1000))
        reply = await post_json(config, http, url, to_markdown(config, message), provider="dingtalk")
        check_code(config, reply, provider="dingtalk", code_key="errcode", text_key="errmsg",
                   retryable=RATE_LIMITED)
        return ""
