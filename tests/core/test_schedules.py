import copy
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.schedules import (
    MemberRef,
    OnCall,
    Schedule,
    ScheduleError,
    Source,
    TeamRef,
    oncall_at,
    parse_schedule,
    preview,
)

BER, NYC = "Europe/Berlin", "America/New_York"
H = timedelta(hours=1)


def local(tz: str, *wall: int, fold: int = 0) -> datetime:
    return datetime(*wall, tzinfo=ZoneInfo(tz), fold=fold)


def utc(*wall: int) -> datetime:
    return datetime(*wall, tzinfo=UTC)


def layer(start: datetime, members=(1, 2, 3), unit="days", value=1, **kw) -> dict:
    """A layer whose members are member ids (ints) or slots (lists of ids); extra keys pass through."""
    rotation = {"unit": unit, "value": value}
    for key in ("handoff_time", "handoff_weekday"):
        if key in kw:
            rotation[key] = kw.pop(key)
    slots = [[{"member_id": i} for i in m] if isinstance(m, list) else {"member_id": m} for m in members]
    return {"start": start, "members": slots, "rotation": rotation, **kw}


def sched(*layers: dict, tz: str = "UTC", overrides=()) -> Schedule:
    return parse_schedule({"name": "test", "time_zone": tz, "layers": list(layers), "overrides": list(overrides)})


def override(member: int, start: datetime, end: datetime, note: str = "") -> dict:
    return {"participants": [{"member_id": member}], "start": start, "end": end, "note": note}


def who(s: Schedule, at: datetime) -> list[int]:
    return oncall_at(s, at).member_ids


def spans(shifts) -> list[tuple[datetime, datetime, list[int]]]:
    return [(x.start, x.end, [p.member_id for p in x.participants]) for x in shifts]


# --- rotations and handoffs -------------------------------------------------------------------------------

MON = local(BER, 2026, 3, 2, 9)  # a Monday, before any DST change


@pytest.mark.parametrize("tz, spec, at, expected", [
    # weekly, handoff Monday 09:00 (the start's weekday and time by default)
    (BER, layer(MON, unit="weeks"), MON, 1),
    (BER, layer(MON, unit="weeks"), local(BER, 2026, 3, 9, 8, 59), 1),
    (BER, layer(MON, unit="weeks"), local(BER, 2026, 3, 9, 9), 2),
    (BER, layer(MON, unit="weeks"), local(BER, 2026, 3, 16, 9), 3),
    (BER, layer(MON, unit="weeks"), local(BER, 2026, 3, 23, 9), 1),
    # weekly starting on a Wednesday with a Monday 09:00 handoff: slot 0 has a short first turn
    (BER, layer(local(BER, 2026, 3, 4, 12), unit="weeks", handoff_weekday=0, handoff_time="09:00"),
     local(BER, 2026, 3, 9, 8, 59), 1),
    (BER, layer(local(BER, 2026, 3, 4, 12), unit="weeks", handoff_weekday=0, handoff_time="09:00"),
     local(BER, 2026, 3, 9, 9), 2),
    # every two weeks
    (BER, layer(MON, unit="weeks", value=2), local(BER, 2026, 3, 16, 8, 59), 1),
    (BER, layer(MON, unit="weeks", value=2), local(BER, 2026, 3, 16, 9), 2),
    # daily, layer starts at midnight, handoff 09:00: slot 0 only until the first 09:00
    ("UTC", layer(utc(2026, 3, 2), handoff_time="09:00"), utc(2026, 3, 2, 8, 59), 1),
    ("UTC", layer(utc(2026, 3, 2), handoff_time="09:00"), utc(2026, 3, 2, 9), 2),
    ("UTC", layer(utc(2026, 3, 2), handoff_time="09:00"), utc(2026, 3, 3, 9), 3),
    ("UTC", layer(utc(2026, 3, 2), handoff_time="09:00"), utc(2026, 3, 4, 8, 59), 3),
    # daily without a handoff time: turns run from the start's time of day
    ("UTC", layer(utc(2026, 3, 2, 14, 30)), utc(2026, 3, 3, 14, 29), 1),
    ("UTC", layer(utc(2026, 3, 2, 14, 30)), utc(2026, 3, 3, 14, 30), 2),
    # every 3 days
    ("UTC", layer(utc(2026, 3, 2, 9), value=3), utc(2026, 3, 5, 8, 59), 1),
    ("UTC", layer(utc(2026, 3, 2, 9), value=3), utc(2026, 3, 5, 9), 2),
    # 8-hour turns aligned to a 06:00 handoff: 06, 14, 22 (layer starts at 10:00, inside the 06-14 turn)
    ("UTC", layer(utc(2026, 3, 2, 10), unit="hours", value=8, handoff_time="06:00"), utc(2026, 3, 2, 13, 59), 1),
    ("UTC", layer(utc(2026, 3, 2, 10), unit="hours", value=8, handoff_time="06:00"), utc(2026, 3, 2, 14), 2),
    ("UTC", layer(utc(2026, 3, 2, 10), unit="hours", value=8, handoff_time="06:00"), utc(2026, 3, 2, 22), 3),
    ("UTC", layer(utc(2026, 3, 2, 10), unit="hours", value=8, handoff_time="06:00"), utc(2026, 3, 3, 6), 1),
    # hourly from the start
    ("UTC", layer(utc(2026, 3, 2, 10, 15), unit="hours", value=1, members=(1, 2)), utc(2026, 3, 2, 11, 14), 1),
    ("UTC", layer(utc(2026, 3, 2, 10, 15), unit="hours", value=1, members=(1, 2)), utc(2026, 3, 2, 11, 15), 2),
    ("UTC", layer(utc(2026, 3, 2, 10, 15), unit="hours", value=1, members=(1, 2)), utc(2026, 3, 2, 12, 15), 1),
])
def test_rotation_turns(tz, spec, at, expected):
    assert who(sched(spec, tz=tz), at) == [expected]


