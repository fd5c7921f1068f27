"""Standard alert events (Flashduty Event API, reference section 1.2), plus helpers shared by formats."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.types import AlertEvent, EventStatus, Image
from webhooks.errors import InvalidParameter

TITLE_MAX, DESCRIPTION_MAX, ALERT_KEY_MAX = 512, 2048, 255
LABEL_KEY_MAX, LABEL_VALUE_MAX, LABELS_MAX = 128, 2048, 50
LABEL_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
STATUSES = ", ".join(s.value for s in EventStatus)


def status_of(value: Any) -> EventStatus:
    try:
        return EventStatus(value)
    except (ValueError, TypeError):
        raise InvalidParameter("event_status", f"event_status must be one of {STATUSES}, got {value!r}") from None


def clean_labels(raw: Any, *, strict_keys: bool = True) -> dict[str, str]:
    """Validate labels: string keys (Prometheus naming), scalar values truncated, at most 50."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidParameter("labels", "labels must be an object of string values")
    if len(raw) > LABELS_MAX:
        raise InvalidParameter("labels", f"labels has {len(raw)} entries; at most {LABELS_MAX} are allowed")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if len(key) > LABEL_KEY_MAX:
            raise InvalidParameter(f"labels.{key[:40]}", f"labels.{key[:40]}...: key longer than {LABEL_KEY_MAX}")
        if strict_keys and not LABEL_KEY.match(key):
            raise InvalidParameter(f"labels.{key}", f"labels.{key}: key must match [a-zA-Z_][a-zA-Z0-9_]*")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif value is None:
            value = ""
        elif not isinstance(value, str):
            raise InvalidParameter(f"labels.{key}", f"labels.{key}: value must be a string")
        out[key] = value[:LABEL_VALUE_MAX]
    return out


def event_time_of(raw: Any, now: datetime, field: str = "event_time") -> datetime:
    if raw is None:
        return now
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0 or raw != raw:
        raise InvalidParameter(field, f"{field} must be a non-negative unix timestamp in seconds")
    seconds = raw / 1000 if raw > 1e12 else raw
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidParameter(field, f"{field} is out of range") from None


def text_of(raw: Any, field: str, limit: int, *, required: bool = False) -> str:
    if raw is None:
        if required:
            raise InvalidParameter(field, f"{field} is required")
        return ""
    if not isinstance(raw, str):
        raise InvalidParameter(field, f"{field} must be a string")
    if required and not raw.strip():
        raise InvalidParameter(field, f"{field} must not be empty")
    return raw[:limit]


def generated_key(title: str, labels: Mapping[str, str]) -> str:
    """A deterministic alert_key for events that carry none, so identical events dedup."""
    h = hashlib.sha256(title.encode())
    for k in sorted(labels):
        h.update(b"\x1f" + k.encode() + b"=" + labels[k].encode())
    return h.hexdigest()[:22]


def render_title(rule: str, labels: Mapping[str, str]) -> str:
    """Title rules: `$resource::$check` substitutes labels (`::` -> ` / `); `[TPL]${x}` too."""
    if rule.startswith("[TPL]"):
        return re.sub(r"\$\{(\w+)\}", lambda m: labels.get(m.group(1), "<no value>"), rule[5:])
    if "$" not in rule:
        return rule
    out = re.sub(r"\$(\w+)", lambda m: labels.get(m.group(1), m.group(0)), rule)
    return out.replace("::", " / ")


def images_of(raw: Any) -> list[Image]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidParameter("images", "images must be a list of {alt, src, href}")
    by_alt: dict[str, Image] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InvalidParameter(f"images[{i}]", f"images[{i}] must be an object")
        src = item.get("src")
        if not isinstance(src, str) or len(src) > 256:
            continue  # the reference discards unusable images rather than the event
        alt = item.get("alt") if isinstance(item.get("alt"), str) else ""
        href = item.get("href") if isinstance(item.get("href"), str) else ""
        by_alt[alt[:128]] = Image(src=src, alt=alt[:128], href=href[:256])
    return list(by_alt.values())


def apply_overrides(event: AlertEvent, query: Mapping[str, str]) -> AlertEvent:
    """Query `severity=` overrides the status (not a recovery); `title_rule=` overrides the title."""
    severity = query.get("severity")
    if severity:
        status = status_of(severity)
        if status is EventStatus.OK:
            raise InvalidParameter("severity", "severity must be Critical, Warning or Info")
        if event.event_status is not EventStatus.OK:
            event.event_status = status
    if query.get("title_rule"):
        event.title_rule = query["title_rule"][:TITLE_MAX]
        event.title = render_title(event.title_rule, event.labels)[:TITLE_MAX]
    return event


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
    """One standard event."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be a JSON object")
    status = status_of(body.get("event_status"))
    title_rule = text_of(body.get("title_rule"), "title_rule", TITLE_MAX, required=True)
    labels = clean_labels(body.get("labels"))
    key = body.get("alert_key")
    if key is not None and (not isinstance(key, str) or len(key) > ALERT_KEY_MAX):
        raise InvalidParameter("alert_key", f"alert_key must be a string of at most {ALERT_KEY_MAX} characters")
    title = render_title(title_rule, labels)[:TITLE_MAX]
    if not key:
        if status is EventStatus.OK:
            raise InvalidParameter("alert_key", "alert_key is required for Ok events")
        key = generated_key(title_rule, labels)
    event = AlertEvent(
        event_status=status, title=title, alert_key=key, title_rule=title_rule,
        description=text_of(body.get("description"), "description", DESCRIPTION_MAX), labels=labels,
        event_time=event_time_of(body.get("event_time"), now), images=images_of(body.get("images")),
    )
    return [apply_overrides(event, query)]
