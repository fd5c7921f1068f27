"""Prometheus Alertmanager webhook (version 4): one alert event per alert of the notification.

Per-alert `status` decides recovery, not the group's. The alert's `fingerprint` (stable for its
label set) is the alert_key. Severity comes from the `severity`, `priority` or `level` label.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from core.types import AlertEvent, EventStatus
from webhooks.errors import InvalidParameter
from webhooks.standard import (
    DESCRIPTION_MAX, TITLE_MAX, apply_overrides, clean_labels, generated_key, render_title,
)

SEVERITIES = {"critical": EventStatus.CRITICAL, "warning": EventStatus.WARNING, "warn": EventStatus.WARNING,
              "info": EventStatus.INFO, "acknowledged": EventStatus.INFO, "unknown": EventStatus.INFO,
              "unk": EventStatus.INFO, "ok": EventStatus.OK}


def severity_of(labels: Mapping[str, str]) -> EventStatus:
    for name in ("severity", "priority", "level"):
        if name in labels:
            return SEVERITIES.get(labels[name].lower(), EventStatus.WARNING)
    return EventStatus.WARNING


def _time(raw: object, now: datetime) -> datetime:
    if not isinstance(raw, str) or raw.startswith("0001-"):
        return now
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return now


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be an Alertmanager webhook object")
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidParameter("alerts", "alerts must be a list")
    out = []
    for i, alert in enumerate(alerts):
        if not isinstance(alert, Mapping):
            raise InvalidParameter(f"alerts[{i}]", f"alerts[{i}] must be an object")
        labels = clean_labels(alert.get("labels") or {}, strict_keys=False)
        annotations = clean_labels(alert.get("annotations") or {}, strict_keys=False)
        resolved = alert.get("status") == "resolved"
        status = EventStatus.OK if resolved else severity_of(labels)
        title_rule = annotations.get("summary") or annotations.get("title") or labels.get("alertname") or "alert"
        key = alert.get("fingerprint")
        if not isinstance(key, str) or not key:
            key = generated_key("prometheus", labels)
        stamp = annotations.get("timestamp")
        when = (datetime.fromtimestamp(float(stamp), now.tzinfo) if stamp and stamp.replace(".", "", 1).isdigit()
                else _time(alert.get("endsAt") if resolved else alert.get("startsAt"), now))
        event = AlertEvent(
            event_status=status, title=render_title(title_rule, labels)[:TITLE_MAX], alert_key=key[:255],
            title_rule=title_rule[:TITLE_MAX],
            description=(annotations.get("description") or annotations.get("message") or "")[:DESCRIPTION_MAX],
            labels=dict(list(labels.items())[:50]), event_time=when,
        )
        out.append(apply_overrides(event, query))
    return out
