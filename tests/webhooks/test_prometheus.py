"""Alertmanager webhook v4: per-alert status, severity labels, keys, titles, times, shape errors."""

from datetime import UTC, datetime

import pytest

from core.types import EventStatus
from tests.webhooks.conftest import fixture
from webhooks.errors import InvalidParameter
from webhooks.prometheus import parse


def notification(*alerts):
    return {"version": "4", "status": "firing", "alerts": list(alerts)}


def alert(**fields):
    return {"status": "firing", "labels": {"alertname": "HighLatency"}, "annotations": {}, **fields}


def one(a, now):
    [event] = parse(notification(a), {}, now)
    return event


@pytest.mark.parametrize(
    "labels, status, expected",
    [
        ({}, "firing", EventStatus.WARNING),
        ({"severity": "critical"}, "firing", EventStatus.CRITICAL),
        ({"severity": "CRITICAL"}, "firing", EventStatus.CRITICAL),
        ({"severity": "warn"}, "firing", EventStatus.WARNING),
        ({"severity": "info"}, "firing", EventStatus.INFO),
        ({"severity": "acknowledged"}, "firing", EventStatus.INFO),
        ({"severity": "unknown"}, "firing", EventStatus.INFO),
        ({"severity": "unk"}, "firing", EventStatus.INFO),
        ({"severity": "ok"}, "firing", EventStatus.OK),
        ({"severity": "page"}, "firing", EventStatus.WARNING),
        ({"priority": "critical"}, "firing", EventStatus.CRITICAL),
        ({"level": "info"}, "firing", EventStatus.INFO),
        ({"severity": "info", "priority": "critical"}, "firing", EventStatus.INFO),  # first present wins
        ({"severity": "bogus", "priority": "critical"}, "firing", EventStatus.WARNING),
        ({"priority": "warning", "level": "critical"}, "firing", EventStatus.WARNING),
        ({"severity": "critical"}, "resolved", EventStatus.OK),
        ({"severity": "critical"}, None, EventStatus.CRITICAL),
        ({"severity": "critical"}, "pending", EventStatus.CRITICAL),
    ],
)
def test_status_from_alert_status_and_labels(labels, status, expected, now):
    assert one(alert(labels=labels, status=status), now).event_status is expected


def test_severity_annotation_does_not_set_severity(now):
    event = one(alert(annotations={"severity": "critical"}), now)
    assert event.event_status is EventStatus.WARNING
    assert event.labels["severity"] == "critical"  # kept for the card, as an annotation-derived label


def test_per_alert_status_decides_recovery_not_the_group(now):
    events = parse(fixture("alertmanager", "partly_resolved"), {}, now)
    assert [e.event_status for e in events] == [EventStatus.OK, EventStatus.WARNING]
    assert [e.alert_key for e in events] == ["0c23b563fcfce9e2", "0e67cd3fc5e94aa4"]


@pytest.mark.parametrize(
    "annotations, labels, title, description",
    [
        ({"summary": "S", "title": "T", "description": "D", "message": "M"}, {"alertname": "A"}, "S", "D"),
        ({"title": "T", "message": "M"}, {"alertname": "A"}, "T", "M"),
        ({}, {"alertname": "A"}, "A", ""),
        ({}, {}, "Prometheus alert", ""),
        ({"summary": ""}, {"alertname": "A"}, "A", ""),
        (
            {"summary": "IPv6 ::1 down $5"},
            {},
            "IPv6 ::1 down $5",
            "",
        ),  # taken literally, no title-rule syntax
        ({"summary": "s" * 600, "description": "d" * 5000}, {}, "s" * 512, "d" * 2048),
        ({"summary": "延迟过高 🔥"}, {}, "延迟过高 🔥", ""),
    ],
)
def test_title_and_description(annotations, labels, title, description, now):
    event = one(alert(annotations=annotations, labels=labels), now)
    assert (event.title, event.description, event.title_rule) == (title, description, title)


def test_labels_annotations_and_generator_url(now):
    event = one(
        alert(
            labels={"alertname": "A", "runbook_url": "from-label"},
            annotations={
                "summary": "S",
                "runbook_url": "https://rb",
                "dashboard": "https://d",
                "__internal__": "x",
                "timestamp": "x",
            },
            generatorURL="http://prom:9090/graph?g0.expr=up",
        ),
        now,
    )
    assert event.labels == {
        "alertname": "A",
        "runbook_url": "from-label",
        "generator_url": "http://prom:9090/graph?g0.expr=up",
        "dashboard": "https://d",
    }


