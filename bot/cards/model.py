"""The ONE card view model (DESIGN rule 2) and the looks every renderer shares.

Status and severity emoji, colours and labels are defined here once (STYLE.md section 8); a
renderer only maps a `Tone` to its platform's colour token. The caller decides which actions are
allowed now (`core.incidents.allowed_actions`); renderers never apply lifecycle rules.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypeVar

from bot.cards.format import cut as _cut
from bot.chat.actions import NOT_LIFECYCLE, SNOOZE_MAX_MINUTES, Action
from core.images import web_url
from core.types import Progress, Severity

MAX_TITLE = 512  # Flashduty's title limit; renderers cut further where a platform demands
MAX_DESCRIPTION = 2000  # chars kept on the card; the incident page has the rest
MAX_LABELS = 8  # key labels shown; the count of the rest is kept in `hidden_labels`
MAX_LABEL_TEXT = 128
MAX_LAST_ACTION = 200
DEFAULT_SNOOZE_CHOICES = (30, 60, 240, 1440)
MAX_CUSTOM_ACTIONS = 20  # custom actions a card carries; renderers fold or cut further, the page has them all
MAX_CUSTOM_NAME = 100  # CustomAction.name's column length
MAX_TIMELINE = 20  # timeline entries a card's timeline view shows (newest first); the page has the rest
MAX_TIMELINE_TEXT = 300
MAX_CARD_FIELDS = 10  # custom fields a card shows, in definition order; the incident page has them all
MAX_FIELD_TEXT = 200
MAX_FIELD_OPTIONS = 100  # options a select on a card offers (Slack's limit)
FIELD_KINDS = ("single_select", "multi_select", "checkbox")
MAX_IMAGES = 3  # alert images a card shows (core.images.MAX_SHOWN); the page has them all
MAX_IMAGE_ALT = 128

E = TypeVar("E", bound=enum.Enum)


class Tone(enum.StrEnum):
    """The colour meaning of a card; each renderer maps it to its platform's palette."""

    DANGER = "danger"
    WARNING = "warning"
    INFO = "info"
    SUCCESS = "success"


class Emphasis(enum.StrEnum):
    """How strongly a button is drawn."""

    PRIMARY = "primary"
    DEFAULT = "default"
    DANGER = "danger"


class Look(NamedTuple):
    """Emoji, label and colour for one severity or progress value."""

    emoji: str
    label: str
    colour: str  # hex, used as-is by platforms that take one (Slack colour bar)
    tone: Tone


SEVERITY_LOOK: dict[Severity, Look] = {
    Severity.CRITICAL: Look("🔴", "Critical", "#D92D20", Tone.DANGER),
    Severity.WARNING: Look("🟠", "Warning", "#F79009", Tone.WARNING),
    Severity.INFO: Look("🔵", "Info", "#2E90FA", Tone.INFO),
}

PROGRESS_LOOK: dict[Progress, Look] = {
    Progress.TRIGGERED: Look("🚨", "Triggered", "#D92D20", Tone.DANGER),
    Progress.PROCESSING: Look("👀", "Processing", "#F79009", Tone.WARNING),
    Progress.CLOSED: Look("✅", "Closed", "#12B76A", Tone.SUCCESS),
}

ACTION_LABELS: dict[Action, str] = {
    Action.ACK: "Acknowledge",
    Action.UNACK: "Unacknowledge",
    Action.CLOSE: "Close",
    Action.REOPEN: "Reopen",
    Action.ESCALATE: "Escalate",
    Action.SNOOZE: "Snooze",
    Action.WAKE: "Wake",
    Action.REASSIGN: "Reassign",
    Action.COMMENT: "Comment",
    Action.SILENCE_SIMILAR: "Silence similar",
    Action.REFRESH: "Refresh",
    Action.CUSTOM: "Custom action",
    Action.TIMELINE: "Timeline",
    Action.SET_FIELD: "Set field",
}

ACTION_EMPHASIS: dict[Action, Emphasis] = {
    Action.ACK: Emphasis.PRIMARY,
    Action.REOPEN: Emphasis.PRIMARY,
    Action.SILENCE_SIMILAR: Emphasis.DANGER,
}

