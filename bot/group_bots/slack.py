"""Slack incoming webhook: mrkdwn text with <@U123> mentions.

Docs: https://api.slack.com/messaging/webhooks#handling_errors. Slack answers `ok` (HTTP 200); errors
are plain-text codes with a 4xx status (invalid_payload 400, invalid_token 403, no_service 404,
channel_is_archived 410) and 429 with Retry-After when posting faster than about once a second.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiohttp

from bot.group_bots._common import fit, heading, post_json
from bot.group_bots.model import BotConfig, BotMessage
from core.escaping import slack_mrkdwn as escape

# A section block's text is at most 3000 characters.
SECTION_LIMIT = 3000


def to_blocks(message: BotMessage) -> dict[str, Any]:
    """A `text` fallback (used in notifications) plus one mrkdwn section block with the mentions last.

    Markup (the slack_bot template: mrkdwn, escaped, with its own headline and link) goes into the section
    as written; plain text is escaped under our headline, which links to the incident.
    """
    tags = " ".join(f"<@{m.im_user_id}>" if m.im_user_id else f"@{escape(m.member_name)}"
                    for m in message.mentions if m.im_user_id or m.member_name)
    if message.markup:
        title, text = "", message.text.strip("\n")
    else:
        title = f"*<{message.url}|{escape(heading(message))}>*" if message.url else f"*{escape(heading(message))}*"
        text = escape(message.text)
    room = SECTION_LIMIT - sum(len(part) + 1 for part in (title, tags) if part)
    body = "\n".join(part for part in (title, fit(text, room), tags) if part)
    return {"text": f"{escape(heading(message))} {tags}".strip(),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}


class SlackBot:
    """Posts to a Slack channel through an incoming webhook."""

    type: ClassVar[str] = "slack"

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        await post_json(config, http, config.url, to_blocks(message), provider="slack")
        return ""
