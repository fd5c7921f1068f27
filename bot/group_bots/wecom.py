"""WeCom (WeChat Work) group robot: markdown with <@userid>, or text with mention lists for phone-only people.

Docs: https://developer.work.weixin.qq.com/document/path/91770. Answers HTTP 200 with
`{"errcode": 0, "errmsg": "ok"}`; 93000 is an invalid webhook key, 45009 the rate limit (20/min).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import aiohttp

from bot.group_bots._common import check_code, fit, heading, post_json, webhook_url
from bot.group_bots.model import BotConfig, BotMessage
from core.escaping import lookalikes_to_plain, wecom_markdown

DEFAULT_BASE = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
RATE_LIMITED = frozenset({45009, 45033})
# WeCom rejects markdown content over 4096 bytes and text over 2048 bytes.
MARKDOWN_LIMIT = 4096
TEXT_LIMIT = 2048


def to_body(message: BotMessage) -> dict[str, Any]:
    """Markdown when every person has a WeCom user id (markdown can only @ by <@userid>), else text.

    Markup (the wecom_bot template: WeCom markdown with its own headline and link) is the markdown as
    written, and is turned into plain text for the text message. Plain text gets our headline and link, and is
    escaped in markdown.
    The text is cut to the size limit before the mentions are added, so they are never cut off.
    """
    people = message.mentions
    if all(m.im_user_id for m in people):
        tags = " ".join(f"<@{m.im_user_id}>" for m in people)
        if message.markup:
            head, text, tail = "", message.text.strip("\n"), ""
        else:
            head, text = f"**{wecom_markdown(heading(message))}**\n", wecom_markdown(message.text)
            tail = f"\n[View incident]({message.url})" if message.url else ""
        tail += f"\n{tags}" if tags else ""
        room = MARKDOWN_LIMIT - len((head + tail).encode())
        content = head + fit(text, room, in_bytes=True) + tail
        return {"msgtype": "markdown", "markdown": {"content": fit(content, MARKDOWN_LIMIT, in_bytes=True)}}
    named = [m.member_name for m in people if not m.im_user_id and not m.phone and m.member_name]
    if message.markup:
        head, text, tail = "", markdown_to_text(message.text), ""
    else:
        head, text = f"{heading(message)}\n", message.text
        tail = f"\n{message.url}" if message.url else ""
    tail += ("\n@" + " @".join(named)) if named else ""
    room = TEXT_LIMIT - len((head + tail).encode())
    return {"msgtype": "text", "text": {
        "content": fit(head + fit(text, room, in_bytes=True) + tail, TEXT_LIMIT, in_bytes=True),
        "mentioned_list": [m.im_user_id for m in people if m.im_user_id],
        "mentioned_mobile_list": [m.phone for m in people if m.phone and not m.im_user_id],
    }}


_FONT = re.compile(r"</?font\b[^>]*>", re.IGNORECASE)
_LINK = re.compile(r"\[([^\[\]]+)\]\((\S+?)\)")
_LINE_MARK = re.compile(r"^(?:#{1,6}\s+|>\s?)")


def markdown_to_text(markdown: str) -> str:
    """WeCom markdown as a text message shows it best: no font tags, **, `, # or > marks; links as "label: url".

    Alert text that `wecom_markdown` escaped shows its own characters again: a text message reads no markup.
    """
    lines = []
    for line in markdown.strip("\n").splitlines():
        line = _LINE_MARK.sub("", _FONT.sub("", line))
        line = _LINK.sub(r"\1: \2", line.replace("**", "").replace("`", ""))
        lines.append(lookalikes_to_plain(line))
    return "\n".join(lines)


class WeComBot:
    """Posts to a WeCom group through its robot webhook."""

    type: ClassVar[str] = "wecom"

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        url = webhook_url(config, DEFAULT_BASE, query_key="key")
        reply = await post_json(config, http, url, to_body(message), provider="wecom")
        check_code(config, reply, provider="wecom", code_key="errcode", text_key="errmsg", retryable=RATE_LIMITED)
        return ""
