"""Grafana webhook contact point: unified alerting (Grafana 8+) and legacy dashboard alerts (Grafana <= 10).

A body with an `alerts` list is unified alerting: Alertmanager-shaped, mapped exactly as
webhooks/prometheus.py does (severity from the `severity`/`priority`/`level` label, default Warning;
per-alert status; `fingerprint` as alert_key). Grafana's extra per-alert fields become labels
`dashboard_url`, `panel_url`, `silence_url` and `values` (`values` rendered as `A=1, B=0`, else
`valueString`); `imageURL` becomes an image linking to the panel. The top-level `state`, `title` and
`message` describe the whole group and are not used.

Any other body is a legacy alert notification (`ruleName`, `ruleId`, `state`, `evalMatches`, `tags`):
one alert per rule. Reference mapping: alerting -> Warning, no_data -> Critical, ok -> Ok. Grafana can
also report `pending` (-> Info) and `paused` (-> Ok, since a paused rule will never recover its alert).
alert_key is `grafana:<orgId>:<ruleId>`; the title is `ruleName`; the description is `message` plus one
`metric: value` line per eval match; `tags` are the labels, plus `rule_url`; `imageUrl` is an image.
Legacy payloads carry no time, so event_time is now.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from core.types import AlertEvent, EventStatus
from webhooks import prometheus
from webhooks.errors import InvalidParameter
from webhooks.standard import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    add_labels,
    generated_key,
    image_of,
    is_web_url,
    scalar_text,
    source_labels,
    text_of,
)

LEGACY_STATES = {
    "alerting": EventStatus.WARNING,
    "no_data": EventStatus.CRITICAL,
    "ok": EventStatus.OK,
    "pending": EventStatus.INFO,
    "paused": EventStatus.OK,
}
URL_LABELS = (("dashboardURL", "dashboard_url"), ("panelURL", "panel_url"), ("silenceURL", "silence_url"))


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
    """Alert events of a Grafana webhook, unified or legacy."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be a JSON object (a Grafana webhook notification)")
    if "alerts" in body:
        return [_unified(alert, f"alerts[{i}]", now) for i, alert in enumerate(prometheus.alerts_of(body))]
    if "ruleName" in body or "ruleId" in body or "evalMatches" in body:
        return [_legacy(body, now)]
    raise InvalidParameter(
        "alerts", "alerts is required (unified alerting); legacy alerts carry ruleName and state"
    )


def _unified(alert: Any, field: str, now: datetime) -> AlertEvent:
    event = prometheus.alert_event(alert, field, now, "Grafana alert")
    add_labels(event.labels, [(label, _url(alert.get(name))) for name, label in URL_LABELS])
    add_labels(event.labels, [("values", _values(alert.get("values"), alert.get("valueString"), field))])
    image = image_of(
        alert.get("imageURL"), "panel", _url(alert.get("panelURL")) or _url(alert.get("dashboardURL"))
    )
    if image is not None:
        event.images.append(image)
    return event


def _values(values: Any, value_string: Any, field: str) -> str:
    if isinstance(values, Mapping) and values:
        return ", ".join(f"{k}={scalar_text(v, f'{field}.values.{k}')}" for k, v in sorted(values.items()))
    return value_string if isinstance(value_string, str) else ""


def _legacy(body: Mapping[str, Any], now: datetime) -> AlertEvent:
    state = body.get("state")
    if not isinstance(state, str) or state not in LEGACY_STATES:
        raise InvalidParameter("state", f"state must be one of {', '.join(LEGACY_STATES)}")
    rule_name = text_of(body.get("ruleName"), "ruleName", TITLE_MAX)
    title = rule_name or text_of(body.get("title"), "title", TITLE_MAX) or "Grafana alert"
    labels = source_labels(body.get("tags"), "tags")
    rule_url = _url(body.get("ruleUrl"))
    add_labels(labels, [("rule_url", rule_url)])
    rule = _id(body.get("ruleId"))
    key = (
        f"grafana:{_id(body.get('orgId')) or 0}:{rule}" if rule else generated_key(["grafana", title], labels)
    )
    lines = [text_of(body.get("message"), "message", DESCRIPTION_MAX)] + _matches(body.get("evalMatches"))
    image = image_of(body.get("imageUrl"), "panel", rule_url)
    return AlertEvent(
        event_status=LEGACY_STATES[state],
        title=title,
        alert_key=key,
        title_rule=title,
        description="\n".join(line for line in lines if line)[:DESCRIPTION_MAX],
        labels=labels,
        event_time=now,
        images=[image] if image else [],
    )


def _matches(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidParameter("evalMatches", "evalMatches must be a list of {metric, value, tags}")
    lines = []
    for i, match in enumerate(raw):
        if not isinstance(match, Mapping):
            raise InvalidParameter(f"evalMatches[{i}]", f"evalMatches[{i}] must be an object")
        metric = scalar_text(match.get("metric"), f"evalMatches[{i}].metric")
        lines.append(f"{metric or 'value'}: {scalar_text(match.get('value'), f'evalMatches[{i}].value')}")
    return lines


def _id(raw: Any) -> str:
    """A numeric Grafana id as text; "" when absent or not a sane integer."""
    return str(raw) if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < 2**63 else ""


def _url(raw: Any) -> str:
    return raw if isinstance(raw, str) and is_web_url(raw) else ""
