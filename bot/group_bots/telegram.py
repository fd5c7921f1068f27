"""Telegram Bot API: one sendMessage per chat id, HTML parse mode, tg://user links as mentions.

Docs: https://core.telegram.org/bots/api#sendmessage . Every answer is `{"ok": bool, ...}`; failures
carry `error_code` and `description`, and 429 carries `parameters.retry_after`.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any, ClassVar

import aiohttp

from bot.adapters._http import Reply, error_for_status
from bot.adapters.errors import DeliveryError
from bot.group_bots._common import heading, platform_error, post_json, secrets_of
from bot.group_bots.model import BotConfig, BotMessage

DEFAULT_BASE = "https://api.telegram.org/bot"
# sendMessage text is at most 4096 characters after entity parsing.
TEXT_LIMIT = 3800


def method_url(config: BotConfig) -> str:
    """The sendMessage URL: from a bare token, a Bot API base (+ token) or a full method URL."""
    if "://" not in config.url:
        return f"{DEFAULT_BASE}{config.url.strip()}/sendMessage"
    if config.url.rstrip("/").endswith("/sendMessage"):
        return config.url
    return config.url.rstrip("/") + "/sendMessage"


def to_html(message: BotMessage) -> str:
    """The message as Telegram HTML, with tg://user links for the mentions.

    Markup (the telegram_bot template: Telegram HTML, autoescaped, with its own headline and link) goes in
    as written. Plain text is escaped under our headline, with our link. Markup too long to post whole
    is sent as its plain text, since cutting HTML could leave a tag open and Telegram would refuse it.
    """
    tags = " ".join(
        f'<a href="tg://user?id={html.escape(m.im_user_id)}">{html.escape(m.member_name or m.im_user_id)}</a>'
        if m.im_user_id.isdigit() else html.escape(f"@{(m.im_user_id or m.member_name).lstrip('@')}")
        for m in message.mentions if m.im_user_id or m.member_name)
    if message.markup and len(message.text) <= TEXT_LIMIT:
        parts = [message.text.strip("\n")]
    else:
        text = visible_text(message.text) if message.markup else message.text
        parts = [f"<b>{html.escape(heading(message))}</b>", html.escape(text[:TEXT_LIMIT])]
        if message.url:
            parts.append(f'<a href="{html.escape(message.url)}">View incident</a>')
    if tags:
        parts.append(tags)
    return "\n".join(parts)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(markup: str) -> str:
    """What Telegram shows for some Telegram HTML: the text without tags, entities decoded."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


class TelegramBot:
    """Posts to Telegram groups through the Bot API (or any relay speaking it)."""

    type: ClassVar[str] = "telegram"

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        # Every chat is tried even when one fails, so one removed group does not silence the others; a
        # retry re-posts to all of them (a duplicate is better than a lost page). Callers wanting exact
        # per-chat retries give each chat its own BotConfig.
        sent: list[str] = []
        failures: list[DeliveryError] = []
        for chat_id in config.chat_ids:
            body = {"chat_id": chat_id, "text": to_html(message), "parse_mode": "HTML",
                    "disable_web_page_preview": True}
            try:
                reply = await post_json(config, http, method_url(config), body, provider="telegram",
                                        check_status=False)
                sent.append(f"{chat_id}:{_message_id(config, reply)}")
            except DeliveryError as exc:
                failures.append(exc)
        if not failures:
            return ",".join(sent)
        if len(failures) == 1 and not sent:
            raise failures[0]
        retry_after = max((f.retry_after or 0 for f in failures), default=0) or None
        detail = "; ".join(str(f) for f in failures)
        raise DeliveryError(f"telegram: {len(failures)} of {len(config.chat_ids)} chats failed: {detail}"[:300],
                            retryable=any(f.retryable for f in failures), retry_after=retry_after,
                            reason=f"telegram: {len(failures)} of {len(config.chat_ids)} chats failed "
                                   f"({failures[0].reason or 'see the timeline'})")


def _message_id(config: BotConfig, reply: Reply) -> str:
    data: Any = reply.json()
    if isinstance(data, dict) and data.get("ok") is True:
        return str((data.get("result") or {}).get("message_id", ""))
    if not isinstance(data, dict):
        if reply.ok:  # a relay that answers 200 without JSON accepted the message
            return ""
        raise error_for_status("telegram", reply, reply.text()[:200], secrets_of(config))
    code = data.get("error_code", reply.status)
    retry_after = (data.get("parameters") or {}).get("retry_after")
    retryable = code == 429 or (isinstance(code, int) and code >= 500) or reply.status >= 500
    raise platform_error(config, "telegram", code, str(data.get("description", "")), retryable=retryable,
                         retry_after=float(retry_after) if retry_after is not None else None)