def test_a_slot_holds_several_participants_and_teams_stay_opaque():
    s = parse_schedule({"layers": [{"start": utc(2026, 3, 2), "rotation": {"unit": "days", "value": 1},
                                    "members": [[{"member_id": 1}, {"team_id": 7}], {"member_id": 2}]}]})
    first = oncall_at(s, utc(2026, 3, 2, 12))
    assert first.participants == (MemberRef(member_id=1), TeamRef(team_id=7))
    assert (first.member_ids, first.team_ids) == ([1], [7])
    assert oncall_at(s, utc(2026, 3, 3, 12)).participants == (MemberRef(member_id=2),)


@pytest.mark.parametrize("at, expected", [
    (utc(2026, 3, 1, 23, 59), []),  # before the layer starts: nobody
    (utc(2026, 3, 2), [1]),
    (utc(2026, 3, 4, 23, 59), [3]),
    (utc(2026, 3, 5), []),  # the end is exclusive
    (utc(2026, 4, 1), []),
])
def test_layer_start_and_end(at, expected):
    assert who(sched(layer(utc(2026, 3, 2), end=utc(2026, 3, 5))), at) == expected


def test_nobody_on_call_is_an_empty_oncall():
    assert oncall_at(sched(layer(utc(2030, 1, 1))), utc(2026, 1, 1)) == OnCall()
    assert oncall_at(sched(), utc(2026, 1, 1)) == OnCall()


# --- layers stacking --------------------------------------------------------------------------------------

BASE = layer(utc(2026, 3, 2), members=(1, 2), name="base")  # 24 h turns
BUSINESS = layer(utc(2026, 3, 2), members=(9,), name="business",
                 restrictions=[{"start_weekday": 0, "start_time": "09:00", "end_weekday": 4, "end_time": "18:00"}])
LATER = layer(utc(2026, 3, 4), members=(7,), name="from wednesday", end=utc(2026, 3, 5))


