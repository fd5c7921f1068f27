"""Several providers for one medium, tried in order within one delivery attempt.

A provider that fails (an error, a timeout, an outage, its own credentials) is skipped to the next one;
an error about the recipient (a number that is not valid) ends the attempt, since every vendor would
refuse the same number. `next_step` and `combined` are the pure decisions; `ProviderChain` applies them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from bot.media.base import Contact, MediaProvider, Medium, Message
from core.errors import DeliveryError

log = logging.getLogger(__name__)


class Step(str, Enum):
    NEXT = "next"  # try the medium's next provider now
    STOP = "stop"  # give up this attempt: another provider would fail the same way


def next_step(error: DeliveryError) -> Step:
    """What a provider's failure means for the providers after it: only the recipient's fault stops."""
    return Step.STOP if error.recipient else Step.NEXT


def combined(failures: Sequence[tuple[str, DeliveryError]]) -> DeliveryError:
    """The attempt's error once no provider sent it, each provider's error named in order.

    A recipient error (it ends the chain) stands as it is: neither a retry nor another vendor helps.
    Otherwise the attempt is retryable when one provider may work later (an outage passes); a Retry-After
    is kept only if every retryable provider asked for one (the soonest of them).
    """
    if not failures:
        raise ValueError("combined() needs at least one failure")
    text = "; ".join(f"{name}: {error}" for name, error in failures)
    reason = "; ".join(f"{name}: {error.reason or 'failed'}" for name, error in failures)[:500]
    last = failures[-1][1]
    if last.recipient:
        return DeliveryError(text, retryable=last.retryable, retry_after=last.retry_after, reason=reason,
                             recipient=True)
    waits = [e.retry_after for _, e in failures if e.retryable]
    retry_after = min(w for w in waits if w is not None) if waits and None not in waits else None
    return DeliveryError(text, retryable=bool(waits), retry_after=retry_after, reason=reason)


@dataclass(frozen=True)
class Attempt:
    """What one send through the chain did: the message id, the provider that sent it, the ones that failed."""

    message_id: str
    provider: str
    skipped: tuple[tuple[str, DeliveryError], ...] = ()

    def skipped_text(self) -> str:
        return "; ".join(f"{name}: {error}" for name, error in self.skipped)


class ProviderChain:
    """A medium's providers in order, itself a MediaProvider (pages and contact codes both send through it)."""

    name: ClassVar[str] = "failover"

    def __init__(self, providers: Sequence[MediaProvider]) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        media = {p.medium for p in providers}
        if len(media) != 1:
            raise ValueError(f"providers of one medium only, got {', '.join(sorted(m.value for m in media))}")
        self.providers = tuple(providers)
        self.medium: Medium = providers[0].medium

    async def send(self, to: Contact, message: Message) -> str:
        return (await self.attempt(to, message)).message_id

    async def attempt(self, to: Contact, message: Message) -> Attempt:
        """Send through the first provider that takes the message; DeliveryError (all named) if none did."""
        failures: list[tuple[str, DeliveryError]] = []
        for provider in self.providers:
            try:
                message_id = await provider.send(to, message)
            except DeliveryError as exc:
                failures.append((provider.name, exc))
            except Exception as exc:  # a provider's bug must not keep the next provider from sending the page
                log.exception("media provider %s crashed", provider.name)
                failures.append((provider.name, DeliveryError(f"{type(exc).__name__}", retryable=True)))
            else:
                return Attempt(message_id, provider.name, tuple(failures))
            if next_step(failures[-1][1]) is Step.STOP:
                break
        raise combined(failures)
