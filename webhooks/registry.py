"""Inbound alert formats by push path: /event/push/alert/<name>. A new format is one file and one line.

Every entry is wrapped so the query overrides of reference 1.1 work the same for all formats:
`severity=Critical|Warning|Info` replaces the status of every non-recovery event, and `title_rule=...`
re-renders every title (the source title is available to it as `{{.Title}}`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from core.types import AlertEvent, EventStatus, Severity
from webhooks import grafana, n9e, prometheus, standard, zabbix
from webhooks.errors import InvalidParameter
from webhooks.standard import TITLE_MAX, title_of
from webhooks.title_rule import TitleContext

Parser = Callable[[object, Mapping[str, str], datetime], list[AlertEvent]]


def apply_overrides(events: list[AlertEvent], query: Mapping[str, str]) -> list[AlertEvent]:
    """Apply the `severity=` and `title_rule=` query overrides (reference 1.1) to parsed events."""
    severity = _severity(query.get("severity") or "")
    rule = (query.get("title_rule") or "")[:TITLE_MAX]
    for event in events:
        if severity is not None and event.event_status is not EventStatus.OK:
            event.event_status = EventStatus(severity.value)
        if rule.strip():
            known = event.event_status.severity
            ctx = TitleContext(
                labels=event.labels,
                event_status=event.event_status.value,
                event_severity=known.value if known else "",
                alert_key=event.alert_key,
                title=event.title,
                description=event.description,
                title_rule=rule,
            )
            event.title, event.title_rule = title_of(rule, ctx), rule
    return events


def _severity(raw: str) -> Severity | None:
    if not raw:
        return None
    for severity in Severity:
        if raw.lower() == severity.value.lower():  # a URL knob: accept "critical" as well
            return severity
    raise InvalidParameter("severity", f"severity must be one of {', '.join(s.value for s in Severity)}")


def with_overrides(parse: Parser) -> Parser:
    """Wrap a format's parser so the query overrides apply to what it returns."""

    def parse_with_overrides(body: object, query: Mapping[str, str], now: datetime) -> list[AlertEvent]:
        _severity(query.get("severity") or "")  # a bad override is an error even for an empty batch
        return apply_overrides(parse(body, query, now), query)

    parse_with_overrides.__doc__ = parse.__doc__
    return parse_with_overrides


def _alert_list(body: object) -> int:
    alerts = body.get("alerts") if isinstance(body, Mapping) else None
    return len(alerts) if isinstance(alerts, list) else 1


def _array(body: object) -> int:
    return len(body) if isinstance(body, list) else 1


# How many alerts a body carries, read before it is parsed: the per-request cap and the rate limit count
# them, and a body over the cap must not cost its parse. Formats not listed carry one event per request.
COUNTS: dict[str, Callable[[object], int]] = {"prometheus": _alert_list, "grafana": _alert_list, "n9e": _array}


def alert_count(fmt: str, body: object) -> int:
    """The number of alerts a decoded body of format `fmt` carries (what the parser would return)."""
    count = COUNTS.get(fmt)
    return count(body) if count else 1


PARSERS: dict[str, Parser] = {
    "standard": with_overrides(standard.parse),
    "prometheus": with_overrides(prometheus.parse),
    "grafana": with_overrides(grafana.parse),
    "zabbix": with_overrides(zabbix.parse),
    "n9e": with_overrides(n9e.parse),
}