@pytest.mark.parametrize("layers, at, expected, source", [
    ((BASE, BUSINESS), utc(2026, 3, 2, 8), [1], Source(kind="layer", index=0, name="base")),
    ((BASE, BUSINESS), utc(2026, 3, 2, 9), [9], Source(kind="layer", index=1, name="business")),
    ((BASE, BUSINESS), utc(2026, 3, 6, 18), [1], Source(kind="layer", index=0, name="base")),  # Friday
    ((BASE, BUSINESS), utc(2026, 3, 7, 12), [2], Source(kind="layer", index=0, name="base")),  # Saturday
    # the later layer is the higher one; in the other order the always-on base layer hides it
    ((BUSINESS, BASE), utc(2026, 3, 2, 12), [1], Source(kind="layer", index=1, name="base")),
    ((BASE, BUSINESS, LATER), utc(2026, 3, 4, 12), [7], Source(kind="layer", index=2, name="from wednesday")),
    ((BASE, BUSINESS, LATER), utc(2026, 3, 3, 12), [9], Source(kind="layer", index=1, name="business")),
    ((BASE, BUSINESS, LATER), utc(2026, 3, 5, 12), [9], Source(kind="layer", index=1, name="business")),
])
def test_higher_layers_win_where_they_have_someone(layers, at, expected, source):
    got = oncall_at(sched(*layers), at)
    assert (got.member_ids, got.source) == (expected, source)


# --- restrictions -----------------------------------------------------------------------------------------

DAILY = [{"start_time": "09:00", "end_time": "18:00"}]
NIGHT = [{"start_time": "22:00", "end_time": "06:00"}]
WORKWEEK = [{"start_weekday": 0, "start_time": "09:00", "end_weekday": 4, "end_time": "18:00"}]
WEEKEND = [{"start_weekday": 4, "start_time": "18:00", "end_weekday": 0, "end_time": "09:00"}]
TWO = [{"start_time": "08:00", "end_time": "10:00"}, {"start_time": "16:00", "end_time": "18:00"}]


@pytest.mark.parametrize("windows, at, on", [
    (DAILY, local(BER, 2026, 3, 3, 8, 59), False),
    (DAILY, local(BER, 2026, 3, 3, 9), True),
    (DAILY, local(BER, 2026, 3, 3, 17, 59), True),
    (DAILY, local(BER, 2026, 3, 3, 18), False),
    (DAILY, local(BER, 2026, 3, 7, 12), True),  # daily means every day
    (NIGHT, local(BER, 2026, 3, 3, 21, 59), False),
    (NIGHT, local(BER, 2026, 3, 3, 22), True),
    (NIGHT, local(BER, 2026, 3, 4, 0, 0), True),
    (NIGHT, local(BER, 2026, 3, 4, 5, 59), True),
    (NIGHT, local(BER, 2026, 3, 4, 6), False),
    (WORKWEEK, local(BER, 2026, 3, 2, 8, 59), False),  # Monday
    (WORKWEEK, local(BER, 2026, 3, 2, 9), True),
    (WORKWEEK, local(BER, 2026, 3, 4, 3), True),  # Wednesday night: one continuous window
    (WORKWEEK, local(BER, 2026, 3, 6, 17, 59), True),  # Friday
    (WORKWEEK, local(BER, 2026, 3, 6, 18), False),
    (WORKWEEK, local(BER, 2026, 3, 7, 12), False),  # Saturday
    (WEEKEND, local(BER, 2026, 3, 6, 17, 59), False),
    (WEEKEND, local(BER, 2026, 3, 6, 18), True),
    (WEEKEND, local(BER, 2026, 3, 8, 12), True),  # Sunday: crosses the week's end
    (WEEKEND, local(BER, 2026, 3, 9, 8, 59), True),
    (WEEKEND, local(BER, 2026, 3, 9, 9), False),
    (WEEKEND, local(BER, 2026, 3, 11, 12), False),
    (TWO, local(BER, 2026, 3, 3, 9), True),
    (TWO, local(BER, 2026, 3, 3, 12), False),
    (TWO, local(BER, 2026, 3, 3, 17), True),
])
def test_restrictions(windows, at, on):
    s = sched(layer(local(BER, 2026, 3, 1), members=(5,), restrictions=windows), tz=BER)
    assert who(s, at) == ([5] if on else [])


