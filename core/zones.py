"""Time-zone validation shared by members, schedules and escalation time filters."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import InvalidInput


def check_zone(name: str, field: str) -> ZoneInfo:
    """Return the zone or raise InvalidInput naming `field`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInput(f"{field}: unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from None
