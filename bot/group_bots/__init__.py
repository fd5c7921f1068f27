"""Group-chat bots (Flashduty "IM bots"): post incident messages into groups through webhooks.

Call `send(config, message, http)`; it picks the sender for `config.type` from `BOTS`.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import aiohttp

from bot.group_bots.dingtalk import DingTalkBot
from bot.group_bots.feishu import FeishuBot
from bot.group_bots.model import BOT_TYPES, BotConfig, BotMessage, Mention, wants
from bot.group_bots.slack import SlackBot
from bot.group_bots.telegram import TelegramBot
from bot.group_bots.wecom import WeComBot
from bot.group_bots.zoom import ZoomBot

__all__ = ["BOTS", "BOT_TYPES", "BotConfig", "BotMessage", "GroupBot", "Mention", "send", "wants"]


class GroupBot(Protocol):
    """One bot platform: turns a BotMessage into that platform's webhook call."""

    type: ClassVar[str]

    async def send(self, config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
        """Post the message; return the platform's message id or "", raise DeliveryError(retryable=...)."""
        ...


BOTS: dict[str, GroupBot] = {
    "feishu": FeishuBot(),
    "dingtalk": DingTalkBot(),
    "wecom": WeComBot(),
    "slack": SlackBot(),
    "zoom": ZoomBot(),
    "telegram": TelegramBot(),
}


async def send(config: BotConfig, message: BotMessage, http: aiohttp.ClientSession) -> str:
    """Post one message with the bot `config.type` names; errors are DeliveryError without secrets."""
    return await BOTS[config.type].send(config, message, http)
