"""The media-provider contract: who to reach (Contact), what to say (Message), and how (MediaProvider).

SMS, voice and email providers sit behind `MediaProvider`; IM direct messages go through the IM
adapters, but `Medium.IM` names them so delivery rows use one vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    import aiohttp

    # Built lazily by __getattr__ below; declared here for type checkers.
    PROVIDERS: dict[str, type[MediaProvider]]

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


class Medium(str, Enum):
    """How a notification reaches a member."""

    IM = "im"
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"


@dataclass(frozen=True)
class Contact:
    """A member's addresses; `phone` is E.164 (`+8613800000000`)."""

    member_id: int
    name: str
    email: str | None = None
    phone: str | None = None

    def __post_init__(self) -> None:
        if self.phone is not None and not E164.match(self.phone):
            raise ValueError(f"contact.phone must be E.164 like +14155550100, got {self.phone!r}")


@dataclass(frozen=True)
class Message:
    """What to tell the member; `action_token` lets a voice keypad press act on the incident."""

    subject: str
    text: str
    incident_id: str
    html: str | None = None
    action_token: str | None = None


class MediaProvider(Protocol):
    """Sends one notification over one medium; raises only DeliveryError."""

    medium: ClassVar[Medium]
    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    async def send(self, to: Contact, message: Message) -> str:
        """Deliver `message` to `to` and return the provider's message id."""
        ...


def build_provider(
    name: str, config: Mapping[str, Any] | BaseModel, session: aiohttp.ClientSession | None = None
) -> MediaProvider:
    """Validate `config` with the named provider's model and construct the provider."""
    registry = _registry()
    try:
        cls = registry[name]
    except KeyError:
        raise ValueError(f"unknown media provider {name!r}; known: {', '.join(sorted(registry))}") from None
    model = config if isinstance(config, cls.config_model) else cls.config_model.model_validate(config)
    return cls(model, session)  # type: ignore[call-arg]


def _registry() -> dict[str, type[MediaProvider]]:
    # The registry imports every provider module, and they import this one, so it is built on first
    # use rather than at import time; `PROVIDERS` below exposes it as a plain dict (PEP 562).
    from bot.media.aliyun_sms import AliyunSmsProvider
    from bot.media.email import EmailProvider
    from bot.media.http_sms import HttpSmsProvider
    from bot.media.twilio import TwilioSmsProvider, TwilioVoiceProvider

    classes: list[type[MediaProvider]] = [
        EmailProvider,
        TwilioSmsProvider,
        TwilioVoiceProvider,
        AliyunSmsProvider,
        HttpSmsProvider,
    ]
    return {cls.name: cls for cls in classes}


def __getattr__(name: str) -> Any:
    if name == "PROVIDERS":
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
