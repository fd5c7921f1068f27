"""Prometheus Alertmanager webhook (version 4): one alert event per alert of the notification.

Mapping (reference section 3, plus the choices Flashduty leaves open):

- status: each alert's own `status` decides recovery (`resolved` -> Ok), never the group's: a group
  notification can carry resolved and firing alerts together.
- severity: the first of the labels `severity`, `priority`, `level` that is present (case-insensitive):
  critical -> Critical; warning/warn -> Warning; info/acknowledged/unknown/unk -> Info; ok -> Ok;
  anything else, or none, -> Warning.
- alert_key: `fingerprint` (Alertmanager's hash of the label set, stable across notifications), or a
  hash of the sorted labels when absent.
- title: annotation `summary`, else `title`, else label `alertname`. It is taken literally: it was
  already rendered by Prometheus, so it is not run through title rules (a `::` in it stays).
- description: annotation `description`, else `message`.
- labels: the alert's labels. `commonLabels` are not merged: Alertmanager computes them as the labels
  every alert shares, so they add nothing. Other annotations (runbook_url, dashboard, ...) are added
  as labels when no label has that name (labels win), because responders want them on the card;
  internal `__x__` annotations are skipped. `generatorURL` becomes the label `generator_url` (a link,
  not an image).
- event_time: annotation `timestamp` when numeric (Flashduty's documented `time()` trick), else
  `endsAt` for resolved and `startsAt` for firing alerts, else now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
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
    source_labels,
)

SEVERITY_LABELS = ("severity", "priority", "level")
SEVERITIES = {
    "critical": EventStatus.CRITICAL,
    "warning": EventStatus.WARNING,
    "warn": EventStatus.WARNING,
    "info": EventStatus.INFO,
    "acknowledged": EventStatus.INFO,
    "unknown": EventStatus.INFO,
    "unk": EventStatus.INFO,
    "ok": EventStatus.OK,
}
CONSUMED_ANNOTATIONS = frozenset({"summary", "title", "description", "message", "timestamp"})


def severity_of(labels: Mapping[str, str]) -> EventStatus:
    """Event status of a firing alert from its severity-like label; Warning by default."""
    for name in SEVERITY_LABELS:
        if name in labels:
            return SEVERITIES.get(labels[name].strip().lower(), EventStatus.WARNING)
    return EventStatus.WARNING


def rfc3339(raw: Any) -> datetime | None:
    """An Alertmanager time as aware UTC; None for absent, unparsable or Go's zero time (year 1)."""
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if when.year <= 1:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def number_of(raw: Any) -> float | None:
    """A positive finite number from a JSON number or numeric string; None otherwise."""
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        value = float(raw)
    except OverflowError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def alerts_of(body: object) -> list[Any]:
    """The `alerts` list of an Alertmanager-shaped notification."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be a JSON object (an Alertmanager webhook notification)")
    alerts = body.get("alerts")
    if alerts is None:
        raise InvalidParameter("alerts", "alerts is required")
    if not isinstance(alerts, list):
        raise InvalidParameter("alerts", "alerts must be a list")
    return alerts


def alert_event(alert: Any, field: str, now: datetime, default_title: str) -> AlertEvent:
    """One Alertmanager-shaped alert as an AlertEvent (`field` names it in errors, e.g. `alerts[2]`)."""
    if not isinstance(alert, Mapping):
        raise InvalidParameter(field, f"{field} must be an object")
    labels = source_labels(alert.get("labels"), f"{field}.labels")
    annotations = source_labels(alert.get("annotations"), f"{field}.annotations")
    state = alert.get("status")
    if state is not None and not isinstance(state, str):
        raise InvalidParameter(f"{field}.status", f"{field}.status must be firing or resolved")
    resolved = state == "resolved"
    status = EventStatus.OK if resolved else severity_of(labels)  # before annotations join the labels
    title = (
        annotations.get("summary") or annotations.get("title") or labels.get("alertname") or default_title
    )[:TITLE_MAX]
    fingerprint = alert.get("fingerprint")
    key = (
        bounded_key(fingerprint)
        if isinstance(fingerprint, str) and fingerprint
        else generated_key([], labels)
    )
    when = _event_time(
        annotations.get("timestamp"), alert.get("endsAt" if resolved else "startsAt"), now, field
    )
    generator = alert.get("generatorURL")
    add_labels(
        labels, [("generator_url", generator if isinstance(generator, str) and is_web_url(generator) else "")]
    )
    add_labels(
        labels,
        [(k, v) for k, v in annotations.items() if k not in CONSUMED_ANNOTATIONS and not k.startswith("__")],
    )
    return AlertEvent(
        event_status=status,
        title=title,
        alert_key=key,
        title_rule=title,
        description=(annotations.get("description") or annotations.get("message") or "")[:DESCRIPTION_MAX],
        labels=labels,
        event_time=when,
    )


def _event_time(stamp: str | None, rfc_time: Any, now: datetime, field: str) -> datetime:
    seconds = number_of(stamp)
    if seconds is not None:
        try:
            return event_time_of(seconds, now, f"{field}.annotations.timestamp")
        except InvalidParameter:
            pass  # an unusable hint; the alert's own times still tell
    return rfc3339(rfc_time) or now


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
    """One alert event per alert of an Alertmanager notification."""
    return [
        alert_event(alert, f"alerts[{i}]", now, "Prometheus alert") for i, alert in enumerate(alerts_of(body))
    ]
