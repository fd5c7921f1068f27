"""iCalendar feed of on-call shifts, pure: shifts in, RFC 5545 bytes out (no clock, no I/O)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from icalendar import Calendar, Event

from core.schedules import MemberRef, Participant, Shift

PRODID = "-//Vigil//On-call schedule//EN"


def default_label(p: Participant) -> str:
    """A participant's label when the caller has no names: `member 3`, `team 7`."""
    return f"member {p.member_id}" if isinstance(p, MemberRef) else f"team {p.team_id}"


def shift_uid(shift: Shift, namespace: str) -> str:
    """A UID that is the same every time the same shift is rendered in the same feed."""
    who = ",".join(default_label(p) for p in shift.participants)
    key = "|".join((namespace, shift.source.kind, str(shift.source.index), who,
                    shift.start.astimezone(UTC).isoformat(), shift.end.astimezone(UTC).isoformat()))
    return f"{hashlib.sha256(key.encode()).hexdigest()[:32]}@vigil"


def to_ical(shifts: Iterable[Shift], *, calendar_name: str, url: str | None = None,
            label: Callable[[Participant], str] = default_label, stamp: datetime | None = None) -> bytes:
    """One VEVENT per shift (times in UTC); `stamp` is every DTSTAMP, by default each shift's start."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("name", calendar_name)  # RFC 7986
    cal.add("x-wr-calname", calendar_name)  # what Google Calendar and Outlook read
    if url:
        cal.add("url", url)
    # A shift's UID depends on its feed, so the same shift in two schedules' feeds stays two events.
    namespace = url or calendar_name
    for shift in shifts:
        start, end = shift.start.astimezone(UTC), shift.end.astimezone(UTC)
        names = ", ".join(label(p) for p in shift.participants)
        origin = "override" if shift.source.kind == "override" else "layer"
        detail = shift.source.name or f"{origin} {shift.source.index + 1}"
        event = Event()
        event.add("uid", shift_uid(shift, namespace))
        # DTSTAMP is required; a fixed value keeps the feed byte-identical until a shift changes.
        event.add("dtstamp", (stamp or start).astimezone(UTC))
        event.add("dtstart", start)
        event.add("dtend", end)
        event.add("summary", f"On call: {names}")
        event.add("description", f"{calendar_name}: {names} ({origin}: {detail})")
        event.add("transp", "TRANSPARENT")  # being on call does not make you busy
        if url:
            event.add("url", url)
        cal.add_component(event)
    return cal.to_ical()
