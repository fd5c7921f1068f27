from datetime import UTC, datetime

import pytest
from icalendar import Calendar

from core.ical import default_label, to_ical
from core.schedules import MemberRef, TeamRef, parse_schedule, preview


def utc(*wall: int) -> datetime:
    return datetime(*wall, tzinfo=UTC)


# Berlin daily 09:00 handoff across the 2026-03-29 spring change, plus an override.
SCHEDULE = parse_schedule({
    "time_zone": "Europe/Berlin",
    "layers": [{"name": "primary", "start": "2026-03-27T09:00:00+01:00", "rotation": {"unit": "days", "value": 1},
                "members": [{"member_id": 1}, [{"member_id": 2}, {"team_id": 7}]]}],
    "overrides": [{"participants": [{"member_id": 3}], "start": "2026-03-30T12:00:00Z",
                   "end": "2026-03-30T14:00:00Z", "note": "swap"}],
})
SHIFTS = preview(SCHEDULE, utc(2026, 3, 27, 8), utc(2026, 3, 31, 7))
NAMES = {MemberRef(member_id=1): "Ada", MemberRef(member_id=2): "Bo", TeamRef(team_id=7): "SRE",
         MemberRef(member_id=3): "Cy"}


def events(data: bytes) -> list:
    return Calendar.from_ical(data).walk("VEVENT")


def test_round_trip_one_event_per_shift_with_exact_times():
    data = to_ical(SHIFTS, calendar_name="Primary on-call", url="https://vigil.example/schedules/4",
                   label=NAMES.__getitem__)
    cal = Calendar.from_ical(data)
    assert str(cal["x-wr-calname"]) == str(cal["name"]) == "Primary on-call"
    assert str(cal["url"]) == "https://vigil.example/schedules/4"
    got = [(e.decoded("dtstart"), e.decoded("dtend"), str(e["summary"])) for e in cal.walk("VEVENT")]
    assert got == [
        (utc(2026, 3, 27, 8), utc(2026, 3, 28, 8), "On call: Ada"),
        (utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), "On call: Bo, SRE"),  # 23 h: the DST day
        (utc(2026, 3, 29, 7), utc(2026, 3, 30, 7), "On call: Ada"),
        (utc(2026, 3, 30, 7), utc(2026, 3, 30, 12), "On call: Bo, SRE"),
        (utc(2026, 3, 30, 12), utc(2026, 3, 30, 14), "On call: Cy"),
        (utc(2026, 3, 30, 14), utc(2026, 3, 31, 7), "On call: Bo, SRE"),
    ]
    assert "(override: swap)" in str(cal.walk("VEVENT")[4]["description"])
    assert "(layer: primary)" in str(cal.walk("VEVENT")[0]["description"])


def test_uids_are_unique_and_stable():
    first = [str(e["uid"]) for e in events(to_ical(SHIFTS, calendar_name="A"))]
    again = [str(e["uid"]) for e in events(to_ical(list(SHIFTS), calendar_name="A"))]
    assert first == again and len(set(first)) == len(SHIFTS)
    # a longer preview renders the shifts both previews share with the same UIDs
    longer = preview(SCHEDULE, utc(2026, 3, 27, 8), utc(2026, 4, 3))
    assert set(first[:-1]) <= {str(e["uid"]) for e in events(to_ical(longer, calendar_name="A"))}
    # another feed (another schedule's name or URL) gets other UIDs for the same times
    assert not set(first) & {str(e["uid"]) for e in events(to_ical(SHIFTS, calendar_name="B"))}


def test_output_is_deterministic_bytes():
    assert to_ical(SHIFTS, calendar_name="A") == to_ical(SHIFTS, calendar_name="A")
    stamped = events(to_ical(SHIFTS, calendar_name="A", stamp=utc(2026, 3, 1)))
    assert {e.decoded("dtstamp") for e in stamped} == {utc(2026, 3, 1)}


@pytest.mark.parametrize("participant, label", [(MemberRef(member_id=5), "member 5"), (TeamRef(team_id=2), "team 2")])
def test_default_labels(participant, label):
    assert default_label(participant) == label


def test_no_shifts_is_an_empty_valid_calendar():
    cal = Calendar.from_ical(to_ical([], calendar_name="Nobody"))
    assert cal.walk("VEVENT") == [] and str(cal["version"]) == "2.0" and str(cal["prodid"])