# Actions that need more than a click (a choice or text); renderers draw them as selects/inputs.
NEEDS_INPUT = frozenset({Action.SNOOZE, Action.REASSIGN, Action.COMMENT})


class CustomButton(NamedTuple):
    """One of the channel's custom actions, drawn as a button that runs it."""

    id: int
    name: str


class CardImage(NamedTuple):
    """An alert image: an https URL (core.images.shown), its alt text, and where a click on it goes (or "")."""

    src: str
    alt: str = ""
    href: str = ""


class FieldValue(NamedTuple):
    """A custom field as the card shows it: its display name and its value in words."""

    label: str
    text: str


class FieldInput(NamedTuple):
    """A custom field a responder may set from the card: `kind` is single_select, multi_select or checkbox
    (one option, its label); `chosen` are the positions in `options` chosen now."""

    field_id: int
    label: str
    kind: str
    options: tuple[str, ...]
    chosen: tuple[int, ...] = ()


class TimelineLine(NamedTuple):
    """One timeline entry as the card's timeline view says it (words: bot/cards/timeline_words.py)."""

    at: datetime
    text: str
    note: str = ""


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _names(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):  # type: ignore[attr-defined]
        raise ValueError(f"{name} must be a sequence of names (strings), got {value!r}")
    return tuple(v for v in value if v.strip())  # type: ignore[attr-defined]