@pytest.mark.parametrize("generator", ["", "javascript:alert(1)", 5, None])
def test_unusable_generator_url_is_dropped(generator, now):
    assert "generator_url" not in one(alert(generatorURL=generator), now).labels


def test_fingerprint_is_the_key_else_label_hash(now):
    assert one(alert(fingerprint="abc"), now).alert_key == "abc"
    assert len(one(alert(fingerprint="f" * 300), now).alert_key) <= 255
    a = one(alert(labels={"alertname": "A", "x": "1"}), now).alert_key
    b = one(alert(labels={"x": "1", "alertname": "A"}, annotations={"summary": "other"}), now).alert_key
    c = one(alert(labels={"alertname": "A", "x": "2"}), now).alert_key
    assert a == b != c


@pytest.mark.parametrize(
    "fields, expected",
    [
        (
            {"startsAt": "2026-11-22T17:55:24.931047006Z"},
            datetime(2026, 11, 22, 17, 55, 24, 931047, tzinfo=UTC),
        ),
        ({"startsAt": "2026-11-22T18:55:24+01:00"}, datetime(2026, 11, 22, 17, 55, 24, tzinfo=UTC)),
        ({"startsAt": "2026-11-22T17:55:24"}, datetime(2026, 11, 22, 17, 55, 24, tzinfo=UTC)),
        ({"startsAt": "0001-01-01T00:00:00Z"}, None),
        ({"startsAt": "yesterday"}, None),
        ({"startsAt": 1795369800}, None),
        ({}, None),
        (
            {"status": "resolved", "startsAt": "2026-11-22T17:00:00Z", "endsAt": "2026-11-22T17:30:00Z"},
            datetime(2026, 11, 22, 17, 30, tzinfo=UTC),
        ),
        ({"status": "resolved", "startsAt": "2026-11-22T17:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}, None),
        (
            {"startsAt": "2026-11-22T17:00:00Z", "annotations": {"timestamp": "1795369800.25"}},
            datetime(2026, 11, 22, 17, 50, 0, 250000, tzinfo=UTC),
        ),
        (
            {"startsAt": "2026-11-22T17:00:00Z", "annotations": {"timestamp": "1795369800000"}},
            datetime(2026, 11, 22, 17, 50, tzinfo=UTC),
        ),
        (
            {"startsAt": "2026-11-22T17:00:00Z", "annotations": {"timestamp": "soon"}},
            datetime(2026, 11, 22, 17, 0, tzinfo=UTC),
        ),
        (
            {"startsAt": "2026-11-22T17:00:00Z", "annotations": {"timestamp": "1e300"}},
            datetime(2026, 11, 22, 17, 0, tzinfo=UTC),
        ),
    ],
)
def test_event_time(fields, expected, now):
    assert one(alert(**fields), now).event_time == (expected or now)


@pytest.mark.parametrize(
    "body, field",
    [
        ([], "body"),
        ({}, "alerts"),
        ({"alerts": {"a": 1}}, "alerts"),
        ({"alerts": [alert(), "x"]}, "alerts[1]"),
        ({"alerts": [alert(labels=["a"])]}, "alerts[0].labels"),
        ({"alerts": [alert(labels={"a": {"b": 1}})]}, "alerts[0].labels.a"),
        ({"alerts": [alert(annotations="text")]}, "alerts[0].annotations"),
        ({"alerts": [alert(status=1)]}, "alerts[0].status"),
    ],
)
def test_bad_shape_names_the_field(body, field, now):
    with pytest.raises(InvalidParameter) as err:
        parse(body, {}, now)
    assert err.value.field == field and field in str(err.value)


def test_empty_alerts_is_no_events(now):
    assert parse({"alerts": []}, {}, now) == []


def test_many_labels_are_capped_not_refused(now):
    labels = {f"l{i}": "v" * 3000 for i in range(60)} | {"bad-key.x": "v", "0day": "v"}
    event = one(alert(labels=labels), now)
    assert len(event.labels) == 50
    assert all(len(v) == 2048 for v in event.labels.values())


def test_odd_label_keys_are_sanitised(now):
    event = one(alert(labels={"team.name": "core", "0day": "yes", "服务": "db"}), now)
    assert event.labels == {"team_name": "core", "_0day": "yes", "__": "db"}
