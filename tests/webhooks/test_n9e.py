"""Nightingale events: arrays or one object, severities, recovery, tags, times."""

from datetime import UTC, datetime

import pytest

from core.types import EventStatus
from tests.webhooks.conftest import fixture
from webhooks.errors import InvalidParameter
from webhooks.n9e import parse


def event(**fields):
    body = {
        "hash": "h1",
        "rule_id": 42,
        "rule_name": "Memory high",
        "severity": 2,
        "is_recovered": False,
        "tags": ["ident=web-03", "service=checkout"],
        **fields,
    }
    return {k: v for k, v in body.items() if v is not None}


def one(body, now):
    [ev] = parse(body, {}, now)
    return ev


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"severity": 1}, EventStatus.CRITICAL),
        ({"severity": 2}, EventStatus.WARNING),
        ({"severity": 3}, EventStatus.INFO),
        ({"is_recovered": True}, EventStatus.OK),
        ({"is_recovered": True, "severity": None}, EventStatus.OK),
        ({"is_recovered": None}, EventStatus.WARNING),
    ],
)
def test_status(fields, expected, now):
    assert one(event(**fields), now).event_status is expected


def test_array_and_single_object(now):
    assert [e.event_status for e in parse(fixture("n9e", "firing_batch"), {}, now)] == [
        EventStatus.CRITICAL,
        EventStatus.INFO,
    ]
    assert one(fixture("n9e", "recovered_single"), now).event_status is EventStatus.OK
    assert parse([], {}, now) == []


def test_recovery_meets_its_alert(now):
    first = parse(fixture("n9e", "firing_batch"), {}, now)[0]
    assert one(fixture("n9e", "recovered_single"), now).alert_key == first.alert_key


@pytest.mark.parametrize(
    "fields, labels",
    [
        ({}, {"ident": "web-03", "service": "checkout", "rule_id": "42"}),
        ({"tags_map": {"a": "1"}}, {"a": "1", "rule_id": "42"}),  # tags_map wins over tags
        ({"tags": ["x=a=b", "novalue", "=v", "y="]}, {"x": "a=b", "rule_id": "42"}),
        (
            {"tags": None, "target_ident": "h1", "group_name": "Web", "cluster": "c1"},
            {"rule_id": "42", "busi_group": "Web", "ident": "h1", "cluster": "c1"},
        ),
        ({"tags": ["ident=web-03"], "target_ident": "other"}, {"ident": "web-03", "rule_id": "42"}),
        ({"tags": [], "runbook_url": "https://rb"}, {"rule_id": "42", "runbook_url": "https://rb"}),
        ({"tags": [], "runbook_url": "not a url"}, {"rule_id": "42"}),
        ({"tags": ["服务=数据库"]}, {"__": "数据库", "rule_id": "42"}),
        ({"tags": [], "annotations": {"summary": "s", "rule_id": "x"}}, {"rule_id": "42", "summary": "s"}),
    ],
)
def test_labels(fields, labels, now):
    assert one(event(**fields), now).labels == labels


def test_key_falls_back_to_rule_and_tags(now):
    a = one(event(hash=None), now).alert_key
    assert a == one(event(hash=""), now).alert_key
    assert a != one(event(hash=None, tags=["ident=web-04"]), now).alert_key


@pytest.mark.parametrize(
    "fields, title, description",
    [
        ({"rule_note": "note", "trigger_value": "93.7"}, "Memory high", "note\nTrigger value: 93.7"),
        ({"trigger_value": 93.7}, "Memory high", "Trigger value: 93.7"),
        ({"is_recovered": True, "rule_note": "note", "trigger_value": "93.7"}, "Memory high", "note"),
        ({"rule_name": None}, "Nightingale rule 42", ""),
        ({"rule_name": "内存 🔥" * 200}, ("内存 🔥" * 200)[:512], ""),
    ],
)
def test_title_and_description(fields, title, description, now):
    ev = one(event(**fields), now)
    assert (ev.title, ev.description) == (title, description)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"trigger_time": 1795369800}, datetime(2026, 11, 22, 17, 50, tzinfo=UTC)),
        (
            {"trigger_time": 1795369800, "last_eval_time": 1795370700},
            datetime(2026, 11, 22, 17, 50, tzinfo=UTC),
        ),
        (
            {"is_recovered": True, "trigger_time": 1795369800, "last_eval_time": 1795370700},
            datetime(2026, 11, 22, 18, 5, tzinfo=UTC),
        ),
        ({"trigger_time": 0}, None),
        ({}, None),
    ],
)
def test_event_time(fields, expected, now):
    assert one(event(**fields), now).event_time == (expected or now)


@pytest.mark.parametrize(
    "body, field",
    [
        ("x", "body"),
        (5, "body"),
        ([event(), "x"], "body[1]"),
        ([event(severity=4)], "body[0].severity"),
        ([event(severity="1")], "body[0].severity"),
        (event(severity=None), "severity"),
        (event(severity=True), "severity"),
        (event(is_recovered="false"), "is_recovered"),
        (event(tags="a=b"), "tags"),
        (event(tags=[1]), "tags[0]"),
        ([event(tags_map=["a"])], "body[0].tags_map"),
        (event(rule_name=5), "rule_name"),
        (event(trigger_time="now"), "trigger_time"),
        (event(annotations={"a": {"b": 1}}), "annotations.a"),
    ],
)
def test_bad_input_names_the_field(body, field, now):
    with pytest.raises(InvalidParameter) as err:
        parse(body, {}, now)
    assert err.value.field == field and field in str(err.value)
