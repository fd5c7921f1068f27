"""One match-condition language for routing, drop / silence / inhibit rules, escalation and bot filters.

A tree is an OR of AND groups: `[[c1, c2], [c3]]` = (c1 AND c2) OR c3; an empty tree matches
everything. A condition is `{"field": "labels.service", "op": "in", "values": ["db", "cache"]}`,
or Flashduty's form `{"key": "labels.service", "oper": "IN" | "NOTIN", "vals": [...]}` where a value
may be exact, `/regex/`, a wildcard with `*`/`?`, `num:gt:90`, or `cidr:10.0.0.0/24`.

Fields: title, description, severity, status, integration_id, channel_id, labels.<key>.
A missing field never equals anything: positive operators are false on it, negative
operators (not_equals, not_in, not_regex, not_exists) are true.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

FIELDS = ("title", "description", "severity", "status", "integration_id", "channel_id")
Op = Literal["equals", "not_equals", "in", "not_in", "regex", "not_regex", "wildcard", "exists", "not_exists",
             "gt", "ge", "lt", "le", "cidr"]
NEGATIVE = frozenset({"not_equals", "not_in", "not_regex", "not_exists"})
MAX_REGEX = 1024


class ConditionError(ValueError):
    """A condition tree is invalid; the message names the path of the bad part."""


class Condition(BaseModel):
    """One condition in Vigil's JSON form."""

    field: str = Field(description="title, description, severity, status, integration_id, channel_id, labels.<k>")
    op: Op
    values: list[str] = Field(default_factory=list, max_length=100)


def subject(*, title: str = "", description: str = "", severity: str = "", status: str = "",
            labels: Mapping[str, str] | None = None, integration_id: int | None = None,
            channel_id: int | None = None) -> dict[str, Any]:
    """Build the mapping conditions are matched against."""
    return {"title": title, "description": description, "severity": severity, "status": status,
            "integration_id": None if integration_id is None else str(integration_id),
            "channel_id": None if channel_id is None else str(channel_id), "labels": dict(labels or {})}


def field_value(subj: Mapping[str, Any], name: str) -> str | None:
    """The value of `name` in a subject (`labels.x` reads a label); None when absent."""
    if name.startswith("labels."):
        value = (subj.get("labels") or {}).get(name[7:])
    else:
        value = subj.get(name)
    return None if value is None else str(value)


def _compile_regex(pattern: str, where: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX:
        raise ConditionError(f"{where}: regex longer than {MAX_REGEX} characters")
    if _catastrophic(pattern):
        raise ConditionError(f"{where}: regex has nested quantifiers that can take exponential time: {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConditionError(f"{where}: invalid regex {pattern!r}: {exc}") from None


# A quantified group that itself contains a quantifier, e.g. (a+)+, (a*)*, (a|aa)+, (\w+\s?)*:
# the classic shapes of catastrophic backtracking. Python's `re` has no time limit, so such
# patterns are refused when the rule is saved rather than allowed to hang ingest later.
_NESTED = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d+,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d+,\d*\})")
_ALTERNATION = re.compile(r"\((?:[^()\\]|\\.)*\|(?:[^()\\]|\\.)*\)(?:[+*]|\{\d+,\d*\})")


def _catastrophic(pattern: str) -> bool:
    return bool(_NESTED.search(pattern) or _ALTERNATION.search(pattern))


Matcher = Callable[[str | None], bool]