def test_restrictions_cut_coverage_but_never_shift_turns():
    s = sched(layer(utc(2026, 3, 2), restrictions=DAILY), tz="UTC")
    day = [(utc(2026, 3, d, 9), utc(2026, 3, d, 18), [m]) for d, m in ((2, 1), (3, 2), (4, 3), (5, 1))]
    assert spans(preview(s, utc(2026, 3, 2), utc(2026, 3, 6))) == day


def test_daily_window_on_a_dst_day_spans_real_hours():
    # Berlin 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 01:00-04:00 local is only two real hours.
    s = sched(layer(local(BER, 2026, 3, 1), members=(5,), restrictions=[{"start_time": "01:00", "end_time": "04:00"}]),
              tz=BER)
    [shift] = preview(s, local(BER, 2026, 3, 29), local(BER, 2026, 3, 30))
    assert (shift.start, shift.end) == (utc(2026, 3, 29, 0), utc(2026, 3, 29, 2))


def test_window_starting_in_a_gap_starts_when_the_gap_rule_says():
    # New York 2026-03-08: 02:30 does not exist; it is read as 03:30 EDT (07:30Z).
    s = sched(layer(local(NYC, 2026, 3, 1), members=(5,), restrictions=[{"start_time": "02:30", "end_time": "05:00"}]),
              tz=NYC)
    [shift] = preview(s, local(NYC, 2026, 3, 8), local(NYC, 2026, 3, 9))
    assert (shift.start, shift.end) == (utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 9))


# --- overrides --------------------------------------------------------------------------------------------

OVR = override(42, utc(2026, 3, 3, 12), utc(2026, 3, 3, 15), note="dentist swap")


@pytest.mark.parametrize("layers, at, expected, kind", [
    ((BASE, BUSINESS), utc(2026, 3, 3, 11, 59), [9], "layer"),
    ((BASE, BUSINESS), utc(2026, 3, 3, 12), [42], "override"),
    ((BASE, BUSINESS), utc(2026, 3, 3, 14, 59), [42], "override"),
    ((BASE, BUSINESS), utc(2026, 3, 3, 15), [9], "layer"),
    ((), utc(2026, 3, 3, 13), [42], "override"),  # an override needs no layer
    ((layer(utc(2026, 3, 4)),), utc(2026, 3, 3, 13), [42], "override"),  # nor an active one
])
def test_overrides_beat_every_layer(layers, at, expected, kind):
    got = oncall_at(sched(*layers, overrides=[OVR]), at)
    assert got.member_ids == expected and got.source is not None and got.source.kind == kind


def test_override_source_names_it():
    got = oncall_at(sched(BASE, overrides=[OVR, override(43, utc(2026, 3, 4), utc(2026, 3, 5))]), utc(2026, 3, 4, 1))
    assert got.source == Source(kind="override", index=1, name="")
    assert oncall_at(sched(overrides=[OVR]), utc(2026, 3, 3, 12)).source == Source(kind="override", index=0,
                                                                                  name="dentist swap")


def test_touching_overrides_are_fine_and_hand_over_exactly():
    s = sched(overrides=[override(1, utc(2026, 3, 3), utc(2026, 3, 4)), override(2, utc(2026, 3, 4), utc(2026, 3, 5))])
    assert spans(preview(s, utc(2026, 3, 1), utc(2026, 3, 10))) == [
        (utc(2026, 3, 3), utc(2026, 3, 4), [1]), (utc(2026, 3, 4), utc(2026, 3, 5), [2])]


def test_overlapping_overrides_are_a_configuration_error():
    with pytest.raises(ScheduleError) as exc:
        sched(overrides=[override(1, utc(2026, 3, 3), utc(2026, 3, 5)), override(2, utc(2026, 3, 10), utc(2026, 3, 11)),
                         override(3, utc(2026, 3, 4, 23), utc(2026, 3, 6))])
    assert str(exc.value) == ("overrides[2]: overlaps overrides[0] (2026-03-03T00:00Z to 2026-03-05T00:00Z); "
                              "overrides may not overlap")


