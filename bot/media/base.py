"""The media-provider contract: who to reach (Contact), what to say (Message), and how (MediaProvider).

SMS, voice and email providers sit behind `MediaProvider`; IM direct messages go through the IM
adapters, but `Medium.IM` names them so delivery rows use one vocabulary. The providers import this
module; bot/media/registry.py imports the providers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, ClassVar, Protocol

from pydantic import AfterValidator, BaseModel

from core.egress import url_problem

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def _http_url(value: str) -> str:
    problem = url_problem(value)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


# A provider's endpoint: http or https with a host (which addresses it may reach is bot/egress.py's business).
HttpUrlStr = Annotated[str, AfterValidator(_http_url)]


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
    """What to tell the member; `action_token` lets a voice keypad press act on the incident.

    `idempotency_key` is the same for every attempt of one delivery: a send interrupted by a crash is
    sent again (a page is never dropped), and a gateway that honours the key delivers it once.
    """

    subject: str
    text: str
    incident_id: str
    html: str | None = None
    action_token: str | None = None
    idempotency_key: str = ""


class MediaProvider(Protocol):
    """Sends one notification over one medium; raises only DeliveryError."""

    medium: ClassVar[Medium]
    name: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    async def send(self, to: Contact, message: Message) -> str:
        """Deliver `message` to `to` and return the provider's message id."""
        ...
