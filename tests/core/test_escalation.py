from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from core.escalation import Position, RuleDefinition, gate, next_level, plan_step, select_rule
from core.notify import media_for, next_fallback
from core.types import Progress

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def rule(**kw):
    levels = kw.pop("levels", [{"targets": {"member_ids": [1]}, "wait_minutes": 5},
                               {"targets": {"member_ids": [2]}, "wait_minutes": 10}])
    return RuleDefinition.model_validate({"levels": levels, **kw})


@pytest.mark.parametrize("kw, at, page, after, due_minutes", [
    ({}, Position(0, 0), Position(0, 0), Position(1, 0), 5),
    ({}, Position(1, 0), Position(1, 0), None, None),
    ({"repeat": 2}, Position(1, 0), Position(1, 0), Position(1, 1), 10),
    ({"repeat": 2}, Position(1, 1), Position(1, 1), Position(1, 2), 10),
    ({"repeat": 2}, Position(1, 2), Position(1, 2), None, None),
    ({"repeat_until_ack": True, "repeat_interval_minutes": 3}, Position(1, 57), Position(1, 57), Position(1, 58), 3),
    ({"levels": [{"targets": {"member_ids": [1]}, "wait_minutes": 0}, {"bot_ids": [1]}]}, Position(0, 0),
     Position(0, 0), Position(1, 0), 0),
])
def test_plan_step(kw, at, page, after, due_minutes):
    step = plan_step(rule(**kw), at, NOW)
    assert step.page == page and step.after == after
    assert step.due == (None if due_minutes is None else NOW + timedelta(minutes=due_minutes))


@pytest.mark.parametrize("at, expected", [(Position(0, 0), Position(1, 0)), (Position(1, 0), Position(1, 1)),
                                          (Position(1, 3), Position(1, 4))])
def test_manual_escalate_jumps(at, expected):
    assert next_level(rule(), at) == expected


@pytest.mark.parametrize("stop_on, progress, snoozed, expected", [
    ("ack", Progress.TRIGGERED, None, "go"),
    ("ack", Progress.PROCESSING, None, "stop"),
    ("close", Progress.PROCESSING, None, "go"),
    ("close", Progress.CLOSED, None, "stop"),
    ("ack", Progress.CLOSED, None, "stop"),
    ("close", Progress.PROCESSING, NOW + timedelta(minutes=1), "wait"),
    ("ack", Progress.PROCESSING, NOW - timedelta(minutes=1), "stop"),
    ("close", Progress.PROCESSING, NOW - timedelta(minutes=1), "go"),
])
def test_gate(stop_on, progress, snoozed, expected):
    assert gate(rule(stop_on=stop_on), progress, snoozed, NOW) == expected


CRIT = [[{"field": "severity", "op": "equals", "values": ["Critical"]}]]
OFFICE = [{"start": "09:00", "end": "18:00", "days": [0, 1, 2, 3, 4]}]
NIGHT = [{"start": "22:00", "end": "06:00", "days": [0]}]  # Monday night into Tuesday


@pytest.mark.parametrize("rules, subject, at, expected", [
    ([(1, 0, rule()), (2, 1, rule())], {"severity": "Info"}, NOW, 1),
    ([(1, 5, rule()), (2, 1, rule())], {"severity": "Info"}, NOW, 2),
    ([(1, 0, rule(filters=CRIT)), (2, 1, rule())], {"severity": "Info"}, NOW, 2),
    ([(1, 0, rule(filters=CRIT)), (2, 1, rule())], {"severity": "Critical"}, NOW, 1),
    ([(1, 0, rule(filters=CRIT))], {"severity": "Info"}, NOW, None),
    ([(1, 0, rule(time_windows=OFFICE)), (2, 1, rule())], {}, NOW, 1),
    ([(1, 0, rule(time_windows=OFFICE)), (2, 1, rule())], {}, NOW.replace(hour=19), 2),
    ([(1, 0, rule(time_windows=OFFICE)), (2, 1, rule())], {}, NOW + timedelta(days=5), 2),  # Saturday
    ([(1, 0, rule(time_windows=NIGHT))], {}, NOW.replace(hour=23), 1),
    ([(1, 0, rule(time_windows=NIGHT))], {}, NOW.replace(hour=3) + timedelta(days=1), 1),  # Tue 03:00
    ([(1, 0, rule(time_windows=NIGHT))], {}, NOW.replace(hour=3), None),  # Mon 03:00 belongs to Sunday
    ([(1, 0, rule(time_windows=[{**OFFICE[0], "time_zone": "Asia/Shanghai"}]))], {}, NOW, None),  # 18:00 there
])
def test_select_rule(rules, subject, at, expected):
    assert select_rule(rules, subject, at) == expected


@pytest.mark.parametrize("raw, message", [
    ({"levels": []}, "levels"),
    ({"levels": [{"targets": {}}]}, "at least one target"),
    ({"levels": [{"targets": {"member_ids": [1]}, "media": []}]}, "at least one medium"),
    ({"levels": [{"targets": {"member_ids": [1]}, "media": ["fax"]}]}, "media"),
    ({"levels": [{"targets": {"member_ids": [1]}}], "repeat_until_ack": True, "repeat_interval_minutes": 0},
     "repeat_interval_minutes"),
    ({"levels": [{"targets": {"member_ids": [1]}, "wait_minutes": -1}]}, "wait_minutes"),
    ({"levels": [{"targets": {"member_ids": [1]}}], "filters": [[{"field": "nope", "op": "equals", "values": ["x"]}]]},
     "filters"),
    ({"levels": [{"targets": {"member_ids": [1]}}], "time_windows": [{"start": "25:00", "end": "10:00"}]}, "start"),
    ({"levels": [{"targets": {"member_ids": [1]}}], "time_windows": [{"start": "09:00", "end": "10:00",
                                                                       "time_zone": "Mars/Base"}]}, "time zone"),
    ({"levels": [{"targets": {"member_ids": [1]}}], "stop_on": "never"}, "stop_on"),
])
def test_bad_rules_are_rejected_with_the_field(raw, message):
    with pytest.raises(ValidationError) as exc:
        RuleDefinition.model_validate(raw)
    assert message in str(exc.value)


@pytest.mark.parametrize("severity, prefs, explicit, expected", [
    ("Critical", {"Critical": ["im", "voice"]}, None, ["im", "voice"]),
    ("Warning", {"Critical": ["im", "voice"]}, None, ["im"]),
    ("Info", {"Info": ["email"]}, None, ["email"]),
    ("Info", {"Info": ["email"]}, ["sms"], ["sms"]),
    ("Critical", None, None, ["im", "sms"]),
])
def test_media_for(severity, prefs, explicit, expected):
    assert media_for(severity, prefs, explicit) == expected


@pytest.mark.parametrize("failed, tried, chain, expected", [
    ("im", [], None, "sms"),
    ("sms", ["im"], None, "email"),
    ("email", ["im", "sms"], None, None),
    ("voice", [], None, "im"),  # not in the chain: start from its beginning
    ("im", [], ["im", "email"], "email"),
    ("sms", ["im", "email"], ["im", "sms", "email", "voice"], "voice"),
])
def test_fallback_chain(failed, tried, chain, expected):
    assert next_fallback(failed, tried, chain) == expected