# --- DST --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tz, spec, lo, hi, expected", [
    # Berlin spring forward 2026-03-29: the daily 09:00 handoff stays 09:00, that day's turn is 23 h
    (BER, layer(local(BER, 2026, 3, 27, 9)), local(BER, 2026, 3, 27, 9), local(BER, 2026, 3, 30, 9),
     [(utc(2026, 3, 27, 8), utc(2026, 3, 28, 8), [1]), (utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), [2]),
      (utc(2026, 3, 29, 7), utc(2026, 3, 30, 7), [3])]),
    # Berlin fall back 2026-10-25: that day's turn is 25 h
    (BER, layer(local(BER, 2026, 10, 24, 9)), local(BER, 2026, 10, 24, 9), local(BER, 2026, 10, 26, 9),
     [(utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), [1]), (utc(2026, 10, 25, 8), utc(2026, 10, 26, 8), [2])]),
    # Berlin weekly, Monday 09:00 handoff across the spring change: a 167 h week
    (BER, layer(local(BER, 2026, 3, 23, 9), unit="weeks"), local(BER, 2026, 3, 23, 9), local(BER, 2026, 4, 6, 9),
     [(utc(2026, 3, 23, 8), utc(2026, 3, 30, 7), [1]), (utc(2026, 3, 30, 7), utc(2026, 4, 6, 7), [2])]),
    # hourly rotations count real hours: 24-hour turns drift from 09:00 to 10:00 local across the change
    (BER, layer(local(BER, 2026, 3, 28, 9), unit="hours", value=24), local(BER, 2026, 3, 28, 9),
     local(BER, 2026, 3, 30, 10),
     [(utc(2026, 3, 28, 8), utc(2026, 3, 29, 8), [1]), (utc(2026, 3, 29, 8), utc(2026, 3, 30, 8), [2])]),
    # New York spring forward 2026-03-08: the 02:30 handoff does not exist and happens at 03:30 EDT,
    # 24 real hours after the previous one; the next day it is 02:30 EDT again
    (NYC, layer(local(NYC, 2026, 3, 7, 2, 30)), local(NYC, 2026, 3, 7, 2, 30), local(NYC, 2026, 3, 10, 2, 30),
     [(utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), [1]), (utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30), [2]),
      (utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30), [3])]),
    # New York fall back 2026-11-01: the 01:30 handoff happens twice; the first occurrence (EDT) counts
    (NYC, layer(local(NYC, 2026, 10, 31, 1, 30)), local(NYC, 2026, 10, 31, 1, 30), local(NYC, 2026, 11, 2, 1, 30),
     [(utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), [1]), (utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), [2])]),
])
def test_preview_across_dst(tz, spec, lo, hi, expected):
    assert spans(preview(sched(spec, tz=tz), lo, hi)) == expected


@pytest.mark.parametrize("at, expected", [
    (local(NYC, 2026, 11, 1, 1, 29), [1]),
    (local(NYC, 2026, 11, 1, 1, 30, fold=0), [2]),  # 01:30 EDT: the handoff
    (local(NYC, 2026, 11, 1, 1, 30, fold=1), [2]),  # 01:30 EST, an hour later: still the new turn
    (local(NYC, 2026, 11, 1, 1, 29, fold=1), [2]),  # 01:29 EST is after 01:30 EDT
    (local(NYC, 2026, 11, 2, 1, 29), [2]),
    (local(NYC, 2026, 11, 2, 1, 30), [3]),
])
def test_oncall_inside_the_fall_back_fold(at, expected):
    assert who(sched(layer(local(NYC, 2026, 10, 31, 1, 30)), tz=NYC), at) == expected


