"""Change events (deploys, config changes): /event/push/change/standard (reference section 2).

Same validation style as standard alert events: change_status (exact case), change_key (at most 255,
rejected when longer) and title (truncated at 512) are required; description is truncated at 2048;
link must be an http(s) URL (it is rendered as a link); labels follow the strict standard rules;
event_time is unix seconds (milliseconds accepted), may be in the future (a `Ready` change), and
defaults to now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from webhooks.errors import InvalidParameter
from webhooks.standard import (
    ALERT_KEY_MAX,
    DESCRIPTION_MAX,
    TITLE_MAX,
    event_time_of,
    is_web_url,
    labels_of,
    text_of,
)

STATUSES = ("Planned", "Ready", "Processing", "Canceled", "Done")
CHANGE_KEY_MAX = ALERT_KEY_MAX
LINK_MAX = 2048


@dataclass
class ChangeEvent:
    """One reported step of a change (a ticket or deploy), merged with others by change_key."""

    change_status: str
    change_key: str
    title: str
    event_time: datetime | None = None
    description: str = ""
    link: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def parse(body: object, query: Mapping[str, str], now: datetime) -> list[ChangeEvent]:
    """One change event from a standard change push."""
    if not isinstance(body, Mapping):
        raise InvalidParameter("body", "body must be a JSON object with change_status, change_key and title")
    status = body.get("change_status")
    if not isinstance(status, str) or status not in STATUSES:
        raise InvalidParameter("change_status", f"change_status must be one of {', '.join(STATUSES)}")
    key = text_of(body.get("change_key"), "change_key", 10 * CHANGE_KEY_MAX, required=True)
    if len(key) > CHANGE_KEY_MAX:
        raise InvalidParameter("change_key", f"change_key is longer than {CHANGE_KEY_MAX} characters")
    link = text_of(body.get("link"), "link", LINK_MAX + 1)
    if link and (len(link) > LINK_MAX or not is_web_url(link)):
        raise InvalidParameter("link", f"link must be an http(s) URL of at most {LINK_MAX} characters")
    return [
        ChangeEvent(
            change_status=status,
            change_key=key,
            title=text_of(body.get("title"), "title", TITLE_MAX, required=True),
            event_time=event_time_of(body.get("event_time"), now),
            description=text_of(body.get("description"), "description", DESCRIPTION_MAX),
            link=link,
            labels=labels_of(body.get("labels")),
        )
    ]
