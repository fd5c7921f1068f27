"""What a timeline entry says, in the words of DESIGN.md (pure; table-tested). The incident page and the
cards' timeline view (Slack modal, Feishu card) say it in these same words.

`names` maps member ids to names, so a sentence reads "Acknowledged by Alice" rather than a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from core.custom_fields import display

# Where an action came from, as the timeline's `source` column stores it (core.types.Platform values).
SOURCES = {"api": "Open API", "web": "the web", "slack": "Slack", "feishu": "Feishu", "dingtalk": "DingTalk",
           "wecom": "WeCom", "teams": "Teams", "telegram": "Telegram", "zoom": "Zoom", "voice": "a voice call"}

_PLAIN = {
    "i_new": "Incident triggered",
    "i_ack": "Acknowledged",
    "i_unack": "Acknowledgement withdrawn",
    "i_wake": "Snooze ended",
    "i_rslv": "Closed",
    "i_reopen": "Reopened",
    "i_comm": "Comment",
    "i_storm": "Alert storm",
    "i_custom": "Custom action",
    "i_notify": "Notified",
    "i_m_flapping": "Flapping: notifications held",
    "delivery_sent": "Page sent",
    "delivery_retry": "Page failed, retrying",
    "delivery_failed": "Page failed",
    "delivery_canceled": "Page canceled",
    "page_undeliverable": "No medium could deliver the page",
    "fallback": "Fell back to the next medium",
    "escalation_none": "No escalation",
    "escalation_empty": "Nobody to page at this level",
    "schedule_disabled": "A schedule of this level is disabled",
    "escalation_stopped": "Escalation stopped",
    "template_fallback": "Template failed; the default was used",
    "card_update_failed": "A card could not be updated",
    "webhook_sent": "Webhook sent",
}


# Timeline entries that record a member's action without being a domain event: they say where it came from too.
_ACTIONS_NOT_EVENTS = frozenset({"silence_similar"})


class Entry(Protocol):
    """The fields of a timeline entry (core.models TimelineEntry) the words read."""

    actor_id: int | None
    detail: dict[str, Any]


def people(entries: Iterable[Entry]) -> set[int]:
    """The member ids the entries' sentences name (their actors, reassigned and paged people)."""
    ids: set[int] = set()
    for e in entries:
        if e.actor_id is not None:
            ids.add(e.actor_id)
        ids.update(i for i in e.detail.get("person_ids", []) if isinstance(i, int))
        if isinstance(e.detail.get("person_id"), int):
            ids.add(e.detail["person_id"])
    return ids


def _who(actor_id: int | None, names: Mapping[int, str]) -> str:
    return names.get(actor_id, f"member {actor_id}") if actor_id is not None else ""


def headline(kind: str, actor_id: int | None, source: str, detail: Mapping[str, Any],
             names: Mapping[int, str]) -> str:
    """One line: what happened, by whom, from where."""
    if kind == "i_snooze":
        text = f"Snoozed for {detail.get('minutes', '?')} min"
    elif kind == "i_assign":
        if detail.get("type") == "escalate":
            text = "Escalated"
        else:
            people = ", ".join(_who(i, names) for i in detail.get("person_ids", []))
            text = f"Reassigned to {people}" if people else "Reassigned"
    elif kind == "i_merge":
        text = (f"Merged into incident {detail['merged_into']}" if "merged_into" in detail
                else f"Merged incidents {', '.join(str(i) for i in detail.get('merged', []))} into this one")
    elif kind == "silence_similar":
        text = f"Similar alerts silenced for {detail.get('minutes', '?')} min"
    elif kind == "i_r_field":
        name = detail.get("display_name") or detail.get("field") or "?"
        text = (f"Custom field {name} cleared" if detail.get("to") is None
                else f"Custom field {name} set to {display(detail['to'])}")
    elif kind.startswith("delivery_") and detail.get("medium"):
        person = _who(detail.get("person_id"), names) if detail.get("person_id") else \
            (f"bot {detail['bot_id']}" if detail.get("bot_id") else
             f"chat {detail['chat_id']}" if detail.get("chat_id") else "")
        text = f"{_PLAIN.get(kind, kind)}: {detail['medium']}" + (f" to {person}" if person else "")
    else:
        text = _PLAIN.get(kind, kind.replace("_", " ").capitalize())
    who = _who(actor_id, names)
    if who:
        text += f" by {who}"
    if source in SOURCES and (kind.startswith("i_") or kind in _ACTIONS_NOT_EVENTS):
        text += f" via {SOURCES[source]}"
    return text


def note(kind: str, detail: Mapping[str, Any]) -> str:
    """The free text an entry carries (a comment, a reason, an error), or ''."""
    for key in ("comment", "reason", "root_cause", "resolution", "error"):
        value = detail.get(key)
        if isinstance(value, str) and value:
            return value
    return ""
