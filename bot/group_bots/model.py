"""What a group-chat bot is (BotConfig), what it posts (BotMessage) and which incidents it wants."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInput
from core.types import Progress, Severity

# Flashduty's escalation-rule bot types (reference section 6); the registry in __init__ must match.
BOT_TYPES = ("feishu", "dingtalk", "wecom", "slack", "zoom", "telegram")


@dataclass(frozen=True)
class Mention:
    """A person to @ in the group: their IM user id on that platform (from the mapping table) and phone."""

    member_name: str
    im_user_id: str = ""
    phone: str = ""


@dataclass(frozen=True)
class BotConfig:
    """One group-chat bot of an escalation rule: where to post, how to sign, and which incidents it wants.

    `url` is the webhook URL (any domain: users point bots at their own relays) or, as in Flashduty, the
    bare token, which is placed into the platform's public webhook URL.
    """

    type: str
    url: str
    secret: str = ""  # DingTalk/Feishu signing secret; the Zoom verification token
    alias: str = ""
    severities: tuple[Severity, ...] = ()  # empty = all
    event_types: tuple[str, ...] = ()  # incident event names (i_new, i_ack, i_rslv, ...); empty = all
    at_all: bool = False  # DingTalk: @all in the group
    chat_ids: tuple[str, ...] = ()  # Telegram: the groups to post to
    keyword: str = ""  # Feishu: the security keyword the custom bot demands in every post
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.type not in BOT_TYPES:
            raise InvalidInput(f"bot.type: must be one of {', '.join(BOT_TYPES)}, got {self.type!r}")
        if not self.url.strip():
            raise InvalidInput("bot.url: the webhook URL or token is required")
        if self.timeout <= 0:
            raise InvalidInput("bot.timeout: must be positive")
        object.__setattr__(self, "severities", tuple(_severity(s) for s in self.severities))
        object.__setattr__(self, "event_types", _strings("event_types", self.event_types))
        object.__setattr__(self, "chat_ids", _strings("chat_ids", self.chat_ids))
        if self.type == "telegram" and not self.chat_ids:
            raise InvalidInput("bot.chat_ids: a telegram bot needs at least one chat id")
        object.__setattr__(self, "keyword", self.keyword.strip())
        if self.keyword and self.type != "feishu":
            raise InvalidInput(f"bot.keyword: only a feishu bot takes a security keyword, not {self.type}")
        if self.type == "zoom" and not self.secret:
            raise InvalidInput("bot.secret: a zoom bot needs its verification token")


def _severity(value: Any) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        names = ", ".join(s.value for s in Severity)
        raise InvalidInput(f"bot.severities: {value!r} is not a severity ({names})") from None


def _strings(name: str, values: Iterable[Any]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise InvalidInput(f"bot.{name}: must be a list of strings, not one string")
    out = tuple(str(v).strip() for v in values)
    if any(not v for v in out):
        raise InvalidInput(f"bot.{name}: empty entry")
    return out


@dataclass(frozen=True)
class BotMessage:
    """One incident update for a group.

    `markup` says what `text` is. True: the platform's own markup, rendered from its bot template (which
    escapes what it inserts and carries its own headline and incident link); senders post it as written,
    adding only the platform's structure (titles, notification fallbacks) and the @mentions. False: plain
    text (digests, test messages); senders escape it and add a headline and the `url` link themselves.
    """

    title: str
    severity: Severity
    progress: Progress
    event_type: str
    text: str
    url: str = ""  # the incident's page
    mentions: tuple[Mention, ...] = field(default_factory=tuple)
    markup: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mentions", tuple(self.mentions))


def wants(config: BotConfig, severity: Severity, event_type: str) -> bool:
    """Whether this bot posts an incident event of this severity (empty filters mean everything)."""
    if config.severities and Severity(severity) not in config.severities:
        return False
    return not config.event_types or event_type in config.event_types