# --- leap day ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, at, expected", [
    (layer(utc(2028, 2, 27, 9)), utc(2028, 2, 29, 8, 59), 2),
    (layer(utc(2028, 2, 27, 9)), utc(2028, 2, 29, 9), 3),  # Feb 29 is a day of its own
    (layer(utc(2028, 2, 27, 9)), utc(2028, 3, 1, 9), 1),
    (layer(utc(2028, 2, 29, 10)), utc(2028, 3, 1, 9, 59), 1),  # starting on the leap day
    (layer(utc(2028, 2, 29, 10)), utc(2028, 3, 1, 10), 2),
    # weekly, Tuesday handoff: Feb 22 -> Feb 29 -> Mar 7 (2028-02-29 is a Tuesday)
    (layer(utc(2028, 2, 22, 9), unit="weeks"), utc(2028, 2, 29, 8, 59), 1),
    (layer(utc(2028, 2, 22, 9), unit="weeks"), utc(2028, 2, 29, 9), 2),
    (layer(utc(2028, 2, 22, 9), unit="weeks"), utc(2028, 3, 7, 9), 3),
    (layer(utc(2028, 2, 25, 9), unit="weeks"), utc(2028, 3, 3, 8, 59), 1),  # a week spanning Feb 29 is 7 days
    (layer(utc(2028, 2, 25, 9), unit="weeks"), utc(2028, 3, 3, 9), 2),
])
def test_leap_day(spec, at, expected):
    assert who(sched(spec), at) == [expected]


# --- preview ----------------------------------------------------------------------------------------------

def test_preview_merges_identical_neighbours_and_leaves_gaps_out():
    single = layer(utc(2026, 3, 2), members=(5,), restrictions=DAILY)
    assert spans(preview(sched(single), utc(2026, 3, 2, 12), utc(2026, 3, 4, 12))) == [
        (utc(2026, 3, 2, 12), utc(2026, 3, 2, 18), [5]), (utc(2026, 3, 3, 9), utc(2026, 3, 3, 18), [5]),
        (utc(2026, 3, 4, 9), utc(2026, 3, 4, 12), [5])]
    # one member, no restrictions: the daily handoffs to the same person merge into one shift
    assert spans(preview(sched(layer(utc(2026, 3, 2), members=(5,))), utc(2026, 3, 1), utc(2026, 3, 9))) == [
        (utc(2026, 3, 2), utc(2026, 3, 9), [5])]


def test_preview_keeps_sources_apart_and_starts_at_a_future_layer():
    s = sched(layer(utc(2026, 3, 5), members=(1,)), overrides=[override(1, utc(2026, 3, 6), utc(2026, 3, 7))])
    shifts = preview(s, utc(2026, 3, 1), utc(2026, 3, 8))
    assert [(x.start, x.end, x.source.kind) for x in shifts] == [
        (utc(2026, 3, 5), utc(2026, 3, 6), "layer"), (utc(2026, 3, 6), utc(2026, 3, 7), "override"),
        (utc(2026, 3, 7), utc(2026, 3, 8), "layer")]


def test_preview_of_stacked_layers_and_an_override():
    s = sched(BASE, BUSINESS, overrides=[OVR])
    assert spans(preview(s, utc(2026, 3, 2), utc(2026, 3, 4))) == [
        (utc(2026, 3, 2), utc(2026, 3, 2, 9), [1]),
        (utc(2026, 3, 2, 9), utc(2026, 3, 3, 12), [9]),
        (utc(2026, 3, 3, 12), utc(2026, 3, 3, 15), [42]),
        (utc(2026, 3, 3, 15), utc(2026, 3, 4), [9])]


@pytest.mark.parametrize("call, message", [
    (lambda s: oncall_at(s, datetime(2026, 3, 2)), "at: must be timezone-aware"),
    (lambda s: preview(s, datetime(2026, 3, 2), utc(2026, 3, 3)), "start: must be timezone-aware"),
    (lambda s: preview(s, utc(2026, 3, 3), utc(2026, 3, 3)), "end: must be after start"),
])
def test_query_errors(call, message):
    with pytest.raises(ScheduleError, match=f"^{message}$"):
        call(sched(BASE))


# --- validation -------------------------------------------------------------------------------------------

