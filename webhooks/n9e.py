"""Nightingale (n9e) events: a JSON array of AlertCurEvent objects (n9e v8's FlashDuty notify), or one object
(the v5/v6 webhook callback).

Field names are those of n9e's `models.AlertCurEvent` JSON. Mapping: `is_recovered` true -> Ok;
otherwise `severity` 1 -> Critical, 2 -> Warning, 3 -> Info. alert_key is `hash` (n9e's rule id + series
key, the same for an alert and its recovery), or a hash of rule_id and tags when absent. The title is
`rule_name`; the description is `rule_note` plus the trigger value. Labels are `tags_map` (else the
`key=value` strings of `tags`), then rule_id, busi_group (`group_name`), ident (`target_ident`),
cluster, runbook_url and the remaining `annotations`, where no tag already has the name. event_time
is `trigger_time` for a firing event and `last_eval_time` for a recovery, else now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from core.types import AlertEvent, EventStatus
from webhooks.errors import InvalidParameter
from webhooks.standard import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    add_labels,
    bounded_key,
    event_time_of,
    generated_key,
    is_web_url,
    scalar_text,
    source_labels,
    text_of,
)

SEVERITIES = {1: EventStatus.CRITICAL, 2: EventStatus.WARNING, 3: EventStatus.INFO}


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
    """One alert event per Nightingale event."""
    if isinstance(body, Mapping):
        return [_event(body, "", now)]
    if not isinstance(body, list):
        raise InvalidParameter(
            "body", "body must be a JSON array of Nightingale events (or one event object)"
        )
    return [_event(item, f"body[{i}]", now) for i, item in enumerate(body)]


def _event(raw: Any, at: str, now: datetime) -> AlertEvent:
    if not isinstance(raw, Mapping):
        raise InvalidParameter(at, f"{at} must be a Nightingale event object")

    def name(field: str) -> str:
        return f"{at}.{field}" if at else field

    recovered = raw.get("is_recovered", False)
    if not isinstance(recovered, bool):
        raise InvalidParameter(name("is_recovered"), f"{name('is_recovered')} must be true or false")
    status = EventStatus.OK if recovered else _severity(raw.get("severity"), name("severity"))
    labels = _tags(raw, name)
    rule_id = scalar_text(raw.get("rule_id"), name("rule_id"))
    title = (
        text_of(raw.get("rule_name"), name("rule_name"), TITLE_MAX) or f"Nightingale rule {rule_id}".strip()
    )
    hash_ = text_of(raw.get("hash"), name("hash"), 10_000)
    key = bounded_key(hash_) if hash_ else generated_key(["n9e", rule_id], labels)
    runbook = text_of(raw.get("runbook_url"), name("runbook_url"), 2048)
    add_labels(
        labels,
        [
            ("rule_id", rule_id),
            ("busi_group", text_of(raw.get("group_name"), name("group_name"), 2048)),
            ("ident", text_of(raw.get("target_ident"), name("target_ident"), 2048)),
            ("cluster", text_of(raw.get("cluster"), name("cluster"), 2048)),
            ("runbook_url", runbook if is_web_url(runbook) else ""),
        ],
    )
    add_labels(labels, source_labels(raw.get("annotations"), name("annotations")).items())
    value = scalar_text(raw.get("trigger_value"), name("trigger_value"))
    lines = [
        text_of(raw.get("rule_note"), name("rule_note"), DESCRIPTION_MAX),
        f"Trigger value: {value}" if value and not recovered else "",
    ]
    when_field = "last_eval_time" if recovered else "trigger_time"
    return AlertEvent(
        event_status=status,
        title=title,
        alert_key=key,
        title_rule=title,
        description="\n".join(line for line in lines if line)[:DESCRIPTION_MAX],
        labels=labels,
        event_time=event_time_of(raw.get(when_field), now, name(when_field)),
    )


def _severity(raw: Any, field: str) -> EventStatus:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in SEVERITIES:
        return SEVERITIES[raw]
    raise InvalidParameter(field, f"{field} must be 1 (Critical), 2 (Warning) or 3 (Info)")


def _tags(raw: Mapping[str, Any], name: Callable[[str], str]) -> dict[str, str]:
    if raw.get("tags_map"):
        return source_labels(raw["tags_map"], name("tags_map"))
    tags = raw.get("tags")
    if tags is None:
        return {}
    if not isinstance(tags, list):
        raise InvalidParameter(name("tags"), f"{name('tags')} must be an array of key=value strings")
    pairs: dict[str, str] = {}
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise InvalidParameter(f"{name('tags')}[{i}]", f"{name('tags')}[{i}] must be a key=value string")
        key, sep, value = tag.partition("=")
        if sep and key:
            pairs.setdefault(key, value)
    labels: dict[str, str] = {}
    add_labels(labels, pairs.items())
    return labels