def _number(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConditionError(f"{where}: {value!r} is not a number") from None


def _as_float(v: str | None) -> float | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


def _matcher(op: str, values: list[str], where: str) -> Matcher:
    if op in ("exists", "not_exists"):
        if values:
            raise ConditionError(f"{where}.values: {op} takes no values")
        return (lambda v: v is not None) if op == "exists" else (lambda v: v is None)
    if not values:
        raise ConditionError(f"{where}.values: {op} needs at least one value")
    if op in ("equals", "not_equals") and len(values) != 1:
        raise ConditionError(f"{where}.values: {op} takes exactly one value (use in / not_in for several)")
    if op in ("equals", "in"):
        allowed = frozenset(values)
        return lambda v: v is not None and v in allowed
    if op in ("not_equals", "not_in"):
        banned = frozenset(values)
        return lambda v: v is None or v not in banned
    if op in ("regex", "not_regex"):
        pats = [_compile_regex(p, f"{where}.values[{i}]") for i, p in enumerate(values)]
        if op == "regex":
            return lambda v: v is not None and any(p.search(v) for p in pats)
        return lambda v: v is None or not any(p.search(v) for p in pats)
    if op == "wildcard":
        pats = [re.compile(fnmatch.translate(p)) for p in values]
        return lambda v: v is not None and any(p.match(v) for p in pats)
    if op in ("gt", "ge", "lt", "le"):
        if len(values) != 1:
            raise ConditionError(f"{where}.values: {op} takes exactly one number")
        n = _number(values[0], f"{where}.values[0]")
        cmp = {"gt": float.__gt__, "ge": float.__ge__, "lt": float.__lt__, "le": float.__le__}[op]
        return lambda v: (f := _as_float(v)) is not None and cmp(f, n)
    if op == "cidr":
        nets = []
        for i, value in enumerate(values):
            try:
                nets.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise ConditionError(f"{where}.values[{i}]: invalid CIDR {value!r}") from None

        def in_net(v: str | None) -> bool:
            try:
                ip = ipaddress.ip_address((v or "").strip())
            except ValueError:
                return False
            return any(ip.version == n.version and ip in n for n in nets)

        return in_net
    raise ConditionError(f"{where}.op: unknown operator {op!r}")


def _flashduty_value(raw: str, where: str) -> Matcher:
    """One value of Flashduty's IN/NOTIN syntax: /re/, num:op:N, cidr:net, wildcard, or exact."""
    if len(raw) >= 2 and raw.startswith("/") and raw.endswith("/"):
        return _matcher("regex", [raw[1:-1]], where)
    if raw.startswith("num:"):
        parts = raw.split(":")
        if len(parts) != 3 or parts[1] not in ("gt", "ge", "lt", "le"):
            raise ConditionError(f"{where}: expected num:gt|ge|lt|le:<number>, got {raw!r}")
        return _matcher(parts[1], [parts[2]], where)
    if raw.startswith("cidr:"):
        return _matcher("cidr", [raw[5:]], where)
    if raw == "*":
        return _matcher("exists", [], where)
    if "*" in raw or "?" in raw:
        return _matcher("wildcard", [raw], where)
    return _matcher("equals", [raw], where)


def _check_field(name: Any, where: str) -> str:
    if not isinstance(name, str) or not (name in FIELDS or (name.startswith("labels.") and len(name) > 7)):
        raise ConditionError(f"{where}: unknown field {name!r} (one of {', '.join(FIELDS)}, labels.<key>)")
    return name


@dataclass(frozen=True)
class _Compiled:
    field: str
    match: Matcher

    def __call__(self, subj: Mapping[str, Any]) -> bool:
        return self.match(field_value(subj, self.field))


def _compile_condition(raw: Any, where: str) -> _Compiled:
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, Mapping):
        raise ConditionError(f"{where}: a condition must be an object")
    if "oper" in raw or "key" in raw:  # Flashduty's form
        name = _check_field(raw.get("key"), f"{where}.key")
        oper = raw.get("oper")
        if oper not in ("IN", "NOTIN"):
            raise ConditionError(f"{where}.oper: must be IN or NOTIN, got {oper!r}")
        vals = raw.get("vals")
        if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
            raise ConditionError(f"{where}.vals: a non-empty list of strings is required")
        parts = [_flashduty_value(v, f"{where}.vals[{i}]") for i, v in enumerate(vals)]
        if oper == "IN":
            return _Compiled(name, lambda v: any(p(v) for p in parts))
        return _Compiled(name, lambda v: not any(p(v) for p in parts))
    name = _check_field(raw.get("field"), f"{where}.field")
    op = raw.get("op")
    if op not in Op.__args__:  # type: ignore[attr-defined]
        raise ConditionError(f"{where}.op: unknown operator {op!r} (one of {', '.join(Op.__args__)})")  # type: ignore[attr-defined]
    values = raw.get("values", [])
    if not isinstance(values, list) or not all(isinstance(v, str | int | float) and not isinstance(v, bool)
                                               for v in values):
        raise ConditionError(f"{where}.values: a list of strings is required")
    return _Compiled(name, _matcher(op, [str(v) for v in values], where))


@dataclass(frozen=True)
class CompiledTree:
    groups: tuple[tuple[_Compiled, ...], ...]

    def matches(self, subj: Mapping[str, Any]) -> bool:
        """True if any AND group fully matches (an empty tree matches everything)."""
        if not self.groups:
            return True
        return any(all(c(subj) for c in group) for group in self.groups)


def compile_tree(raw: Any, where: str = "filters") -> CompiledTree:
    """Validate and precompile an OR-of-AND tree; raises ConditionError naming the bad path."""
    if raw is None:
        return CompiledTree(())
    if not isinstance(raw, list):
        raise ConditionError(f"{where}: must be a list of condition groups")
    groups = []
    for i, group in enumerate(raw):
        if not isinstance(group, list) or not group:
            raise ConditionError(f"{where}[{i}]: must be a non-empty list of conditions")
        groups.append(tuple(_compile_condition(c, f"{where}[{i}][{j}]") for j, c in enumerate(group)))
    return CompiledTree(tuple(groups))


def matches(raw: Any, subj: Mapping[str, Any]) -> bool:
    """Compile and match in one call (callers on hot paths keep the CompiledTree instead)."""
    return compile_tree(raw).matches(subj)