def good() -> dict:
    return {"time_zone": BER, "layers": [layer(utc(2026, 3, 2), restrictions=copy.deepcopy(DAILY))]}


def edit(path: str, value) -> dict:
    data = good()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize("data, message", [
    (edit("layers.0.rotation.value", 0), "layers[0].rotation.value: must be >= 1"),
    (edit("layers.0.rotation.unit", "months"), "layers[0].rotation.unit: must be 'hours', 'days' or 'weeks'"),
    (edit("layers.0.members", []), "layers[0].members: must not be empty"),
    (edit("layers.0.members", [[]]), "layers[0].members[0]: an empty slot; give at least one participant"),
    (edit("layers.0.members", [[{"member_id": 1}, {"member_id": 1}]]),
     "layers[0].members[0]: lists the same participant twice"),
    (edit("layers.0.members", [{"member_id": 1, "team_id": 2}]),
     'layers[0].members[0][0]: must be {"member_id": <id>} or {"team_id": <id>}'),
    (edit("layers.0.members", [{"user": 1}]), 'layers[0].members[0][0]: must be {"member_id": <id>} or {"team_id": <id>}'),
    (edit("layers.0.members", [{"member_id": 0}]), "layers[0].members[0][0].member_id: must be >= 1"),
    (edit("time_zone", "Mars/Olympus"),
     "time_zone: unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Berlin)"),
    (edit("layers.0.start", "2026-03-02T09:00:00"),
     "layers[0].start: must include a UTC offset (e.g. Z or +01:00); naive datetimes are ambiguous"),
    (edit("layers.0.end", "2026-03-01T00:00:00Z"), "layers[0].end: must be after start"),
    (edit("layers.0.end", "2026-03-02T00:00:00Z"), "layers[0].end: must be after start"),
    (edit("layers.0.restrictions.0.end_time", "09:00"),
     "layers[0].restrictions[0].end_time: must differ from the start (an empty window; omit restrictions for always)"),
    (edit("layers.0.restrictions", [{"start_weekday": 2, "start_time": "09:00", "end_weekday": 2, "end_time": "09:00"}]),
     "layers[0].restrictions[0].end_time: must differ from the start (an empty window; omit restrictions for always)"),
    (edit("layers.0.restrictions", [{"start_weekday": 2, "start_time": "09:00", "end_time": "10:00"}]),
     "layers[0].restrictions[0].end_weekday: give both start_weekday and end_weekday (weekly window) "
     "or neither (daily window)"),
    (edit("layers.0.restrictions", [{"start_weekday": 7, "start_time": "09:00", "end_weekday": 1, "end_time": "10:00"}]),
     "layers[0].restrictions[0].start_weekday: must be <= 6"),
    (edit("layers.0.rotation.handoff_weekday", 1), "layers[0].rotation.handoff_weekday: only weekly rotations have a "
     "handoff weekday"),
    (edit("layers.0.rotation.handoff_time", "09:00+02:00"),
     "layers[0].rotation.handoff_time: is a wall time in the schedule's time zone; drop the UTC offset"),
    (edit("layers.0.rotation", {"unit": "days"}), "layers[0].rotation.value: is required"),
    (edit("layers.0.rotatoin", {"unit": "days"}), "layers[0].rotatoin: unknown field"),
    ({"overrides": [{"participants": [], "start": utc(2026, 3, 2), "end": utc(2026, 3, 3)}]},
     "overrides[0].participants: must not be empty"),
    ({"overrides": [{"participants": [{"team_id": 3}], "start": utc(2026, 3, 2), "end": utc(2026, 3, 2)}]},
     "overrides[0].end: must be after start"),
])
def test_validation_names_the_field(data, message):
    with pytest.raises(ScheduleError) as exc:
        parse_schedule(data)
    assert str(exc.value) == message
    assert isinstance(exc.value, InvalidInput)  # the API maps it to 400 InvalidParameter


