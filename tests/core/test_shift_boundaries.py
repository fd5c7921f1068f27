"""core/shift_boundaries.py: when members go on and off call, which medium tells them, and the words."""

from datetime import UTC, datetime, timedelta

import pytest

from core.schedules import parse_schedule, preview
from core.shift_boundaries import (
    MARGIN,
    Boundary,
    boundaries,
    due_at,
    next_notice_medium,
    notice_medium,
    wording,
)


def utc(*wall: int) -> datetime:
    return datetime(*wall, tzinfo=UTC)


def sched(*layers: dict, overrides=()) -> object:
    return parse_schedule({"layers": list(layers), "overrides": list(overrides)})


def layer(members, start=utc(2026, 3, 2, 9), unit="days", **kw) -> dict:
    slots = [[{"member_id": m} for m in s] if isinstance(s, list) else
             {"team_id": -s} if s < 0 else {"member_id": s} for s in members]
    return {"start": start, "members": slots, "rotation": {"unit": unit, "value": 1}, **kw}


def found(s, lo, hi, teams=None) -> list[tuple]:
    shifts = preview(s, lo - MARGIN, hi + MARGIN)
    return [(b.member_id, b.kind, b.at, b.role_id) for b in boundaries(shifts, teams or {}, lo, hi)]


D2, D3, D4 = utc(2026, 3, 2, 9), utc(2026, 3, 3, 9), utc(2026, 3, 4, 9)


@pytest.mark.parametrize("schedule, lo, hi, teams, expected", [
    # a daily handoff: ann ends and bob starts at the same instant
    (sched(layer([1, 2])), utc(2026, 3, 3), utc(2026, 3, 3, 12), {},
     [(1, "end", D3, None), (2, "start", D3, None)]),
    # the window's edges are no boundaries: ann is on call across the whole window
    (sched(layer([1, 2])), utc(2026, 3, 2, 10), utc(2026, 3, 2, 20), {}, []),
    # the layer's own start and end are
    (sched(layer([1], end=utc(2026, 3, 2, 17))), utc(2026, 3, 2), utc(2026, 3, 3), {},
     [(1, "start", D2, None), (1, "end", utc(2026, 3, 2, 17), None)]),
    # a member in both turns (a slot of two, then alone) stays on call through the handoff
    (sched(layer([[1, 2], 1])), utc(2026, 3, 3), utc(2026, 3, 3, 12), {}, [(2, "end", D3, None)]),
    # an override naming the member on call is no break; one naming someone else is
    (sched(layer([1]), overrides=[{"participants": [{"member_id": 1}], "start": utc(2026, 3, 3),
                                   "end": utc(2026, 3, 4)}]), utc(2026, 3, 2, 12), utc(2026, 3, 5), {}, []),
    (sched(layer([1]), overrides=[{"participants": [{"member_id": 3}], "start": utc(2026, 3, 3),
                                   "end": utc(2026, 3, 4)}]), utc(2026, 3, 2, 12), utc(2026, 3, 5), {},
     [(1, "end", utc(2026, 3, 3), None), (3, "start", utc(2026, 3, 3), None),
      (1, "start", utc(2026, 3, 4), None), (3, "end", utc(2026, 3, 4), None)]),
    # teams are expanded to their members
    (sched(layer([-7, 2])), utc(2026, 3, 3), utc(2026, 3, 3, 12), {7: [4, 5]},
     [(2, "start", D3, None), (4, "end", D3, None), (5, "end", D3, None)]),
    # with roles, each side carries its role; primary and secondary at once are one stretch of on call
    (sched(layer([1, 2], role_id=1), layer([2, 1], role_id=2)), utc(2026, 3, 2, 12), utc(2026, 3, 5), {}, []),
    (sched(layer([1, 2], role_id=1), layer([3], role_id=2, start=utc(2026, 3, 3, 9))), utc(2026, 3, 3),
     utc(2026, 3, 3, 12), {}, [(1, "end", D3, 1), (2, "start", D3, 1), (3, "start", D3, 2)]),
    # restrictions: on duty 09-17 each day
    (sched(layer([1], restrictions=[{"start_time": "09:00", "end_time": "17:00"}])), utc(2026, 3, 3),
     utc(2026, 3, 4), {}, [(1, "start", D3, None), (1, "end", utc(2026, 3, 3, 17), None)]),
])
def test_boundaries(schedule, lo, hi, teams, expected):
    assert found(schedule, lo, hi, teams) == expected


def test_a_start_knows_when_its_shift_ends_if_the_preview_saw_it():
    s = sched(layer([1, 2]))
    shifts = preview(s, D3 - MARGIN, D3 + timedelta(days=8))
    [_, start] = boundaries(shifts, {}, D3, D3 + timedelta(microseconds=1), seen_until=D3 + timedelta(days=8))
    assert start == Boundary(2, "start", D3, None, D4)
    [_, cut] = boundaries(preview(s, D3 - MARGIN, D3 + MARGIN), {}, D3, D3 + MARGIN)
    assert cut.until is None


@pytest.mark.parametrize("prefs, fallback, expected", [
    ({}, [], "sms"),  # Info: im (no notices over IM), then the default chain im -> sms -> email
    ({"Info": ["email"]}, [], "email"),
    ({"Info": ["im", "app"]}, ["im", "email", "sms"], "email"),
    ({"Info": ["voice", "sms"]}, [], "sms"),
    ({"Info": ["im"]}, ["im"], "email"),
])
def test_notice_medium(prefs, fallback, expected):
    assert notice_medium(prefs, fallback) == expected


@pytest.mark.parametrize("tried, fallback, expected", [
    (["email"], [], "sms"),
    (["sms"], ["im", "sms", "email"], "email"),
    (["sms", "email"], [], None),
    (["email"], ["email", "im"], "sms"),  # a chain without sms still ends in every notice medium
])
def test_next_notice_medium(tried, fallback, expected):
    assert next_notice_medium(tried, fallback) == expected


def test_due_and_wording():
    assert due_at("start", D3, 15) == D3 - timedelta(minutes=15)
    assert due_at("end", D3, 15) == D3
    subject, text = wording("start", "db", "secondary", D3, D4, "Europe/Berlin")
    assert subject == "[On call] Your on-call shift in db as secondary starts at 10:00 on Tue 03 Mar 2026 " \
        "(Europe/Berlin)"
    assert "lasts until 10:00 on Wed 04 Mar 2026 (Europe/Berlin)" in text
    subject, text = wording("end", "db", None, D3, None, "Nowhere/Else")
    assert subject == "[On call] Your on-call shift in db ends at 09:00 on Tue 03 Mar 2026 (UTC)"