@dataclass(frozen=True, kw_only=True)
class IncidentCard:
    """What every platform's card shows about one incident, and the actions allowed now."""

    incident_id: int
    num: str  # short display id (Flashduty's `num`)
    title: str
    severity: Severity
    progress: Progress
    url: str  # the incident page
    updated_at: datetime  # passed in by the caller; renderers never read the clock
    channel_name: str = ""
    responders: tuple[str, ...] = ()
    acknowledged_by: tuple[str, ...] = ()
    # Who did what last, in the timeline's words ("Acknowledged by Ann via Slack"): a card in a group chat is
    # read by people who did not click it. Empty draws nothing.
    last_action: str = ""
    # Key labels in display order; pass tuple(labels.items()) or a mapping. Capped at MAX_LABELS.
    labels: tuple[tuple[str, str], ...] = ()
    alert_count: int = 0
    description: str = ""
    snoozed_until: datetime | None = None
    actions: tuple[Action, ...] = ()
    snooze_choices: tuple[int, ...] = DEFAULT_SNOOZE_CHOICES
    # The channel's custom actions (capped at MAX_CUSTOM_ACTIONS), the Timeline button, and the latest timeline
    # entries newest first, set only when a clicker asked to read them. Each draws nothing when left empty.
    custom_actions: tuple[CustomButton, ...] = ()
    timeline_button: bool = False
    timeline: tuple[TimelineLine, ...] = ()
    # Custom field values (set, else defaults) to show, and the select fields a responder may set from the card
    # where the platform has inputs (Slack, Feishu). Each draws nothing when empty.
    fields: tuple[FieldValue, ...] = ()
    field_inputs: tuple[FieldInput, ...] = ()
    # Images of the incident's newest alerts (https only, capped at MAX_IMAGES). Empty draws nothing.
    images: tuple[CardImage, ...] = ()
    hidden_labels: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        if not isinstance(self.incident_id, int) or isinstance(self.incident_id, bool) or self.incident_id <= 0:
            raise ValueError(f"incident_id must be a positive integer, got {self.incident_id!r}")
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError("title must be a non-empty string")
        set_(self, "title", _cut(" ".join(self.title.split()), MAX_TITLE))
        set_(self, "severity", _enum("severity", Severity, self.severity))
        set_(self, "progress", _enum("progress", Progress, self.progress))
        if not isinstance(self.url, str) or not self.url.startswith(("https://", "http://")):
            raise ValueError(f"url must be an http(s) URL of the incident page, got {self.url!r}")
        _aware("updated_at", self.updated_at)
        _aware("snoozed_until", self.snoozed_until)
        if not isinstance(self.alert_count, int) or self.alert_count < 0:
            raise ValueError(f"alert_count must be a non-negative integer, got {self.alert_count!r}")
        set_(self, "responders", _names("responders", self.responders))
        set_(self, "acknowledged_by", _names("acknowledged_by", self.acknowledged_by))
        if not isinstance(self.last_action, str):
            raise ValueError(f"last_action must be a string, got {self.last_action!r}")
        set_(self, "last_action", _cut(" ".join(self.last_action.split()), MAX_LAST_ACTION))
        set_(self, "description", _cut((self.description or "").strip(), MAX_DESCRIPTION))
        pairs = tuple(self.labels.items()) if isinstance(self.labels, Mapping) else tuple(self.labels)
        for pair in pairs:
            if len(pair) != 2 or not all(isinstance(p, str) for p in pair):
                raise ValueError(f"labels must be (key, value) string pairs, got {pair!r}")
        set_(self, "labels", tuple((_cut(k, MAX_LABEL_TEXT), _cut(v, MAX_LABEL_TEXT)) for k, v in pairs[:MAX_LABELS]))
        set_(self, "hidden_labels", max(0, len(pairs) - MAX_LABELS))
        actions = tuple(_enum("actions", Action, a) for a in self.actions)
        if Action.REFRESH in actions:
            raise ValueError("actions must not contain refresh; every card can be refreshed")
        if NOT_LIFECYCLE & set(actions):
            raise ValueError("actions must not contain custom or timeline; set custom_actions or timeline_button")
        if len(set(actions)) != len(actions):
            raise ValueError(f"actions must not repeat, got {[a.value for a in actions]}")
        set_(self, "actions", actions)
        choices = tuple(self.snooze_choices)
        if not all(isinstance(m, int) and 1 <= m <= SNOOZE_MAX_MINUTES for m in choices):
            raise ValueError(f"snooze_choices must be minutes from 1 to {SNOOZE_MAX_MINUTES}, got {choices!r}")
        if len(set(choices)) != len(choices) or (Action.SNOOZE in actions and not choices):
            raise ValueError(f"snooze_choices must be distinct and non-empty when snooze is offered, got {choices!r}")
        set_(self, "snooze_choices", choices)
        set_(self, "custom_actions", _custom_actions(self.custom_actions))
        set_(self, "timeline", _timeline(self.timeline))
        set_(self, "fields", _field_values(self.fields))
        set_(self, "field_inputs", _field_inputs(self.field_inputs))
        set_(self, "images", _images(self.images))

    @property
    def severity_look(self) -> Look:
        """Emoji, label and colour of the severity."""
        return SEVERITY_LOOK[self.severity]

    @property
    def progress_look(self) -> Look:
        """Emoji, label and colour of the progress."""
        return PROGRESS_LOOK[self.progress]

    @property
    def tone(self) -> Tone:
        """Card colour meaning: green once closed, otherwise the severity's."""
        return Tone.SUCCESS if self.progress is Progress.CLOSED else self.severity_look.tone

    @property
    def colour(self) -> str:
        """Hex colour for the card's bar or header."""
        return PROGRESS_LOOK[Progress.CLOSED].colour if self.progress is Progress.CLOSED else self.severity_look.colour

    @property
    def buttons(self) -> tuple[Action, ...]:
        """Actions to draw: those given, but a closed incident offers only reopen."""
        if self.progress is Progress.CLOSED:
            return tuple(a for a in self.actions if a is Action.REOPEN)
        return self.actions


def _custom_actions(value: object) -> tuple[CustomButton, ...]:
    out: list[CustomButton] = []
    for item in tuple(value)[:MAX_CUSTOM_ACTIONS]:  # type: ignore[call-overload]
        if (not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], int) or isinstance(item[0], bool)
                or item[0] <= 0 or not isinstance(item[1], str) or not item[1].strip()):
            raise ValueError(f"custom_actions must be (positive id, non-empty name) pairs, got {item!r}")
        out.append(CustomButton(item[0], _cut(" ".join(item[1].split()), MAX_CUSTOM_NAME)))
    if len({b.id for b in out}) != len(out):
        raise ValueError(f"custom_actions must not repeat an id, got {[b.id for b in out]}")
    return tuple(out)


