"""Noise reduction, pure: drop, silence, inhibit, flapping and storm decisions.

Rules are matched with core/conditions.py against a subject built from the alert event. Each
function takes the rules (already loaded), the subject and `now`, and returns a decision; the
ingest store (core/ingest.py) applies it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from core.conditions import ConditionError, compile_tree, field_value
from core.escalation import TimeWindow


def _check_tree(tree: list[Any]) -> list[Any]:
    try:
        compile_tree(tree)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None
    return tree


class DropSpec(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    priority: int = Field(default=0, ge=0, le=1000)
    filters: list[list[dict[str, Any]]] = Field(min_length=1, description="OR of AND conditions; required")
    _check = field_validator("filters")(classmethod(lambda cls, v: _check_tree(v)))


class SilenceSpec(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    filters: list[list[dict[str, Any]]] = Field(min_length=1)
    starts_at: datetime | None = Field(default=None, description="one-off window start (ISO 8601)")
    ends_at: datetime | None = Field(default=None, description="one-off window end")
    time_windows: list[TimeWindow] = Field(default_factory=list, description="recurring windows instead")
    _check = field_validator("filters")(classmethod(lambda cls, v: _check_tree(v)))

    @model_validator(mode="after")
    def _window(self) -> SilenceSpec:
        one_off = self.starts_at is not None or self.ends_at is not None
        if one_off and self.time_windows:
            raise ValueError("give either starts_at/ends_at or time_windows, not both")
        if not one_off and not self.time_windows:
            raise ValueError("a silence needs a window: starts_at and ends_at, or time_windows")
        if one_off:
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("starts_at and ends_at go together")
            if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
                raise ValueError("starts_at and ends_at need a time zone (e.g. 2026-01-01T00:00:00Z)")
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        return self


class InhibitSpec(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    source_filters: list[list[dict[str, Any]]] = Field(min_length=1)
    target_filters: list[list[dict[str, Any]]] = Field(min_length=1)
    equals: list[str] = Field(default_factory=list, max_length=10,
                              description="fields that must be equal, e.g. labels.cluster")
    window_minutes: int = Field(default=10, ge=1, le=1440, description="how recent an active source must be")
    _check = field_validator("source_filters", "target_filters")(classmethod(lambda cls, v: _check_tree(v)))

    @field_validator("equals")
    @classmethod
    def _fields(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in ("title", "description", "severity") and not (name.startswith("labels.") and name[7:]):
                raise ValueError(f"equals: unknown field {name!r} (title, description, severity, labels.<k>)")
        return v


class Flapping(BaseModel):
    """Channel setting: `max_changes` status changes within `in_mins` mutes paging for `mute_mins`."""

    enabled: bool = False
    max_changes: int = Field(default=4, ge=2, le=100)
    in_mins: int = Field(default=60, ge=1, le=1440)
    mute_mins: int = Field(default=120, ge=0, le=1440)


def dropped_by(rules: Sequence[tuple[int, list[Any]]], subject: Mapping[str, Any]) -> int | None:
    """The first drop rule (in order) matching the event, or None."""
    for rule_id, filters in rules:
        if compile_tree(filters).matches(subject):
            return rule_id
    return None


@dataclass(frozen=True)
class SilenceView:
    id: int
    filters: list[Any]
    starts_at: datetime | None
    ends_at: datetime | None
    time_windows: list[Any]

    def active(self, now: datetime) -> bool:
        if self.starts_at is not None and self.ends_at is not None:
            return self.starts_at <= now < self.ends_at
        return any(TimeWindow.model_validate(w).contains(now) for w in self.time_windows)


def silenced_by(rules: Iterable[SilenceView], subject: Mapping[str, Any], now: datetime) -> int | None:
    """The first silence active at `now` whose filters match, or None."""
    for rule in rules:
        if rule.active(now) and compile_tree(rule.filters).matches(subject):
            return rule.id
    return None


@dataclass(frozen=True)
class InhibitView:
    id: int
    source_filters: list[Any]
    target_filters: list[Any]
    equals: list[str]
    window_minutes: int


@dataclass(frozen=True)
class ActiveAlert:
    subject: Mapping[str, Any]
    last_time: datetime


def inhibited_by(rules: Iterable[InhibitView], target: Mapping[str, Any], active: Sequence[ActiveAlert],
                 now: datetime) -> int | None:
    """The first inhibit rule under which an active, recent source alert suppresses `target`, or None."""
    for rule in rules:
        if not compile_tree(rule.target_filters).matches(target):
            continue
        sources = compile_tree(rule.source_filters)
        since = now - timedelta(minutes=rule.window_minutes)
        for src in active:
            if src.last_time < since or src.subject is target or not sources.matches(src.subject):
                continue
            if all(field_value(src.subject, f) is not None and field_value(src.subject, f) == field_value(target, f)
                   for f in rule.equals):
                return rule.id
    return None


def flap(changes: Sequence[int], now: datetime, cfg: Flapping) -> tuple[list[int], bool]:
    """Record a status change at `now`; return the kept history and whether the key is flapping."""
    ts = int(now.timestamp())
    kept = [c for c in changes if c > ts - cfg.in_mins * 60] + [ts]
    return kept[-cfg.max_changes * 2:], cfg.enabled and len(kept) >= cfg.max_changes


def storm_crossed(before: int, after: int, thresholds: Sequence[int]) -> int | None:
    """The highest storm threshold crossed going from `before` to `after` alerts, or None."""
    crossed = [t for t in thresholds if before < t <= after]
    return max(crossed) if crossed else None
