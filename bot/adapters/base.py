"""The one adapter protocol every chat platform implements (STYLE.md section 9), and its value types.

An adapter only translates: `verify` and `parse_action` are pure functions of the inbound HTTP
request; `send_card` / `update_card` talk to the platform through its SDK; `reply` turns the
outcome of a click into the HTTP answer the platform expects. Everything else (resolving the
user, permissions, the incident action, updating every card) is bot/clicks.py, shared by all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from core.types import Platform

RenderedCard = dict[str, Any]


@dataclass(frozen=True)
class InboundRequest:
    """A platform callback as received, before any parsing (built by the HTTP route in a few lines)."""

    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"
    path: str = ""

    def header(self, name: str) -> str:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return ""


@dataclass(frozen=True)
class ActionEvent:
    """A click, parsed: who (platform user id), which packed ActionData, and any input the card carried."""

    platform: Platform
    im_user_id: str
    payload: str  # bot.actions packed payload, e.g. "ack:42"
    inputs: Mapping[str, str] = field(default_factory=dict)  # e.g. {"comment": "...", "snooze": "snz:42:60"}
    context: Mapping[str, Any] = field(default_factory=dict)  # platform data needed to answer (response_url...)


@dataclass(frozen=True)
class ChatTarget:
    """Where a card goes: a direct message to a user, or a group chat."""

    platform: Platform
    conversation_id: str  # user id for direct messages, chat/channel id for groups
    direct: bool = True


@dataclass(frozen=True)
class MessageRef:
    """A card the platform accepted; stored as a CardRef so later changes update it in place."""

    platform: Platform
    conversation_id: str
    message_id: str
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What happened to a click, for the platform's answer: a short text and the card to show now."""

    ok: bool
    text: str
    card: RenderedCard | None = None


@dataclass(frozen=True)
class HttpReply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


class Adapter(Protocol):
    """A chat platform. Errors leaving it are only DeliveryError and AuthError."""

    platform: ClassVar[Platform]
    docs_url: ClassVar[str]
    supports_update: ClassVar[bool]

    def verify(self, req: InboundRequest, now: datetime) -> bool:
        """Whether the callback is authentic and fresh (signature / token and timestamp window)."""
        ...

    def handshake(self, req: InboundRequest) -> HttpReply | None:
        """Answer a platform's URL verification challenge, or None if this is not one."""
        ...

    def parse_action(self, req: InboundRequest) -> ActionEvent | None:
        """The click carried by a verified callback, or None if it is not a Vigil card action."""
        ...

    def reply(self, req: InboundRequest, outcome: Outcome) -> HttpReply:
        """The HTTP answer the platform expects within its deadline (toast, updated card...)."""
        ...

    async def send_card(self, to: ChatTarget, card: RenderedCard) -> MessageRef:
        """Post a card; raises DeliveryError(retryable=...) on failure."""
        ...

    async def update_card(self, ref: MessageRef, card: RenderedCard) -> None:
        """Replace a posted card in place; raises DeliveryError(retryable=...) on failure."""
        ...


Click = Callable[[ActionEvent], Awaitable[Outcome]]


class Dispatching(Protocol):
    """Optional: an adapter whose SDK routes callbacks itself (Slack's bolt: verification, modals,
    slash commands). Its listeners must end in `click(event)`, i.e. bot.clicks.apply."""

    async def dispatch(self, req: InboundRequest, click: Click) -> HttpReply: ...
