"""One match-condition language for routing, drop / silence / inhibit rules, escalation and bot filters.

Tree: an OR of AND groups, `[[c1, c2], [c3]]` = (c1 AND c2) OR c3. An empty tree (`[]` or None)
matches everything, so "no filters" means "every alert"; an empty group is refused instead, because
`[[]]` reads like "nothing" but would mean "everything".

A condition comes in two wire forms that compile to the same thing:

* Vigil's: `{"field": "labels.service", "op": "in", "values": ["db", "cache"], "ignore_case": false}`
  with op one of equals, not_equals, in, not_in, regex, not_regex, wildcard, exists, not_exists,
  gt, ge, lt, le, cidr.
* Flashduty's: `{"key": "labels.service", "oper": "IN" | "NOTIN", "vals": [...]}` where each value is
  exact, `/re2 regex/`, a wildcard with `*` / `?` (a lone `*` = the field exists), `num:gt|ge|lt|le:90`
  or `cidr:10.0.0.0/24`; IN = any value matches, NOTIN = no value matches. Keys `data_source_id`,
  `alert_severity` and `incident_severity` are read as integration_id and severity.

Fields: title, description, severity, status (event status), integration_id, channel_id, labels.<key>, and
on incidents fields.<name> (custom fields, core/custom_fields.py: a checkbox reads "true" / "false"; a
multi-select matches a positive condition when any chosen option does, a negative one when none does, and
an empty one is a missing field).

Semantics:
* Case-sensitive unless `ignore_case` (Vigil form); in regexes `(?i)` works too.
* regex searches (unanchored, like Go's regexp.MatchString, so write `^...$` to anchor); wildcard must
  match the whole value; `in` / `regex` / `wildcard` / `cidr` match when any value does.
* Regexes use RE2 (google-re2): matching time is linear in the input, so a pattern such as `(a+)+$`
  cannot hang ingest; backreferences and look-arounds are refused at configuration time.
* A missing field (absent label, no title given) equals nothing: positive operators are false on it and
  negative ones (not_equals, not_in, not_regex, not_exists, Flashduty NOTIN) are true, so
  "service is not db" also holds for alerts without a service label, as in Prometheus matchers.
* gt / ge / lt / le compare numbers; a field that is not a number is false for them.
* cidr accepts `10.0.0.5`, and `10.0.0.5:9100` / `[::1]:9100` (Prometheus `instance` labels).

Use: `compile_tree(raw)` once (it is memoised by content) and `.matches(subject(...))` per alert;
`Condition` / `FlashdutyCondition` / `ConditionTree` are the pydantic types for request bodies.
"""

from __future__ import annotations

import enum
import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

import orjson
import re2
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

FIELDS = ("title", "description", "severity", "status", "integration_id", "channel_id")
LABELS = "labels."
CUSTOM = "fields."
FLASHDUTY_ALIASES = {"data_source_id": "integration_id", "alert_severity": "severity",
                     "incident_severity": "severity"}
Op = Literal["equals", "not_equals", "in", "not_in", "regex", "not_regex", "wildcard", "exists", "not_exists",
             "gt", "ge", "lt", "le", "cidr"]
OPS: tuple[str, ...] = get_args(Op)
NEGATED = {"not_equals": "equals", "not_in": "in", "not_regex": "regex", "not_exists": "exists"}
MAX_VALUES = 1000
MAX_PATTERN = 1024
FIELD_PATTERN = r"^(title|description|severity|status|integration_id|channel_id|labels\..+|fields\..+)$"

Matcher = Callable[[str | None], bool]


class ConditionError(ValueError):
    """A condition tree is invalid; the message starts with the path of the bad part."""


# ---- subjects ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # a checkbox custom field; JSON's spelling, not Python's "True"
        return "true" if value else "false"
    return str(value.value if isinstance(value, enum.Enum) else value)


def _custom(value: Any) -> str | tuple[str, ...] | None:
    """A custom field's value as conditions read it: text, or the chosen options of a multi-select."""
    if isinstance(value, list | tuple):
        return tuple(t for v in value if (t := _text(v)) is not None) or None
    return _text(value)


