"""Typed, packed button payloads: every card button goes through `ActionData.pack()` (STYLE.md 2 and 9).

Modelled on aiogram's `CallbackData`: a subclass names its short prefix, its fields are packed in
declaration order, joined by ":" (``ack:123``, ``snz:123:60``, ``rsg:123:`` for "pick a member
later"), and `ActionData.unpack()` dispatches on the prefix back to the right subclass.
Payloads are tiny so they fit the tightest slot of every platform; `ensure_fits()` proves it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.types import Platform

SEPARATOR = ":"
SNOOZE_MAX_MINUTES = 1440  # same bound as core.incidents.snooze and Flashduty's /incident/snooze
_PREFIX = re.compile(r"^[a-z]{1,8}$")
_INT = re.compile(r"^-?[0-9]{1,40}$")


class Action(enum.StrEnum):
    """Names of the actions a card can offer; values match `core.incidents.Action` where both exist."""

    ACK = "ack"
    UNACK = "unack"
    CLOSE = "close"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    SNOOZE = "snooze"
    WAKE = "wake"
    REASSIGN = "reassign"
    COMMENT = "comment"
    SILENCE_SIMILAR = "silence_similar"
    # Re-render only (Teams universal-action refresh); never a lifecycle change, never a card button.
    REFRESH = "refresh"
    # Drawn from the card's own fields (its channel's custom actions, the timeline button), never from the
    # lifecycle actions core allows: a custom action is the channel's, and reading the timeline changes nothing.
    CUSTOM = "custom"
    TIMELINE = "timeline"
    # A custom field's value chosen in a card's select (core/custom_fields.py), drawn from the card's fields.
    SET_FIELD = "set_field"


class ActionPayloadError(ValueError):
    """A packed payload could not be read, or is too big for a platform; the message names the problem."""


class ActionData(BaseModel):
    """Base of all button payloads; subclass with `class Ack(ActionData, prefix="ack", action=Action.ACK)`."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    prefix: ClassVar[str]
    action: ClassVar[Action]
    _by_prefix: ClassVar[dict[str, type[ActionData]]] = {}
    _by_action: ClassVar[dict[Action, type[ActionData]]] = {}

    incident_id: Annotated[int, Field(gt=0, lt=2**63)]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        prefix = kwargs.pop("prefix", None)
        action = kwargs.pop("action", None)
        super().__init_subclass__(**kwargs)
        if prefix is None or action is None:
            raise TypeError(f"class {cls.__name__}(ActionData, prefix='xyz', action=Action.X): both are required")
        if not _PREFIX.match(prefix):
            raise TypeError(f"{cls.__name__}: prefix {prefix!r} must be 1-8 lowercase ASCII letters")
        if prefix in ActionData._by_prefix:
            raise TypeError(f"{cls.__name__}: prefix {prefix!r} is already used by "
                            f"{ActionData._by_prefix[prefix].__name__}")
        cls.prefix = prefix
        cls.action = Action(action)
        ActionData._by_prefix[prefix] = cls
        ActionData._by_action[cls.action] = cls

    def pack(self) -> str:
        """Serialise to ``prefix:field1:field2`` (None packs as an empty field)."""
        values = ("" if v is None else str(v) for v in self.model_dump().values())
        return SEPARATOR.join((self.prefix, *values))

    @classmethod
    def unpack(cls, packed: str) -> ActionData:
        """Parse a packed payload back into the subclass its prefix names."""
        if not isinstance(packed, str) or not packed:
            raise ActionPayloadError("action payload is empty")
        prefix, *parts = packed.split(SEPARATOR)
        target = ActionData._by_prefix.get(prefix)
        if target is None:
            raise ActionPayloadError(f"unknown action prefix {prefix!r} in payload {packed[:80]!r}")
        if cls is not ActionData and not issubclass(target, cls):
            raise ActionPayloadError(f"payload {packed!r} is a {target.action.value} action, not {cls.__name__}")
        names = list(target.model_fields)
        if len(parts) != len(names):
            raise ActionPayloadError(f"{target.action.value} payload {packed[:80]!r} needs {len(names)} field(s) "
                                     f"({', '.join(names)}), got {len(parts)}")
        values: dict[str, int | None] = {}
        for name, raw in zip(names, parts):
            if raw == "":
                values[name] = None
            elif _INT.match(raw):
                values[name] = int(raw)
            else:
                raise ActionPayloadError(f"{target.action.value} payload field {name!r} must be an integer, "
                                         f"got {raw[:40]!r}")
        try:
            return target(**values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ActionPayloadError(f"invalid {target.action.value} payload {packed!r}: {problems}") from None

    @staticmethod
    def for_action(action: Action, incident_id: int, **fields: int | None) -> ActionData:
        """Build the payload class registered for `action`."""
        target = ActionData._by_action.get(Action(action))
        if target is None:
            raise ActionPayloadError(f"no payload class is registered for action {action!r}")
        return target(incident_id=incident_id, **fields)


class Ack(ActionData, prefix="ack", action=Action.ACK):
    """Acknowledge the incident."""


class Unack(ActionData, prefix="uack", action=Action.UNACK):
    """Undo an acknowledgement."""


class Close(ActionData, prefix="cls", action=Action.CLOSE):
    """Close the incident."""


class Reopen(ActionData, prefix="rop", action=Action.REOPEN):
    """Reopen a closed incident."""


class Escalate(ActionData, prefix="esc", action=Action.ESCALATE):
    """Jump to the next escalation level now."""


class Snooze(ActionData, prefix="snz", action=Action.SNOOZE):
    """Silence re-notification for `minutes`."""

    minutes: Annotated[int, Field(ge=1, le=SNOOZE_MAX_MINUTES)]


class Wake(ActionData, prefix="wake", action=Action.WAKE):
    """End a snooze early."""


class Reassign(ActionData, prefix="rsg", action=Action.REASSIGN):
    """Reassign to `member_id`; None means the adapter must ask who (modal, picker)."""

    member_id: Annotated[int, Field(gt=0, lt=2**63)] | None = None


class Comment(ActionData, prefix="cmt", action=Action.COMMENT):
    """Add a comment; the text arrives beside the payload (form input, modal)."""


class SilenceSimilar(ActionData, prefix="sil", action=Action.SILENCE_SIMILAR):
    """Create a silence rule for alerts like this incident's."""


class Refresh(ActionData, prefix="rfr", action=Action.REFRESH):
    """Ask for the current card (Teams `refresh`); changes nothing."""


class RunCustom(ActionData, prefix="cst", action=Action.CUSTOM):
    """Run the channel's custom action `action_id` on the incident (webhooks.outgoing.run_on_incident)."""

    action_id: Annotated[int, Field(gt=0, lt=2**63)]


class Timeline(ActionData, prefix="tl", action=Action.TIMELINE):
    """Show the clicker the incident's latest timeline entries; changes nothing."""


class SetField(ActionData, prefix="fld", action=Action.SET_FIELD):
    """Set custom field `field_id` from a card's select. `option` is the chosen option's position in the
    field's options (payloads are integers); None when the chosen options arrive beside the payload (Slack's
    selects and checkboxes name each chosen option, or none)."""

    field_id: Annotated[int, Field(gt=0, lt=2**63)]
    option: Annotated[int, Field(ge=0, lt=1000)] | None = None


# Actions a card draws from its own fields, never from `IncidentCard.actions` or core's allowed actions.
NOT_LIFECYCLE = frozenset({Action.REFRESH, Action.CUSTOM, Action.TIMELINE, Action.SET_FIELD})


class PayloadLimit(NamedTuple):
    """The tightest slot a platform gives a payload in our cards, and where it is documented."""

    max: int
    unit: Literal["bytes", "chars"]
    slot: str
    doc: str


# Each limit is the smallest slot our renderer uses on that platform, so one check covers them all.
PAYLOAD_LIMITS: dict[Platform, PayloadLimit] = {
    Platform.SLACK: PayloadLimit(150, "chars", "static_select option value (button value allows 2000)",
                                 "https://api.slack.com/reference/block-kit/composition-objects#option"),
    Platform.TELEGRAM: PayloadLimit(64, "bytes", "inline button callback_data",
                                    "https://core.telegram.org/bots/api#inlinekeyboardbutton"),
    Platform.WECOM: PayloadLimit(128, "bytes", "button_selection option id (button key allows 1024)",
                                 "https://developer.work.weixin.qq.com/document/path/90236"),
    # No per-value limit is documented for these three; the whole card is capped (Feishu 30 KB,
    # Teams ~28 KB activity). 1024 is our own cap, far above any payload we pack.
    Platform.FEISHU: PayloadLimit(1024, "bytes", "button behaviors callback value (own cap)",
                                  "https://open.feishu.cn/document/feishu-cards/configuring-card-interactions"),
    Platform.DINGTALK: PayloadLimit(1024, "bytes", "sendCardRequest params (own cap)",
                                    "https://open.dingtalk.com/document/orgapp/event-callback-card"),
    Platform.TEAMS: PayloadLimit(1024, "bytes", "Action.Execute data (own cap)",
                                 "https://learn.microsoft.com/adaptive-cards/authoring-cards/universal-actions-for-adaptive-cards/overview"),
}


def payload_size(packed: str, unit: Literal["bytes", "chars"]) -> int:
    """Length of `packed` in the unit a platform counts."""
    return len(packed.encode()) if unit == "bytes" else len(packed)


def ensure_fits(packed: str, platform: Platform) -> str:
    """Return `packed` unchanged, or raise ActionPayloadError if it exceeds the platform's limit."""
    limit = PAYLOAD_LIMITS.get(platform)
    if limit is None:
        raise ActionPayloadError(f"no action payload limit is known for platform {platform.value!r}")
    size = payload_size(packed, limit.unit)
    if size > limit.max:
        raise ActionPayloadError(f"action payload {packed[:40]!r}... is {size} {limit.unit}; {platform.value} "
                                 f"{limit.slot} allows {limit.max}")
    return packed


def pack_for(platform: Platform, action: Action, incident_id: int, **fields: int | None) -> str:
    """Pack the payload for `action` and check it fits `platform`."""
    return ensure_fits(ActionData.for_action(action, incident_id, **fields).pack(), platform)


def to_card_actions(names: Iterable[str]) -> tuple[Action, ...]:
    """Map action names (e.g. `core.incidents.allowed_actions()`) to card actions, dropping ones with no button."""
    return tuple(Action(str(n)) for n in names
                 if str(n) in Action._value2member_map_ and Action(str(n)) not in NOT_LIFECYCLE)
