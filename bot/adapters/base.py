"""The one adapter protocol every chat platform implements (STYLE.md section 9), and its value types.

An adapter only translates: `verify` and `parse_action` are pure functions of the inbound HTTP
request; `send_card` / `update_card` talk to the platform through its SDK; `reply` turns the
outcome of a click into the HTTP answer the platform expects. Everything else (resolving the
user, permissions, the incident action, updating every card) is bot/chat/clicks.py, shared by all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from core.types import Platform

if TYPE_CHECKING:  # the commands module imports adapters' helpers, not the other way round
    from bot.chat.commands import Query

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
class CallbackId:
    """A verified callback's own unique id (the platform's event or activity id, or its signature) and how
    long after it arrives a copy of it could still pass `verify`: the click path takes one callback with this
    id and answers copies that come back within `valid_for` without acting (bot/chat/replay.py)."""

    key: str
    valid_for: timedelta


def replayable_for(window: timedelta) -> timedelta:
    """How long after it arrives a copy of a callback whose timestamp `verify` accepts within +-`window` of
    now still passes: the timestamp may be up to `window` ahead, and stays good `window` past itself; plus a
    minute for the clocks of the processes sharing the replay cache."""
    return 2 * window + timedelta(minutes=1)


@dataclass(frozen=True)
class ActionEvent:
    """A click, parsed: who (platform user id), which packed ActionData, and any input the card carried."""

    platform: Platform
    im_user_id: str
    payload: str  # bot.chat.actions packed payload, e.g. "ack:42"
    inputs: Mapping[str, str] = field(default_factory=dict)  # e.g. {"comment": "...", "snooze": "snz:42:60"}
    context: Mapping[str, Any] = field(default_factory=dict)  # platform data needed to answer (response_url...)
    # Which delivery of a click this is, not what was clicked: two events are the same click whatever it says.
    callback: CallbackId | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ChatMessage:
    """A message to the bot (a DM, or the bot @mentioned in a group), as its adapter reads it: who sent it,
    its words with every mention taken out, and the platform user ids mentioned, in order (the bot itself left
    out). bot/chat/words.py turns it into a command; `context` is what the adapter needs to answer in place."""

    platform: Platform
    im_user_id: str
    words: str
    mentions: tuple[str, ...] = ()
    # The mentions are what the sender typed after an @ (WeCom app messages have no mention markup): each may
    # be a user id or a member's name, and the mapping table is asked for both.
    mentions_by_name: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)
    callback: CallbackId | None = field(default=None, compare=False)


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


# Single-use update codes (WeCom's response_code: one per send, one per click, each valid once for 72 h).
# They travel in MessageRef.extra / CardRef.extra as [[code, issued at (epoch s)], ...], newest first, so
# any process can update the card; bot/chat/card_codes.py keeps them in the database.
UPDATE_CODES = "update_codes"
UPDATE_CODES_KEPT = 8
_LEGACY_CODE_KEYS = ("response_code", "sent_at")  # the one-code layout of earlier WeCom card refs


def update_codes(extra: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The unspent update codes a card reference carries, newest first, as (code, issued at)."""
    raw = extra.get(UPDATE_CODES)
    if raw is None:  # an older ref: the send-time code only
        code = extra.get("response_code")
        return [(str(code), float(extra.get("sent_at") or 0))] if code else []
    codes = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2 and item[0] and isinstance(item[1], int | float):
            codes.append((str(item[0]), float(item[1])))
    return codes


def with_update_codes(extra: Mapping[str, Any], codes: list[tuple[str, float]]) -> dict[str, Any]:
    """A copy of `extra` carrying exactly `codes`: newest first, each once, at most UPDATE_CODES_KEPT."""
    kept: dict[str, float] = {}
    for code, at in sorted(codes, key=lambda c: -c[1]):
        if code and code not in kept:
            kept[code] = at
    rest = {k: v for k, v in extra.items() if k != UPDATE_CODES and k not in _LEGACY_CODE_KEYS}
    return {**rest, UPDATE_CODES: [[code, at] for code, at in list(kept.items())[:UPDATE_CODES_KEPT]]}


@dataclass(frozen=True)
class Outcome:
    """What happened to a click, for the platform's answer: a short text and the card to show now."""

    ok: bool
    text: str
    card: RenderedCard | None = None
    # What a read-only click (Timeline) shows the clicker instead: a Slack modal (views.open), a Feishu card.
    view: RenderedCard | None = None


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

    def precheck(self, req: InboundRequest, now: datetime) -> bool:
        """What can be checked before the body is read (`req.body` is empty): the signature's headers are
        there and fresh, or, where the platform signs only headers, the whole signature. False refuses the
        callback without reading its body; True still leaves `verify` to run on the whole request."""
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
        """Replace a posted card in place; raises DeliveryError(retryable=...) on failure.

        An adapter with `spends_update_codes = True` (WeCom) updates only by spending one of the ref's
        `update_codes`; card_sync claims one in the database first and passes a ref carrying just that one."""
        ...


class Conversing(Protocol):
    """Optional: an adapter that also takes messages to the bot on its callback (same verification as clicks)
    and answers them in the same conversation, through the platform's messaging API."""

    def parse_message(self, req: InboundRequest) -> ChatMessage | None:
        """The message to the bot in a verified callback, or None if it carries none (or none for the bot)."""
        ...

    async def send_reply(self, message: ChatMessage, text: str) -> None:
        """Answer the message in its conversation; raises DeliveryError on failure."""
        ...


Click = Callable[[ActionEvent], Awaitable[Outcome]]
Ask = Callable[["Query"], Awaitable[str]]  # a read-only command (bot.chat.commands.Query) -> the reply
Heard = Callable[[ChatMessage], Awaitable[None]]  # a message to the bot, answered (bot.chat.messages.answer)


class Dispatching(Protocol):
    """Optional: an adapter whose SDK routes callbacks itself (Slack's bolt: verification, modals,
    slash commands). Its listeners must end in `click(event)`, i.e. bot.chat.clicks.apply, and read-only
    commands in `ask(query)`, i.e. bot.chat.commands.answer."""

    async def dispatch(self, req: InboundRequest, click: Click, ask: Ask | None = None) -> HttpReply: ...