def subject(*, title: str | None = None, description: str | None = None, severity: str | None = None,
            status: str | None = None, labels: Mapping[str, Any] | None = None,
            integration_id: int | str | None = None, channel_id: int | str | None = None,
            fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the mapping conditions are matched against; None leaves a field absent. `fields` are an
    incident's custom field values (core.custom_fields.effective)."""
    out: dict[str, Any] = {k: t for k, v in (("title", title), ("description", description),
                                             ("severity", severity), ("status", status),
                                             ("integration_id", integration_id), ("channel_id", channel_id))
                           if (t := _text(v)) is not None}
    out["labels"] = {str(k): t for k, v in (labels or {}).items() if (t := _text(v)) is not None}
    if fields:
        out["fields"] = {str(k): t for k, v in fields.items() if (t := _custom(v)) is not None}
    return out


def field_value(subj: Mapping[str, Any], name: str) -> str | tuple[str, ...] | None:
    """The value of field `name` in a subject as text (`labels.x` reads label x, `fields.x` custom field x,
    a tuple for a multi-select); None when absent."""
    name = FLASHDUTY_ALIASES.get(name, name)
    if name.startswith(LABELS):
        return _text((subj.get("labels") or {}).get(name[len(LABELS):]))
    if name.startswith(CUSTOM):
        return _custom((subj.get("fields") or {}).get(name[len(CUSTOM):]))
    return _text(subj.get(name))


# ---- value matchers ------------------------------------------------------------------------------


def _re2_options(ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # errors become ConditionError; RE2 would also print them to stderr
    options.case_sensitive = not ignore_case
    return options


_OPTIONS = {False: _re2_options(False), True: _re2_options(True)}


def _regex(pattern: str, ignore_case: bool, where: str) -> Any:
    if len(pattern) > MAX_PATTERN:
        raise ConditionError(f"{where}: regex longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, _OPTIONS[ignore_case])
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ConditionError(f"{where}: invalid regex {pattern!r}: {reason}") from None
    except UnicodeEncodeError:
        raise ConditionError(f"{where}: invalid regex {pattern!r}: not valid Unicode") from None


def _run(method: Callable[[str], Any], value: str) -> bool:
    """Apply a compiled RE2 method; RE2 works on UTF-8, so lone surrogates (legal in JSON) are replaced."""
    try:
        return method(value) is not None
    except UnicodeEncodeError:
        return method(value.encode("utf-8", "replace").decode()) is not None


def _wildcard_regex(pattern: str) -> str:
    # Only `*` and `?` are special (no fnmatch [classes]): everything else is literal.
    return "(?s)" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


# Plain decimal / exponent notation only: float() would also take "nan", "inf" and "1_000".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _as_number(value: str | None) -> float | None:
    if value is None or not _NUMBER.fullmatch(value := value.strip()):
        return None
    number = float(value)
    return number if abs(number) != float("inf") else None


_COMPARE = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}
_HOST_PORT = re.compile(r"\[(?P<v6>[^\]]+)\]:\d+|(?P<v4>[\d.]+):\d+")


def _as_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if value is None:
        return None
    value = value.strip()
    if m := _HOST_PORT.fullmatch(value):
        value = m["v6"] or m["v4"]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _positive(op: str, values: list[str], ignore_case: bool, paths: list[str]) -> Matcher:
    """The matcher of a positive operator, false on a missing field (None); paths[i] names values[i]."""
    if op in ("equals", "in"):
        if ignore_case:
            folded = frozenset(v.casefold() for v in values)
            return lambda v: v is not None and v.casefold() in folded
        allowed = frozenset(values)
        return lambda v: v is not None and v in allowed
    if op == "regex":
        pats = [_regex(p, ignore_case, at) for p, at in zip(values, paths)]
        return lambda v: v is not None and any(_run(p.search, v) for p in pats)
    if op == "wildcard":
        pats = [_regex(_wildcard_regex(p), ignore_case, at) for p, at in zip(values, paths)]
        return lambda v: v is not None and any(_run(p.fullmatch, v) for p in pats)
    if op == "exists":
        return lambda v: v is not None
    if op in _COMPARE:
        bound = _as_number(values[0])
        if bound is None:
            raise ConditionError(f"{paths[0]}: {op} needs a number, got {values[0]!r}")
        compare = _COMPARE[op]
        return lambda v: (n := _as_number(v)) is not None and compare(n, bound)
    if op == "cidr":
        nets = []
        for net, at in zip(values, paths):
            try:
                nets.append(ipaddress.ip_network(net.strip(), strict=False))
            except ValueError:
                raise ConditionError(f"{at}: invalid CIDR {net!r}") from None
        return lambda v: (ip := _as_ip(v)) is not None and any(ip.version == n.version and ip in n for n in nets)
    raise AssertionError(op)  # callers check op against OPS first


def _arity_error(op: str, count: int) -> str | None:
    if op in ("exists", "not_exists"):
        return f"{op} takes no values" if count else None
    if op in ("equals", "not_equals"):
        plural = op.replace("equals", "in")
        return None if count == 1 else f"{op} takes exactly one value (use {plural} for several)"
    if op in _COMPARE:
        return None if count == 1 else f"{op} takes exactly one number"
    if not count:
        return f"{op} needs at least one value"
    return f"{op} takes at most {MAX_VALUES} values" if count > MAX_VALUES else None


def _native_matcher(op: str, values: list[str], ignore_case: bool, where: str) -> Matcher:
    if (problem := _arity_error(op, len(values))) is not None:
        raise ConditionError(f"{where}.values: {problem}")
    paths = [f"{where}.values[{i}]" for i in range(len(values))]
    base = _positive(NEGATED.get(op, op), values, ignore_case, paths)
    return (lambda v: not base(v)) if op in NEGATED else base


def _flashduty_value(raw: str, at: str) -> tuple[str, list[str]]:
    """One Flashduty value as (positive op, values): /re/, num:op:N, cidr:net, `*`, wildcard or exact."""
    if len(raw) >= 2 and raw.startswith("/") and raw.endswith("/"):
        return "regex", [raw[1:-1]]
    if raw.startswith("num:"):
        parts = raw.split(":", 2)
        if len(parts) != 3 or parts[1] not in _COMPARE:
            raise ConditionError(f"{at}: expected num:gt|ge|lt|le:<number>, got {raw!r}")
        return parts[1], [parts[2]]
    if raw.startswith("cidr:"):
        return "cidr", [raw[5:]]
    if raw == "*":
        return "exists", []
    if "*" in raw or "?" in raw:
        return "wildcard", [raw]
    return "equals", [raw]


def _flashduty_matcher(oper: str, vals: list[str], where: str) -> Matcher:
    if not vals:
        raise ConditionError(f"{where}.vals: {oper} needs at least one value")
    if len(vals) > MAX_VALUES:
        raise ConditionError(f"{where}.vals: {oper} takes at most {MAX_VALUES} values")
    exact: set[str] = set()
    others: list[Matcher] = []
    for i, raw in enumerate(vals):
        at = f"{where}.vals[{i}]"
        op, values = _flashduty_value(raw, at)
        if op == "equals":
            exact.add(values[0])  # one set lookup for all exact values rather than a matcher each
        else:
            others.append(_positive(op, values, False, [at]))

    def any_matches(v: str | None) -> bool:
        return v is not None and (v in exact or any(m(v) for m in others))

    return any_matches if oper == "IN" else (lambda v: not any_matches(v))


# ---- conditions and trees ------------------------------------------------------------------------


def _check_field(name: Any, at: str, aliases: Mapping[str, str]) -> str:
    if isinstance(name, str):
        name = aliases.get(name, name)
        if name in FIELDS or any(name.startswith(p) and len(name) > len(p) for p in (LABELS, CUSTOM)):
            return name
    raise ConditionError(f"{at}: unknown field {name!r} (expected {', '.join(FIELDS)}, labels.<key> or "
                         f"fields.<name>)")


def _strings(raw: Any, at: str) -> list[str]:
    if not isinstance(raw, list):
        raise ConditionError(f"{at}: must be a list of strings, got {type(raw).__name__}")
    for i, v in enumerate(raw):
        # Numbers are accepted as their text ("90") because JSON clients send gt thresholds as numbers.
        if not isinstance(v, str | int | float) or isinstance(v, bool):
            raise ConditionError(f"{at}[{i}]: must be a string, got {type(v).__name__}")
    return [str(v) for v in raw]


_NATIVE_KEYS = frozenset({"field", "op", "values", "ignore_case"})
_FLASHDUTY_KEYS = frozenset({"key", "oper", "vals"})


@dataclass(frozen=True)
class CompiledCondition:
    """One validated condition: the field it reads and a matcher over that field's value; `negated` for
    the operators that hold when the positive one does not (not_in, NOTIN...)."""

    field: str
    test: Matcher
    negated: bool = False

    def matches(self, subj: Mapping[str, Any]) -> bool:
        """True if the subject's value of `field` satisfies the condition. Over a multi-select's options a
        positive condition needs one option to match, a negated one that no option fails it."""
        value = field_value(subj, self.field)
        if isinstance(value, tuple):
            return all(map(self.test, value)) if self.negated else any(map(self.test, value))
        return self.test(value)


def _compile_condition(raw: Any, where: str) -> CompiledCondition:
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, Mapping):
        raise ConditionError(f"{where}: a condition must be an object, got {type(raw).__name__}")
    keys = set(raw)
    if keys & _FLASHDUTY_KEYS and keys & _NATIVE_KEYS:
        raise ConditionError(f"{where}: mixes Vigil keys (field/op/values) with Flashduty keys (key/oper/vals)")
    if keys & _FLASHDUTY_KEYS:
        if unknown := keys - _FLASHDUTY_KEYS:
            raise ConditionError(f"{where}: unknown keys {sorted(map(str, unknown))} (expected key, oper, vals)")
        name = _check_field(raw.get("key"), f"{where}.key", FLASHDUTY_ALIASES)
        oper = raw.get("oper")
        if oper not in ("IN", "NOTIN"):
            raise ConditionError(f"{where}.oper: unknown operator {oper!r} (expected IN or NOTIN)")
        return CompiledCondition(name, _flashduty_matcher(oper, _strings(raw.get("vals"), f"{where}.vals"), where),
                                 oper == "NOTIN")
    if unknown := keys - _NATIVE_KEYS:
        raise ConditionError(f"{where}: unknown keys {sorted(map(str, unknown))} (expected field, op, values, ignore_case)")
    name = _check_field(raw.get("field"), f"{where}.field", {})
    op = raw.get("op")
    if op not in OPS:
        raise ConditionError(f"{where}.op: unknown operator {op!r} (expected one of {', '.join(OPS)})")
    ignore_case = raw.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise ConditionError(f"{where}.ignore_case: must be true or false")
    values = _strings(raw.get("values", []), f"{where}.values")
    return CompiledCondition(name, _native_matcher(op, values, ignore_case, where), op in NEGATED)


@dataclass(frozen=True)
class CompiledTree:
    """A validated OR-of-AND condition tree with regexes compiled, ready to match many subjects."""

    groups: tuple[tuple[CompiledCondition, ...], ...]

    def matches(self, subj: Mapping[str, Any]) -> bool:
        """True if any AND group fully matches the subject; an empty tree matches everything."""
        return not self.groups or any(all(c.matches(subj) for c in group) for group in self.groups)

    @property
    def fields(self) -> frozenset[str]:
        """The fields the tree reads (e.g. to tell which labels a rule depends on)."""
        return frozenset(c.field for group in self.groups for c in group)


def _compile(raw: Any, where: str) -> CompiledTree:
    if raw is None:
        return CompiledTree(())
    if isinstance(raw, BaseModel):  # a RootModel wrapping a tree
        raw = raw.model_dump()
    if not isinstance(raw, list | tuple):
        raise ConditionError(f"{where}: must be a list of condition groups (OR of AND lists), "
                             f"got {type(raw).__name__}")
    groups = []
    for i, group in enumerate(raw):
        if not isinstance(group, list | tuple) or not group:
            raise ConditionError(f"{where}[{i}]: a group must be a non-empty list of conditions")
        groups.append(tuple(_compile_condition(c, f"{where}[{i}][{j}]") for j, c in enumerate(group)))
    return CompiledTree(tuple(groups))


@lru_cache(maxsize=2048)
def _compile_cached(key: bytes, where: str) -> CompiledTree:
    return _compile(orjson.loads(key), where)


def _plain(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    raise TypeError


def compile_tree(raw: Any, where: str = "filters") -> CompiledTree:
    """Validate and precompile an OR-of-AND tree (either wire form); raises ConditionError naming the path.

    Results are memoised by content, so hot paths may call this per event with a rule's stored JSON.
    """
    try:
        key = orjson.dumps(raw, default=_plain, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not JSON-like (sets, odd keys, huge ints): compile uncached for a precise error
        return _compile(raw, where)
    return _compile_cached(key, where)


def matches(raw: Any, subj: Mapping[str, Any]) -> bool:
    """Compile (memoised) and match in one call."""
    return compile_tree(raw).matches(subj)


# ---- pydantic models for the Open API (validation and the published JSON schema) -----------------


def _validate_condition(model: BaseModel) -> None:
    # Pydantic already gives the location, so the message starts at the condition ("values[0]: ...").
    try:
        _compile_condition(model.model_dump(), "")
    except ConditionError as exc:
        raise ValueError(str(exc).removeprefix(".")) from None


class Condition(BaseModel):
    """One condition in Vigil's JSON form; validating it also compiles it (regex, CIDR, numbers)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    field: str = Field(description="title, description, severity, status, integration_id, channel_id, "
                                   "labels.<key> or fields.<name> (an incident's custom field)", json_schema_extra={"pattern": FIELD_PATTERN},
                       examples=["labels.service"])
    op: Op
    values: list[str] = Field(default_factory=list, max_length=MAX_VALUES,
                              description="none for exists/not_exists, one for equals/not_equals/gt/ge/lt/le")
    ignore_case: bool = Field(False, description="compare case-insensitively (equals, in, regex, wildcard)")

    @model_validator(mode="after")
    def _compiles(self) -> Condition:
        _validate_condition(self)
        return self


class FlashdutyCondition(BaseModel):
    """One condition in Flashduty's wire form (`OrFilterGroup` / `FilterCondition`)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    key: str = Field(examples=["labels.service"], description="as `field`, plus data_source_id")
    oper: Literal["IN", "NOTIN"]
    vals: list[str] = Field(min_length=1, max_length=MAX_VALUES,
                            description="exact, /regex/, wildcard with * or ?, num:gt:90, cidr:10.0.0.0/24")

    @model_validator(mode="after")
    def _compiles(self) -> FlashdutyCondition:
        _validate_condition(self)
        return self


def _form(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "flashduty" if isinstance(value, FlashdutyCondition) else "vigil"
    keys = set(value) if isinstance(value, Mapping) else set()
    return "flashduty" if keys & _FLASHDUTY_KEYS else "vigil"


AnyCondition = Annotated[Annotated[Condition, Tag("vigil")] | Annotated[FlashdutyCondition, Tag("flashduty")],
                         Discriminator(_form)]
ConditionGroup = Annotated[list[AnyCondition], Field(min_length=1, description="conditions that must all match")]
ConditionTree = Annotated[list[ConditionGroup], Field(
    description="OR of AND groups: [[c1, c2], [c3]] = (c1 AND c2) OR c3; [] matches everything")]

