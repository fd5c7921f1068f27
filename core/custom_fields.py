"""Custom fields: an admin defines fields once per account; responders set their values on incidents.

A definition has a stable `name` (the key in `Incident.fields`, in conditions as `fields.<name>` and in
templates as `fields.<name>`), a display name, a type and, for the selects, its options:

    text           a string (at most TEXT_MAX characters)
    single_select  one of the options
    multi_select   a list of options (each at most once, in the order of the definition's options)
    checkbox       true or false

A value that was never set reads as the definition's default (none: unset). Setting a value goes through
`set_value`, the one path of the Open API, the web page and a card's select (DESIGN rule 1): the same
rules as any other action on the incident, a timeline entry and the `i_r_field` event (Flashduty's name)
that re-renders every card of the incident. `check_value` and `effective` are pure and table-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events, incidents
from core.conditions import CUSTOM, CompiledTree
from core.errors import IllegalTransition, InvalidInput
from core.models import CustomField, Incident

FieldType = Literal["text", "single_select", "multi_select", "checkbox"]
SELECTS = frozenset({"single_select", "multi_select"})
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
TEXT_MAX = 1000
OPTIONS_MAX = 50
OPTION_MAX = 100
FIELDS_MAX = 50  # definitions an account may have: each is drawn on every card and page


class Definition(Protocol):
    """What checking a value needs of a definition (a CustomField row or a FieldSpec)."""

    name: str
    type: str
    options: list[str]


def check_value(definition: Definition, value: Any, where: str = "value") -> Any:
    """The value as stored, or None to unset it; raises InvalidInput naming `where`, the field and the problem.

    An empty text or an empty multi-select unsets the value, as clearing the input on a page would."""
    name, kind = definition.name, definition.type
    if value is None:
        return None
    if kind == "text":
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: {name} is a text field; give a string, not {_kind(value)}")
        value = value.strip()
        if len(value) > TEXT_MAX:
            raise InvalidInput(f"{where}: {name} takes at most {TEXT_MAX} characters")
        return value or None
    if kind == "checkbox":
        if not isinstance(value, bool):
            raise InvalidInput(f"{where}: {name} is a checkbox; give true or false, not {_kind(value)}")
        return value
    options = list(definition.options)
    if kind == "single_select":
        if not isinstance(value, str):
            raise InvalidInput(f"{where}: {name} is a single select; give one of its options as a string, "
                               f"not {_kind(value)}")
        if value not in options:
            raise InvalidInput(f"{where}: {value[:100]!r} is not an option of {name} ({_listed(options)})")
        return value
    if kind == "multi_select":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{where}: {name} is a multi select; give a list of its options")
        for v in value:
            if v not in options:
                raise InvalidInput(f"{where}: {v[:100]!r} is not an option of {name} ({_listed(options)})")
        chosen = set(value)
        return [o for o in options if o in chosen] or None
    raise InvalidInput(f"{where}: {name} has an unknown type {kind!r}")


def _kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _listed(options: Sequence[str]) -> str:
    shown = ", ".join(options[:10]) + (f", … ({len(options)} in all)" if len(options) > 10 else "")
    return f"options: {shown}" if options else "it has no options"


def effective(definitions: Iterable[Definition | Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every defined field's current value by name, in definition order: the value set on the incident, else
    the definition's default; fields with neither are left out. A stored value that no longer fits its
    definition (its option was removed) reads as unset, so nothing shows an option that is gone."""
    out: dict[str, Any] = {}
    for d in definitions:
        value = values.get(d.name)
        if value is not None:
            try:
                value = check_value(d, value)
            except InvalidInput:
                value = None
        if value is None:
            value = getattr(d, "default_value", None)
        if value is not None:
            out[d.name] = value
    return out


