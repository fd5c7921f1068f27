from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from core.conditions import subject
from core.noise import (
    ActiveAlert,
    Flapping,
    InhibitSpec,
    InhibitView,
    SilenceSpec,
    SilenceView,
    dropped_by,
    flap,
    inhibited_by,
    silenced_by,
    storm_crossed,
)

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # Monday
SVC = lambda v: [[{"field": "labels.service", "op": "equals", "values": [v]}]]  # noqa: E731


@pytest.mark.parametrize("rules, subj, expected", [
    ([], subject(labels={"service": "db"}), None),
    ([(1, SVC("db"))], subject(labels={"service": "db"}), 1),
    ([(1, SVC("web")), (2, SVC("db"))], subject(labels={"service": "db"}), 2),
    ([(1, SVC("web"))], subject(labels={"service": "db"}), None),
    ([(1, [[{"key": "title", "oper": "IN", "vals": ["/^test/"]}]])], subject(title="test alert"), 1),
])
def test_drop(rules, subj, expected):
    assert dropped_by(rules, subj) == expected


def one_off(start, end, filters=None, id_=1):
    return SilenceView(id_, filters or SVC("db"), start, end, [])


@pytest.mark.parametrize("rules, at, expected", [
    ([one_off(NOW - timedelta(hours=1), NOW + timedelta(hours=1))], NOW, 1),
    ([one_off(NOW - timedelta(hours=1), NOW)], NOW, None),  # end is exclusive
    ([one_off(NOW + timedelta(minutes=1), NOW + timedelta(hours=1))], NOW, None),
    ([SilenceView(2, SVC("db"), None, None, [{"start": "11:00", "end": "13:00", "days": [0]}])], NOW, 2),
    ([SilenceView(2, SVC("db"), None, None, [{"start": "11:00", "end": "13:00", "days": [1]}])], NOW, None),
    ([one_off(NOW - timedelta(hours=1), NOW + timedelta(hours=1), SVC("web"))], NOW, None),
])
def test_silence(rules, at, expected):
    assert silenced_by(rules, subject(labels={"service": "db"}), at) == expected


RULE = InhibitView(7, SVC("db"), [[{"field": "labels.service", "op": "equals", "values": ["api"]}]],
                   ["labels.cluster"], 10)


@pytest.mark.parametrize("active, target, expected", [
    ([ActiveAlert(subject(labels={"service": "db", "cluster": "a"}), NOW)],
     subject(labels={"service": "api", "cluster": "a"}), 7),
    ([ActiveAlert(subject(labels={"service": "db", "cluster": "b"}), NOW)],
     subject(labels={"service": "api", "cluster": "a"}), None),  # equals differ
    ([ActiveAlert(subject(labels={"service": "db", "cluster": "a"}), NOW - timedelta(minutes=11))],
     subject(labels={"service": "api", "cluster": "a"}), None),  # source too old
    ([ActiveAlert(subject(labels={"service": "db"}), NOW)],
     subject(labels={"service": "api"}), None),  # equals field missing on both: not equal
    ([ActiveAlert(subject(labels={"service": "db", "cluster": "a"}), NOW)],
     subject(labels={"service": "web", "cluster": "a"}), None),  # target does not match
    ([], subject(labels={"service": "api", "cluster": "a"}), None),
])
def test_inhibit(active, target, expected):
    assert inhibited_by([RULE], target, active, NOW) == expected


@pytest.mark.parametrize("history_minutes_ago, cfg, flapping", [
    ([30, 20, 10], Flapping(enabled=True, max_changes=4, in_mins=60), True),
    ([90, 20, 10], Flapping(enabled=True, max_changes=4, in_mins=60), False),  # one change is too old
    ([30, 20, 10], Flapping(enabled=False, max_changes=4, in_mins=60), False),
    ([1], Flapping(enabled=True, max_changes=2, in_mins=5), True),
])
def test_flap(history_minutes_ago, cfg, flapping):
    changes = [int((NOW - timedelta(minutes=m)).timestamp()) for m in history_minutes_ago]
    kept, result = flap(changes, NOW, cfg)
    assert result is flapping and kept[-1] == int(NOW.timestamp())


@pytest.mark.parametrize("before, after, thresholds, expected", [
    (9, 10, [10, 100], 10), (10, 11, [10, 100], None), (99, 100, [10, 100], 100), (1, 2, [], None),
    (5, 200, [10, 100], 100),
])
def test_storm(before, after, thresholds, expected):
    assert storm_crossed(before, after, thresholds) == expected


@pytest.mark.parametrize("spec, raw, message", [
    (SilenceSpec, {"name": "s", "filters": SVC("db")}, "needs a window"),
    (SilenceSpec, {"name": "s", "filters": SVC("db"), "starts_at": "2026-01-02T00:00:00Z",
                   "ends_at": "2026-01-01T00:00:00Z"}, "ends_at must be after"),
    (SilenceSpec, {"name": "s", "filters": SVC("db"), "starts_at": "2026-01-01T00:00:00",
                   "ends_at": "2026-01-02T00:00:00"}, "time zone"),
    (SilenceSpec, {"name": "s", "filters": [[{"field": "title", "op": "regex", "values": ["[unclosed"]}]],
                   "time_windows": [{"start": "00:00", "end": "01:00"}]}, "regex"),
    (InhibitSpec, {"name": "i", "source_filters": SVC("db"), "target_filters": [[{"field": "x", "op": "equals",
                                                                                  "values": ["1"]}]]}, "unknown field"),
    (InhibitSpec, {"name": "i", "source_filters": SVC("db"), "target_filters": SVC("x"), "equals": ["host"]},
     "equals"),
])
def test_bad_rules_are_rejected_at_configuration(spec, raw, message):
    with pytest.raises(ValidationError) as exc:
        spec.model_validate(raw)
    assert message in str(exc.value)