def _timeline(value: object) -> tuple[TimelineLine, ...]:
    out: list[TimelineLine] = []
    for item in tuple(value)[:MAX_TIMELINE]:  # type: ignore[call-overload]
        line = TimelineLine(*item) if isinstance(item, tuple) else item
        if (not isinstance(line, TimelineLine) or not isinstance(line.at, datetime) or not isinstance(line.text, str)
                or not isinstance(line.note, str)):
            raise ValueError(f"timeline must be (at, text, note) entries, got {item!r}")
        _aware("timeline at", line.at)
        out.append(TimelineLine(line.at, _cut(line.text, MAX_TIMELINE_TEXT), _cut(line.note.strip(), MAX_TIMELINE_TEXT)))
    return tuple(out)


def _images(value: object) -> tuple[CardImage, ...]:
    out: list[CardImage] = []
    for item in tuple(value)[:MAX_IMAGES]:  # type: ignore[call-overload]
        image = CardImage(**item) if isinstance(item, Mapping) else CardImage(*item) if isinstance(item, tuple) else item
        # The same rule as core.images.shown: a renderer puts src and href inside markup as they are.
        if (not isinstance(image, CardImage) or not web_url(image.src, https_only=True)
                or not isinstance(image.alt, str) or not (image.href == "" or web_url(image.href, https_only=False))):
            raise ValueError(f"images must be (https src, alt, web href or empty) entries, got {item!r}")
        out.append(CardImage(image.src, _cut(" ".join(image.alt.split()), MAX_IMAGE_ALT), image.href))
    return tuple(out)


def _field_values(value: object) -> tuple[FieldValue, ...]:
    out: list[FieldValue] = []
    for item in tuple(value)[:MAX_CARD_FIELDS]:  # type: ignore[call-overload]
        if (not isinstance(item, tuple) or len(item) != 2 or not all(isinstance(p, str) for p in item)
                or not item[0].strip()):
            raise ValueError(f"fields must be (label, text) string pairs, got {item!r}")
        out.append(FieldValue(_cut(" ".join(item[0].split()), MAX_FIELD_TEXT), _cut(item[1].strip() or "—", MAX_FIELD_TEXT)))
    return tuple(out)


def _field_inputs(value: object) -> tuple[FieldInput, ...]:
    out: list[FieldInput] = []
    for item in tuple(value)[:MAX_CARD_FIELDS]:  # type: ignore[call-overload]
        f = FieldInput(*item) if isinstance(item, tuple) and len(item) in (4, 5) else None
        if (f is None or not isinstance(f.field_id, int) or isinstance(f.field_id, bool) or f.field_id <= 0
                or f.kind not in FIELD_KINDS or not isinstance(f.label, str) or not f.label.strip()
                or not 0 < len(f.options) <= MAX_FIELD_OPTIONS or not all(isinstance(o, str) and o for o in f.options)
                or (f.kind == "checkbox" and len(f.options) != 1)
                or not all(isinstance(i, int) and 0 <= i < len(f.options) for i in f.chosen)
                or (f.kind == "single_select" and len(f.chosen) > 1)):
            raise ValueError(f"field_inputs must be (field id, label, kind, options, chosen positions), got {item!r}")
        out.append(FieldInput(f.field_id, _cut(" ".join(f.label.split()), MAX_FIELD_TEXT), f.kind,
                              tuple(_cut(o, MAX_FIELD_TEXT) for o in f.options), tuple(dict.fromkeys(f.chosen))))
    if len({f.field_id for f in out}) != len(out):
        raise ValueError(f"field_inputs must not repeat a field, got {[f.field_id for f in out]}")
    return tuple(out)


def _enum(name: str, kind: type[E], value: object) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise ValueError(f"{name}: {value!r} is not one of {allowed}") from None

