"""Delivery plans and the fallback chain, pure: which media reach a member, and what comes next on failure.

Member.preferences maps a severity to media, e.g. {"Critical": ["im", "voice"], "Warning": ["im"],
"Info": ["email"]}; Member.fallback is the order tried when a medium fails (default IM -> SMS -> email).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
