"""Grafana webhooks: unified alerting (Alertmanager-shaped plus extras) and legacy dashboard alerts."""

import pytest

from core.types import EventStatus, Image
from tests.webhooks.conftest import fixture
from webhooks.errors import InvalidParameter
from webhooks.grafana import parse


def legacy(**fields):
    return {"ruleId": 17, "orgId": 1, "ruleName": "HTTP 5xx rate", "state": "alerting", **fields}


def one(body, now):
    [event] = parse(body, {}, now)
    return event


@pytest.mark.parametrize(
    "state, expected",
    [
        ("alerting", EventStatus.WARNING),
        ("no_data", EventStatus.CRITICAL),
        ("ok", EventStatus.OK),
        ("pending", EventStatus.INFO),
        ("paused", EventStatus.OK),
    ],
)
def test_legacy_state_mapping(state, expected, now):
    assert one(legacy(state=state), now).event_status is expected


def test_legacy_states_share_one_alert_key(now):
    keys = {
        one(fixture("grafana", name), now).alert_key
        for name in ("legacy_alerting", "legacy_no_data", "legacy_ok")
    }
    assert keys == {"grafana:1:17"}


@pytest.mark.parametrize(
    "fields, key",
    [
        ({}, "grafana:1:17"),
        ({"orgId": None}, "grafana:0:17"),
        ({"ruleId": 0, "orgId": 0}, "grafana:0:0"),
    ],
)
def test_legacy_key(fields, key, now):
    assert one(legacy(**fields), now).alert_key == key


def test_legacy_without_rule_id_hashes_name_and_tags(now):
    a = one(legacy(ruleId=None, tags={"x": "1"}), now).alert_key
    assert a == one(legacy(ruleId="17", tags={"x": "1"}), now).alert_key
    assert a != one(legacy(ruleId=None, tags={"x": "2"}), now).alert_key


@pytest.mark.parametrize(
    "fields, title",
    [
        ({}, "HTTP 5xx rate"),
        ({"ruleName": "", "title": "[Alerting] Panel"}, "[Alerting] Panel"),
        ({"ruleName": None}, "Grafana alert"),
        ({"ruleName": "告警 🔥" * 200}, ("告警 🔥" * 200)[:512]),
    ],
)
def test_legacy_title(fields, title, now):
    assert one(legacy(**fields), now).title == title


def test_legacy_description_labels_and_image(now):
    event = one(
        legacy(
            message="high",
            evalMatches=[{"metric": "a", "value": 1}, {"value": None}],
            tags={"team": "web", "tag name": "x"},
            ruleUrl="https://g/d/1",
            imageUrl="https://g/img.png",
        ),
        now,
    )
    assert event.description == "high\na: 1\nvalue: "
    assert event.labels == {"team": "web", "tag_name": "x", "rule_url": "https://g/d/1"}
    assert event.images == [Image(src="https://g/img.png", alt="panel", href="https://g/d/1")]
    assert event.event_time == now


@pytest.mark.parametrize(
    "body, field",
    [
        ("x", "body"),
        ({"receiver": "x"}, "alerts"),
        ({"alerts": "x"}, "alerts"),
        ({"alerts": [1]}, "alerts[0]"),
        (legacy(state="firing"), "state"),
        (legacy(state=None), "state"),
        (legacy(evalMatches={"a": 1}), "evalMatches"),
        (legacy(evalMatches=[1]), "evalMatches[0]"),
        (legacy(evalMatches=[{"metric": {"a": 1}}]), "evalMatches[0].metric"),
        (legacy(tags=["a"]), "tags"),
        (legacy(ruleName=5), "ruleName"),
        (legacy(message=[]), "message"),
    ],
)
def test_bad_input_names_the_field(body, field, now):
    with pytest.raises(InvalidParameter) as err:
        parse(body, {}, now)
    assert err.value.field == field and field in str(err.value)


def test_unified_uses_prometheus_rules_plus_grafana_links(now):
    first, second = parse(fixture("grafana", "unified_firing"), {}, now)
    assert (first.event_status, second.event_status) == (EventStatus.CRITICAL, EventStatus.WARNING)
    assert first.labels["values"] == "A=96.12, B=96.12, C=1"
    assert {"dashboard_url", "panel_url", "silence_url", "runbook_url"} <= set(first.labels)
    assert not {"dashboard_url", "panel_url"} & set(second.labels)  # empty URLs are not labels
    assert first.images[0].href == first.labels["panel_url"]


def test_unified_top_level_state_is_ignored(now):
    body = fixture("grafana", "unified_resolved")
    body["state"] = "alerting"
    assert [e.event_status for e in parse(body, {}, now)] == [EventStatus.OK]


@pytest.mark.parametrize(
    "extra, values",
    [
        ({"values": {"B": 1, "A": 2.5}}, "A=2.5, B=1"),
        ({"values": {}, "valueString": "[ var='A' value=1 ]"}, "[ var='A' value=1 ]"),
        ({"values": None, "valueString": 5}, None),
    ],
)
def test_unified_values(extra, values, now):
    event = one({"alerts": [{"status": "firing", "labels": {"alertname": "A"}, **extra}]}, now)
    assert event.labels.get("values") == values


def test_unified_bad_values_name_the_field(now):
    with pytest.raises(InvalidParameter) as err:
        parse({"alerts": [{"values": {"A": [1]}}]}, {}, now)
    assert err.value.field == "alerts[0].values.A"


@pytest.mark.parametrize(
    "image, panel, expected",
    [
        ("https://g/i.png", "https://g/p", [Image("https://g/i.png", "panel", "https://g/p")]),
        ("https://g/i.png", "", [Image("https://g/i.png", "panel", "")]),
        ("file:///etc/passwd", "https://g/p", []),
        (None, "https://g/p", []),
    ],
)
def test_unified_image(image, panel, expected, now):
    assert one({"alerts": [{"imageURL": image, "panelURL": panel}]}, now).images == expected
