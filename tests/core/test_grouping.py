from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from core.grouping import GroupingRule, GroupSubject, group_key, window_open

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def subj(key="k1", title="disk full", severity="Critical", **labels):
    return GroupSubject(alert_key=key, title=title, description="", severity=severity, labels=labels)


BY_SERVICE = GroupingRule(method="p", equals=[["labels.service"]])
BY_SERVICE_STRICT = GroupingRule(method="p", equals=[["labels.service", "labels.cluster"]], all_equals_required=True)
TWO_SETS = GroupingRule(method="p", equals=[["labels.service"], ["title"]])


@pytest.mark.parametrize(
    "rule, a, b, same",
    [
        (GroupingRule(), subj("k1"), subj("k1"), True),
        (GroupingRule(), subj("k1"), subj("k2"), False),
        (BY_SERVICE, subj("k1", service="db"), subj("k2", service="db"), True),
        (BY_SERVICE, subj("k1", service="db"), subj("k2", service="web"), False),
        (BY_SERVICE, subj("k1"), subj("k1"), True),  # no service label: falls back to alert_key
        (BY_SERVICE, subj("k1"), subj("k2"), False),
        (BY_SERVICE_STRICT, subj("k1", service="db"), subj("k2", service="db"), False),  # cluster missing
        (BY_SERVICE_STRICT, subj("k1", service="db", cluster="a"), subj("k2", service="db", cluster="a"), True),
        (BY_SERVICE_STRICT, subj("k1", service="db", cluster="a"), subj("k2", service="db", cluster="b"), False),
        (TWO_SETS, subj("k1", title="x", service="db"), subj("k2", title="y", service="db"), True),
        (TWO_SETS, subj("k1", title="same"), subj("k2", title="same"), True),  # second set
        (TWO_SETS, subj("k1", title="same", service="db"), subj("k2", title="same"), False),  # different sets
        (GroupingRule(method="p", equals=[["severity"]]), subj("a", severity="Info"), subj("b", severity="Info"), True),
        (GroupingRule(method="p", equals=[["labels.svc"]]), subj("a", svc="数据库"), subj("b", svc="数据库"), True),
    ],
)
def test_group_key(rule, a, b, same):
    assert (group_key(rule, a)[0] == group_key(rule, b)[0]) is same


@pytest.mark.parametrize(
    "rule, started, last, now, open_",
    [
        (GroupingRule(time_window=0), T0, T0, T0 + timedelta(days=30), True),
        (GroupingRule(time_window=10), T0, T0, T0 + timedelta(minutes=9, seconds=59), True),
        (GroupingRule(time_window=10), T0, T0, T0 + timedelta(minutes=10), False),
        (GroupingRule(time_window=10), T0, T0 + timedelta(minutes=8), T0 + timedelta(minutes=12), False),
        (GroupingRule(time_window=10, window_type="sliding"), T0, T0 + timedelta(minutes=8),
         T0 + timedelta(minutes=12), True),
        (GroupingRule(time_window=10, window_type="sliding"), T0, T0 + timedelta(minutes=8),
         T0 + timedelta(minutes=18), False),
    ],
)
def test_window(rule, started, last, now, open_):
    assert window_open(rule, started=started, last_merge=last, now=now) is open_


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"method": "x"}, "method"),
        ({"equals": [[]]}, "equals.0\n  List should have at least 1 item"),
        ({"equals": [["host"]]}, "equals.0.0\n  String should match pattern"),
        ({"equals": [["labels."]]}, "equals.0.0\n  String should match pattern"),
        ({"time_window": -1}, "time_window"),
        ({"equals": [["title"]] * 6}, "equals"),
    ],
)
def test_rule_validation(raw, message):
    with pytest.raises(ValidationError) as exc:
        GroupingRule.model_validate(raw)
    assert message in str(exc.value)
