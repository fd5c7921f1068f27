"""Messages to the bot (Feishu/Lark, DingTalk, WeCom, Teams): the chat commands, answered in the conversation.

The callback was verified by the click path (bot/chat/clicks.py `handle`, which hands over what is not a
click); the adapter read the message (`parse_message`: sender, words, mentions). Here it is taken once (a
platform's retry or a replay answers nothing and changes nothing, bot/chat/replay.py), turned into a command
(bot/chat/words.py) and run through the one path each command has: `commands.answer` for `oncall`, `mine`
and `page`, `clicks.apply` for `ack 12` and the other incident actions. The answer goes back through the
platform's messaging API (`send_reply`); a failure to send it is logged, never retried into a second page.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import ActionEvent, ChatMessage, Conversing
from bot.adapters.errors import DeliveryError
from bot.chat import clicks, commands, replay, words

log = logging.getLogger("vigil.chat_messages")
UNANSWERED = "Vigil could not answer that just now; please try again in a moment."


async def answer(adapter: Conversing, message: ChatMessage, sessions: async_sessionmaker[AsyncSession],
                 base_url: str, now: datetime) -> None:
    """Run the command a message carries and reply to it in its conversation."""
    if not await replay.take_once(sessions, message.platform, message.callback, now):
        log.warning("%s message seen before (a replay, or the platform retrying): not answered again",
                    message.platform.value)
        return
    command = words.to_command(message)
    try:
        if isinstance(command, ActionEvent):  # the message was taken once above: the click needs no id of its own
            text = (await clicks.apply(command, sessions, base_url, now)).text
        elif isinstance(command, commands.Query):
            text = await commands.answer(command, sessions, base_url, now)
        else:
            text = command
    except Exception:  # the sender still hears back; the cause goes to the log
        log.exception("%s: a message to the bot failed", message.platform.value)
        text = UNANSWERED
    try:
        await adapter.send_reply(message, text or UNANSWERED)
    except DeliveryError as exc:
        log.warning("%s: could not reply to %s: %s", message.platform.value, message.im_user_id, exc)
