"""Pure grouping decisions: which incident an alert joins ("100 similar alerts into 1").

A channel's grouping rule (Flashduty's channel `group` object, subset):

    {"method": "n" | "p",            # n: by alert_key only; p: by equal values of chosen fields
     "equals": [["labels.service"], ["title"]],   # OR of field sets; the first set the alert can fill wins
     "time_window": 10,              # minutes an incident keeps absorbing alerts; 0 = until it closes
     "window_type": "tumbling" | "sliding",   # from the incident start, or from its last merge
     "all_equals_required": false}   # true: a set with a missing field is skipped (strict grouping)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

FIELDS = ("title", "description", "severity")
GroupField = Annotated[str, Field(pattern=r"^(title|description|severity|labels\..+)$")]


class GroupingRule(BaseModel):
    """Validated form of Channel.grouping."""

    method: Literal["n", "p"] = "n"
    equals: list[Annotated[list[GroupField], Field(min_length=1, max_length=10)]] = Field(
        default_factory=list, max_length=5)
    time_window: int = Field(default=0, ge=0, le=43200, description="minutes; 0 = until the incident closes")
    window_type: Literal["tumbling", "sliding"] = "tumbling"
    all_equals_required: bool = False

    @field_validator("equals")
    @classmethod
    def _known_fields(cls, sets: list[list[str]]) -> list[list[str]]:
        for i, fields in enumerate(sets):
            if not fields:
                raise ValueError(f"equals[{i}] is empty")
            for name in fields:
                if name not in FIELDS and not (name.startswith("labels.") and len(name) > 7):
                    raise ValueError(f"equals[{i}]: unknown field {name!r} (title, description, severity, labels.<k>)")
        return sets


@dataclass(frozen=True)
class GroupSubject:
    alert_key: str
    title: str
    description: str
    severity: str
    labels: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        if name.startswith("labels."):
            return self.labels.get(name[7:])
        return getattr(self, name) or None


def group_key(rule: GroupingRule, subject: GroupSubject) -> tuple[str, str]:
    """Return (group key, method used): alerts with equal keys belong in the same open incident."""
    if rule.method == "p":
        for i, fields in enumerate(rule.equals):
            values = [subject.value(f) for f in fields]
            if rule.all_equals_required and any(v is None for v in values):
                continue
            if all(v is None for v in values):
                continue
            return _digest("p", str(i), *[f"{f}={v or ''}" for f, v in zip(fields, values)]), "p"
    return _digest("n", subject.alert_key), "n"


def window_open(rule: GroupingRule, *, started: datetime, last_merge: datetime, now: datetime) -> bool:
    """Whether an open incident still absorbs new alerts at `now`."""
    if rule.time_window == 0:
        return True
    anchor = last_merge if rule.window_type == "sliding" else started
    return now < anchor + timedelta(minutes=rule.time_window)


def parse_rule(raw: dict[str, Any] | None) -> GroupingRule:
    return GroupingRule.model_validate(raw or {})


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