def display(value: Any) -> str:
    """A value as words on a card, a page or the timeline: options joined by commas, Yes / No."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


class FieldSpec(BaseModel):
    """A definition as written through the Open API; validating it checks its options and default."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="the stable key: lowercase letters, digits and _, "
                      "starting with a letter (fields.<name> in conditions and templates)", examples=["impact"])
    display_name: str = Field(min_length=1, max_length=100, examples=["Impact"])
    description: str = Field(default="", max_length=500)
    type: FieldType
    options: list[str] = Field(default_factory=list, max_length=OPTIONS_MAX,
                               description="the choices of a single_select or multi_select (none for the others)")
    default_value: Any = Field(default=None, description="what an incident shows until a value is set: a string "
                               "(text, single_select), a list of options (multi_select), true/false (checkbox)")

    @field_validator("display_name")
    @classmethod
    def _display(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @field_validator("options")
    @classmethod
    def _options(cls, v: list[str]) -> list[str]:
        cleaned = [o.strip() for o in v]
        for i, o in enumerate(cleaned):
            if not o or len(o) > OPTION_MAX:
                raise ValueError(f"option {i} must be 1 to {OPTION_MAX} characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("options must not repeat")
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type in SELECTS and not self.options:
            raise ValueError(f"options: a {self.type} needs at least one option")
        if self.type not in SELECTS and self.options:
            raise ValueError(f"options: a {self.type} field has no options")
        try:
            self.default_value = check_value(self, self.default_value, "default_value")
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return self


# ---- the store -----------------------------------------------------------------------------------------


async def definitions(session: AsyncSession) -> list[CustomField]:
    """Every definition, in the order they were made (the order cards and pages show them)."""
    return list((await session.execute(select(CustomField).order_by(CustomField.id))).scalars())


async def values_of(session: AsyncSession, incident: Incident) -> dict[str, Any]:
    """The incident's values as reads show them (`effective`), with the definitions read here."""
    return effective(await definitions(session), incident.fields or {})


def filter_value(definition: CustomField | Any, raw: str) -> tuple[Any, bool]:
    """An incident list filter `name=value` on this field: the value to look for as stored (true / false for a
    checkbox; one option of a multi-select, which matches when chosen among others) and whether an incident
    that never set the field matches through the field's default."""
    where = f"fields: {definition.name}"
    if definition.type == "checkbox":
        if raw not in ("true", "false"):
            raise InvalidInput(f"{where} is a checkbox; filter it with true or false")
        value: Any = raw == "true"
    elif definition.type in SELECTS:
        if raw not in definition.options:
            raise InvalidInput(f"{where}: {raw[:100]!r} is not one of its options ({_listed(definition.options)})")
        value = raw
    else:
        value = raw
    default = definition.default_value
    by_default = value in default if isinstance(default, list) else default is not None and default == value
    return value, by_default


def read_by(trees: Iterable[CompiledTree]) -> bool:
    """Whether any of these condition trees reads a custom field (`fields.<name>`)."""
    return any(f.startswith(CUSTOM) for tree in trees for f in tree.fields)


async def for_conditions(session: AsyncSession, incidents_: Iterable[Incident],
                         trees: Iterable[CompiledTree]) -> dict[int, dict[str, Any]]:
    """Each incident's values as `fields.<name>` conditions see them (defaults included), by incident id;
    nothing is read when no tree asks for a custom field (the hot path of new incidents pays nothing)."""
    if not read_by(trees):
        return {}
    defs = await definitions(session)
    return {i.id: effective(defs, i.fields or {}) for i in incidents_ if i.id is not None}


async def set_value(session: AsyncSession, incident_id: int, actor_id: int | None, *, name: str, value: Any,
                    now: datetime, source: str = "api") -> Incident:
    """Set (or with None, unset) one custom field of an incident; a value equal to the current one changes
    nothing. The same rules as editing the incident: observers are refused, team scope applies, any
    progress is fine (a closed incident's record is still completed), a merged incident is not."""
    definition = (await session.execute(select(CustomField).where(CustomField.name == name))).scalar_one_or_none()
    if definition is None:
        raise InvalidInput(f"name: no custom field is named {name[:100]!r}")
    stored = check_value(definition, value)
    await incidents.actor_may_act(session, actor_id)
    incident = await incidents.get(session, incident_id, lock=True)
    await incidents.may_act_on(session, incident, actor_id)
    if incident.merged_into_id is not None:
        raise IllegalTransition("incident was merged into another incident; act on that one")
    values = dict(incident.fields or {})
    old = values.get(name)
    if old == stored:
        return incident
    if stored is None:
        values.pop(name, None)
    else:
        values[name] = stored
    incident.fields = values
    incident.updated_at = now
    await events.emit(session, incident, events.I_R_FIELD, now=now, actor_id=actor_id, source=source,
                      detail={"field": name, "display_name": definition.display_name, "from": old, "to": stored})
    return incident


def from_positions(definition: Definition, positions: Sequence[int]) -> Any:
    """The value a card's select chose, from the positions of its chosen options (card payloads are integers):
    a checkbox is checked when anything is chosen; none chosen clears a select."""
    if definition.type == "checkbox":
        return bool(positions)
    if definition.type not in SELECTS:
        raise InvalidInput(f"{definition.name}: a {definition.type} field is set on the incident page or through "
                           "the Open API")
    options = list(definition.options)
    if any(not 0 <= p < len(options) for p in positions):
        raise InvalidInput(f"{definition.name}: that choice is no longer an option; refresh the card")
    chosen = [options[p] for p in dict.fromkeys(positions)]
    if definition.type == "single_select":
        return chosen[0] if chosen else None
    return chosen


def positions_of(definition: Definition, value: Any) -> tuple[int, ...]:
    """The other way: the positions a card's select shows as chosen for `value` (a checkbox: its one option)."""
    if definition.type == "checkbox":
        return (0,) if value is True else ()
    chosen = value if isinstance(value, list) else [value]
    return tuple(i for i, o in enumerate(definition.options) if o in chosen)