def test_several_problems_are_reported_together():
    data = edit("layers.0.rotation.value", 0)
    data["time_zone"] = "Nowhere"
    with pytest.raises(ScheduleError, match=r"^time_zone: .*; layers\[0\]\.rotation\.value: must be >= 1$"):
        parse_schedule(data)


def test_json_round_trip_and_strict_api_validation():
    s = sched(BASE, BUSINESS, overrides=[OVR], tz=BER)
    text = s.model_dump_json()
    # the Open API validates bodies as strict JSON; the published form must pass it unchanged
    assert Schedule.model_validate_json(text, strict=True) == s
    assert parse_schedule(text) == s
    dumped = s.model_dump(mode="json")
    assert dumped["layers"][1]["members"] == [[{"member_id": 9}]]
    assert dumped["layers"][1]["restrictions"][0]["start_time"] == "09:00:00"
    assert s.layers[0].rotation.handoff_time is None and s.layers[1].restrictions[0].end_time == time(18)


# --- oncall_at and preview agree --------------------------------------------------------------------------

ZONES = ["UTC", BER, NYC, "Australia/Lord_Howe", "Asia/Kolkata"]  # Lord Howe shifts by 30 minutes
MINUTES = st.integers(0, 24 * 4 - 1).map(lambda q: time(q // 4, q % 4 * 15))
YEAR = st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC))


@st.composite
def restrictions(draw):
    if draw(st.booleans()):
        start, end = draw(MINUTES), draw(MINUTES)
        days = draw(st.tuples(st.integers(0, 6), st.integers(0, 6)))
        weekly = draw(st.booleans())
        if start == end and (not weekly or days[0] == days[1]):
            end = time((start.hour + 1) % 24, start.minute)
        r = {"start_time": start.isoformat(), "end_time": end.isoformat()}
        return {**r, "start_weekday": days[0], "end_weekday": days[1]} if weekly else r
    return None


@st.composite
def schedules(draw):
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        unit = draw(st.sampled_from(["hours", "days", "weeks"]))
        rotation = {"unit": unit, "value": draw(st.integers(1, 3) if unit != "hours" else st.integers(1, 30))}
        if draw(st.booleans()):
            rotation["handoff_time"] = draw(MINUTES).isoformat()
        if unit == "weeks" and draw(st.booleans()):
            rotation["handoff_weekday"] = draw(st.integers(0, 6))
        start = draw(YEAR)
        spec = {"start": start, "rotation": rotation,
                "members": [{"member_id": m} for m in draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))],
                "restrictions": [r for r in draw(st.lists(restrictions(), max_size=2)) if r]}
        if draw(st.booleans()):
            spec["end"] = start + timedelta(hours=draw(st.integers(1, 24 * 40)))
        layers.append(spec)
    cuts = sorted(draw(st.lists(YEAR, max_size=4, unique=True)))
    overrides = [override(9, a, b) for a, b in zip(cuts[::2], cuts[1::2])]
    return parse_schedule({"time_zone": draw(st.sampled_from(ZONES)), "layers": layers, "overrides": overrides})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=schedules(), lo=YEAR, hours=st.integers(1, 24 * 15), probes=st.lists(st.floats(0, 1), max_size=20))
def test_oncall_at_agrees_with_preview(s, lo, hours, probes):
    hi = lo + timedelta(hours=hours)
    shifts = preview(s, lo, hi)
    for a, b in zip(shifts, shifts[1:]):
        assert a.end <= b.start, "shifts are ordered and disjoint"
        assert (a.end, a.participants, a.source) != (b.start, b.participants, b.source), "neighbours merged"
    for x in shifts:
        assert lo <= x.start < x.end <= hi and x.participants
        for t in (x.start, x.end - timedelta(microseconds=1)):
            assert oncall_at(s, t) == OnCall(participants=x.participants, source=x.source)
    for p in probes:
        t = lo + (hi - lo) * p
        if t >= hi:
            continue
        containing = [x for x in shifts if x.start <= t < x.end]
        expected = OnCall(participants=containing[0].participants, source=containing[0].source) if containing \
            else OnCall()
        assert oncall_at(s, t) == expected
