"""Change events (deploys, config changes): /event/push/change/standard (reference section 2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from webhooks.errors import InvalidParameter
from webhooks.standard import DESCRIPTION_MAX, TITLE_MAX, clean_labels, event_time_of, text_of

STATUSES = ("Planned", "Ready", "Processing", "Canceled", "Done")


@dataclass
class ChangeEvent:
    change_status: str
    change_key: str
    title: str
    event_time: datetime | None = None
    description: str = ""
    link: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[ChangeEvent]:
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be a JSON object")
    status = body.get("change_status")
    if status not in STATUSES:
        raise InvalidParameter("change_status", f"change_status must be one of {', '.join(STATUSES)}")
    return [ChangeEvent(
        change_status=status, change_key=text_of(body.get("change_key"), "change_key", 255, required=True),
        title=text_of(body.get("title"), "title", TITLE_MAX, required=True),
        event_time=event_time_of(body.get("event_time"), now),
        description=text_of(body.get("description"), "description", DESCRIPTION_MAX),
        link=text_of(body.get("link"), "link", 1024), labels=clean_labels(body.get("labels")),
    )]
