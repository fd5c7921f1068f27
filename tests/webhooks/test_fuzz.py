"""Fuzzing: any JSON value (or a recorded payload with any part replaced) either parses into valid
events or raises InvalidParameter naming a field; never another exception, never an out-of-limits event."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.types import AlertEvent
from tests.webhooks.conftest import FIXTURES, NOW
from webhooks import change
from webhooks.errors import InvalidParameter
from webhooks.registry import PARSERS
from webhooks.standard import LABEL_KEY

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMAT_OF_DIR = {
    "alertmanager": "prometheus",
    "grafana": "grafana",
    "zabbix": "zabbix",
    "n9e": "n9e",
    "standard": "standard",
}
SAMPLES = [
    (FORMAT_OF_DIR[d], json.loads(p.read_text()))
    for d in sorted(FORMAT_OF_DIR)
    for p in sorted((FIXTURES / d).glob("*.json"))
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text()
    | st.sampled_from(
        [
            "",
            "Ok",
            "Critical",
            "resolved",
            "0",
            "1",
            "1795369800",
            "https://x/a.png",
            "{HOST.IP}",
            "[TPL]{{.Title}}",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
queries = st.fixed_dictionaries(
    {},
    optional={
        "severity": st.sampled_from(["Critical", "warning", "Info", "Ok", "", "x"]) | st.text(max_size=5),
        "title_rule": st.text(max_size=40)
        | st.sampled_from(["$alertname::$instance", "[TPL]{{.Title}} ${x}"]),
    },
)


def mutate(data: st.DataObject, value: Any) -> Any:
    """Replace one randomly chosen part of `value` (possibly all of it) with arbitrary JSON."""
    children = (
        list(value.items())
        if isinstance(value, dict)
        else list(enumerate(value))
        if isinstance(value, list)
        else []
    )
    if not children or data.draw(st.integers(0, 3)) == 0:
        return data.draw(json_values)
    key, child = data.draw(st.sampled_from(children))
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = mutate(data, child)
    return copy


def check_events(events: Any) -> None:
    assert isinstance(events, list)
    for e in events:
        assert isinstance(e, AlertEvent)
        assert 0 < len(e.alert_key) <= 255
        assert len(e.title) <= 512 and len(e.title_rule) <= 512 and len(e.description) <= 2048
        assert len(e.labels) <= 50
        assert all(
            LABEL_KEY.fullmatch(k) and len(k) <= 128 and isinstance(v, str) and len(v) <= 2048
            for k, v in e.labels.items()
        )
        assert e.event_time is not None and e.event_time.tzinfo is not None
        assert all(len(i.src) <= 256 and len(i.alt) <= 128 and len(i.href) <= 256 for i in e.images)


def run(fmt: str, body: Any, query: dict[str, str]) -> None:
    try:
        events = PARSERS[fmt](body, query, NOW)
    except InvalidParameter as err:
        assert err.field and err.field in str(err)
        return
    check_events(events)


@FUZZ
@given(fmt=st.sampled_from(sorted(PARSERS)), body=json_values, query=queries)
def test_any_json_value(fmt, body, query):
    run(fmt, body, query)


@FUZZ
@given(sample=st.sampled_from(SAMPLES), data=st.data(), query=queries)
def test_recorded_payload_with_one_part_replaced(sample, data, query):
    fmt, body = sample
    run(fmt, mutate(data, body), query)


@FUZZ
@given(
    fmt=st.sampled_from(sorted(PARSERS)),
    labels=st.dictionaries(st.text(max_size=140), json_values, max_size=60),
    title=st.text(max_size=700),
)
def test_standardish_bodies(fmt, labels, title):
    body = {
        "event_status": "Warning",
        "title_rule": title,
        "labels": labels,
        "alerts": [{"labels": labels}],
        "event_name": title,
        "event_value": "1",
        "event_severity": "High",
        "trigger_id": "1",
        "tags_map": labels,
        "severity": 1,
        "ruleName": title,
        "state": "alerting",
        "tags": labels,
    }
    run(fmt, body, {})


@FUZZ
@given(
    body=json_values
    | st.fixed_dictionaries(
        {
            "change_status": st.sampled_from(["Done", "Ready", "x"]),
            "change_key": st.text(max_size=300),
            "title": st.text(max_size=600),
        },
        optional={"link": st.text(), "labels": json_values, "event_time": json_values},
    )
)
def test_change_events(body):
    try:
        events = change.parse(body, {}, NOW)
    except InvalidParameter as err:
        assert err.field and err.field in str(err)
        return
    assert all(
        0 < len(c.change_key) <= 255 and len(c.title) <= 512 and len(c.description) <= 2048 for c in events
    )
