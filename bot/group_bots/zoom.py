"""Zoom Team Chat "Incoming Webhook" app: a full-format message, verification token in Authorization.

Docs: https://support.zoom.com/hc/en/article?id=zm_kb&sysparm_article=KB0067640 . `?format=full` makes
Zoom read the body as a chatbot message (`content.head` / `content.body`); mentions are `<!jid|Name>`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
from yarl import URL

from bot.group_bots._common import heading, post_json
from bot.group_bots.model import BotConfig, BotMessage

SIDEBAR = {"Critical": "#D93026", "Warning": "#F29D38", "Info": "#1F7AE0"}


def full_format(url: str) -> str:
    """The endpoint with format=full unless the user chose a format themselves."""
    parsed = URL(url)
    return url if "format" in parsed.query else str(parsed.update_query(format="full"))


def to_content(message: BotMessage) -> dict[str, Any]:
    """The chatbot message: headline as head, text, mentions and (for plain text) the incident link as body items.

    Markup (the zoom_bot template) carries the incident link itself, so no link item is added for it.
    """
    text = message.text.strip("\n") if message.markup else message.text
    body: list[dict[str, Any]] = [{"type": "message", "text": text, "is_markdown_support": True}]
    tags = " ".join(f"<!{m.im_user_id}|{m.member_name}>" if m.im_user_id else f"@{m.member_name}"
                    for m in message.mentions if m.im_user_id or m.member_name)
    if tags:
        body.append({"type": "message", "text": tags, "is_markdown_support": True})
    if message.url and not message.markup:
        body.append({"type": "message", "text": "View incident", "link": message.url})
    return {"content": {
        "settings": {"default_sidebar_color": SIDEBAR[message.severity.value]},
        "head": {"text": heading(message), "style": {"bold": True}},
        "body": body,
    }}


class ZoomBot:
    """Posts to a Zoom Team Chat channel through the Incoming Webhook app."""

    type: ClassVar[str] = "zoom"

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        reply = await post_json(config, http, full_format(config.url), to_content(message), provider="zoom",
                                headers={"Authorization": config.secret})
        data = reply.json()
        return str(data.get("message_id", "")) if isinstance(data, dict) else ""
