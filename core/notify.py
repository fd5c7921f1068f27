"""Delivery plans and the fallback chain, pure: which media reach a member, and what comes next on failure.

Member.preferences maps a severity to media, e.g. {"Critical": ["im", "voice"], "Warning": ["im"],
"Info": ["email"]}; Member.fallback is the order tried when a medium fails (default IM -> SMS -> email).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator

from core.escalation import MEDIA

DEFAULT_PREFERENCES: dict[str, list[str]] = {"Critical": ["im", "sms"], "Warning": ["im"], "Info": ["im"]}
DEFAULT_FALLBACK: list[str] = ["im", "sms", "email"]


class Preferences(BaseModel):
    """A member's personal notification preferences (validated on the Open API)."""

    Critical: list[str] = Field(default_factory=lambda: list(DEFAULT_PREFERENCES["Critical"]))
    Warning: list[str] = Field(default_factory=lambda: list(DEFAULT_PREFERENCES["Warning"]))
    Info: list[str] = Field(default_factory=lambda: list(DEFAULT_PREFERENCES["Info"]))

    @field_validator("Critical", "Warning", "Info")
    @classmethod
    def _media(cls, media: list[str]) -> list[str]:
        return check_media(media)


def check_media(media: list[str]) -> list[str]:
    for m in media:
        if m not in MEDIA:
            raise ValueError(f"unknown medium {m!r}; use {', '.join(MEDIA)}")
    if len(set(media)) != len(media):
        raise ValueError("a medium is listed twice")
    return media


def media_for(severity: str, preferences: dict[str, Any] | None, explicit: Sequence[str] | None) -> list[str]:
    """Media to page a member with: the level's explicit media, else the member's preference for the severity."""
    if explicit:
        return list(dict.fromkeys(explicit))
    prefs = preferences or {}
    chosen = prefs.get(severity) or DEFAULT_PREFERENCES.get(severity) or ["im"]
    return list(dict.fromkeys(chosen))


def next_fallback(failed: str, tried: Iterable[str], chain: Sequence[str] | None) -> str | None:
    """The medium to try after `failed`: the next in the member's chain not tried yet for this page."""
    order = list(chain or DEFAULT_FALLBACK)
    done = set(tried) | {failed}
    start = order.index(failed) + 1 if failed in order else 0
    for medium in order[start:] + order[:start]:
        if medium not in done:
            return medium
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How long a failing delivery keeps trying, and when its member's next medium takes over.

    Retries are bounded by time, not by count: a provider outage of a few minutes is ridden out
    (the budget), while the member is reached sooner through the next medium of the fallback chain,
    started beside the retries once a medium has failed for `handover_after`. Backoff doubles from
    `base` up to `cap` with jitter, so a page is at most about `cap` late after an outage ends.
    """

    budget: timedelta = timedelta(minutes=10)
    handover_after: timedelta = timedelta(seconds=60)
    base: float = 1.0
    cap: float = 10.0


@dataclass(frozen=True)
class AfterFailure:
    """What to do after a failed attempt: retry in `retry_in` seconds (None: give up), and whether the
    member's next medium should start now."""

    retry_in: float | None
    hand_over: bool


def after_failure(policy: RetryPolicy, *, attempts: int, failing_for: timedelta, retryable: bool,
                  retry_after: float | None, jitter: float) -> AfterFailure:
    """Decide a delivery's next step after its `attempts`-th failed attempt, `failing_for` after its first.

    `jitter` in [0, 1) spreads retries of many pages over the second half of each backoff step, so a
    provider coming back is not hit by all of them at once. A provider's Retry-After is honoured when
    it is longer than the backoff, as long as it still fits in the budget.
    """
    if not retryable:  # a bad number, an unknown user, a rejected request: trying again changes nothing
        return AfterFailure(None, True)
    step = min(policy.cap, policy.base * 2 ** max(attempts - 1, 0))
    delay = step * (0.5 + jitter / 2)
    if retry_after:
        delay = max(delay, retry_after)
    if failing_for + timedelta(seconds=delay) > policy.budget:
        return AfterFailure(None, True)
    return AfterFailure(round(delay, 3), failing_for >= policy.handover_after)
