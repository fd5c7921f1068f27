"""Shift notices, pure: when each member's on-call time starts and ends, which medium tells them, and what it
says. The runner (core/shift_notices.py) reads the schedules and the clock; everything here is table-tested
(tests/core/test_shift_boundaries.py).

A member's on-call time in a schedule is the union of the shifts naming them (directly or through a team), over
every role: a handoff between two turns that both hold the member, or from a layer to an override that names
them too, is no boundary, so nobody is told "your shift ends" a second before "your shift starts".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from core.notify import DEFAULT_FALLBACK, DEFAULT_PREFERENCES
from core.schedules import MemberRef, Shift, TeamRef

Kind = Literal["start", "end"]
# Media a notice can use: plain text to one address. IM direct messages and app pushes carry incident cards,
# and a phone call to say a shift started would wake people for nothing.
NOTICE_MEDIA = ("email", "sms")
# Previews are widened by this much on both sides, so a shift cut by the window's edge is not read as one
# starting or ending there.
MARGIN = timedelta(minutes=1)
LEAD_MAX_MINUTES = 1440


@dataclass(frozen=True)
class Boundary:
    """Member `member_id` goes on call (`start`) or off call (`end`) at `at`; `role_id` is their role in the
    shift starting (or ending) there; `until` is when a starting shift ends, if the preview saw it."""

    member_id: int
    kind: Kind
    at: datetime
    role_id: int | None = None
    until: datetime | None = None


def _members(shift: Shift, teams: Mapping[int, Sequence[int]]) -> set[int]:
    found: set[int] = set()
    for p in shift.participants:
        if isinstance(p, MemberRef):
            found.add(p.member_id)
        elif isinstance(p, TeamRef):
            found.update(teams.get(p.team_id, ()))
    return found


def boundaries(shifts: Iterable[Shift], teams: Mapping[int, Sequence[int]], lo: datetime, hi: datetime, *,
               seen_until: datetime | None = None) -> list[Boundary]:
    """Every member's on-call starts and ends in [lo, hi), by time then member. `shifts` must cover a wider
    window (a preview of [lo - MARGIN, seen_until or hi + MARGIN]): an interval cut by the preview's edge has
    no boundary there, and a start's `until` is known when its end falls before `seen_until` (default hi)."""
    seen = seen_until or hi
    spans: dict[int, list[tuple[datetime, datetime, int | None]]] = {}
    for s in shifts:
        for m in _members(s, teams):
            spans.setdefault(m, []).append((s.start, s.end, s.role_id))
    found: list[Boundary] = []
    for member, items in spans.items():
        items.sort(key=lambda x: (x[0], x[1]))
        merged: list[list] = []  # [start, end, role at the start, role at the end]
        for start, end, role in items:
            if merged and start <= merged[-1][1]:  # overlapping or touching: still on call
                if end >= merged[-1][1]:
                    merged[-1][1], merged[-1][3] = end, role
            else:
                merged.append([start, end, role, role])
        for start, end, role_start, role_end in merged:
            # The preview's own edges lie outside [lo, hi), so a cut interval never counts as a boundary.
            if lo <= start < hi:
                found.append(Boundary(member, "start", start, role_start, end if end < seen else None))
            if lo <= end < hi:
                found.append(Boundary(member, "end", end, role_end))
    return sorted(found, key=lambda b: (b.at, b.member_id, b.kind))


def notice_medium(preferences: Mapping[str, Sequence[str]] | None, fallback: Sequence[str] | None) -> str:
    """The medium a member's notices use: the first their Info preference names that a notice can use, else
    the first of their fallback chain that can, else email."""
    info = (preferences or {}).get("Info") or DEFAULT_PREFERENCES["Info"]
    for medium in [*info, *(fallback or DEFAULT_FALLBACK)]:
        if medium in NOTICE_MEDIA:
            return medium
    return "email"


def next_notice_medium(tried: Sequence[str], fallback: Sequence[str] | None) -> str | None:
    """The member's next medium for a notice after `tried` failed (their fallback order), or None."""
    for medium in [*(fallback or DEFAULT_FALLBACK), *NOTICE_MEDIA]:
        if medium in NOTICE_MEDIA and medium not in tried:
            return medium
    return None


def due_at(kind: Kind, at: datetime, lead_minutes: int) -> datetime:
    """When a notice goes out: `lead_minutes` before a start ("starts soon"), an end when it happens."""
    return at - timedelta(minutes=lead_minutes) if kind == "start" else at


def _when(at: datetime, zone: str) -> str:
    try:
        tz = ZoneInfo(zone)
    except (ValueError, KeyError):
        tz = ZoneInfo("UTC")
    local = at.astimezone(tz)
    return f"{local:%H:%M} on {local:%a %d %b %Y} ({zone if tz.key == zone else 'UTC'})"


def wording(kind: Kind, schedule: str, role: str | None, at: datetime, until: datetime | None,
            zone: str) -> tuple[str, str]:
    """(subject, text) of a notice, times in the member's zone."""
    what = f"Your on-call shift in {schedule}" + (f" as {role}" if role else "")
    if kind == "start":
        subject = f"[On call] {what} starts at {_when(at, zone)}"
        text = f"{what} starts at {_when(at, zone)}" + (f" and lasts until {_when(until, zone)}" if until else "")
        text += ". You will be paged for incidents routed to it."
    else:
        subject = f"[On call] {what} ends at {_when(at, zone)}"
        text = f"{what} ends at {_when(at, zone)}. Thank you."
    return subject, text
