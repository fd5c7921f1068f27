"""Label enrichment: rules that add, derive and remove labels of an alert event before dedup and noise rules.

A rule set belongs to a channel or an integration and is an ordered list of rules, each seeing the labels
the previous ones left:

* extract: an RE2 regex with named groups over the title, the description or a label; each group that
  matched becomes a label of its name (RE2: matching time is linear in the input, so an admin's pattern
  cannot stall ingest).
* map: the value of the mapping's key label looks up a row of an enrichment mapping (host -> team,
  service -> owner); the row's labels are added.
* compose: a label built from a template of `{label}` placeholders (`{{` and `}}` are literal braces).
  Plain substitution only: a template here runs on every event, and nothing in it can do more than
  copy text. A template naming a label the event lacks sets nothing (no half-filled values).
* drop: labels removed.

`extract`, `map` and `compose` keep a label the event already has unless the rule says `overwrite`.
Everything here is pure: `parse` validates at save time, `compile_rules` builds the matcher once per rule
set version, `Enricher.apply` runs on the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Discriminator, Field, TypeAdapter, ValidationError

from core.types import AlertEvent

MAX_RULES = 50
MAX_PATTERN = 1024
MAX_TEMPLATE = 1024
LABEL_VALUE_MAX = 2048  # what the standard event keeps of a label value
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
SOURCE = re.compile(r"^(title|description|labels\.[A-Za-z_][A-Za-z0-9_.\-]{0,127})$")
_PLACEHOLDER = re.compile(r"{{|}}|{([^{}]*)}|[{}]")


class EnrichmentError(ValueError):
    """A rule set is invalid; the message names the rule (`rules[2] (extract)`) and the problem."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExtractRule(_Rule):
    type: Literal["extract"]
    source: str = Field(description="title, description or labels.<name>", pattern=SOURCE.pattern)
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN,
                         description="RE2 regex; each named group (?P<name>...) that matches becomes a label")
    overwrite: bool = False


class MapRule(_Rule):
    type: Literal["map"]
    mapping_id: int = Field(ge=1, le=2**53, description="the enrichment mapping; its key label is looked up")
    overwrite: bool = False


class ComposeRule(_Rule):
    type: Literal["compose"]
    label: str = Field(pattern=LABEL_NAME.pattern)
    template: str = Field(min_length=1, max_length=MAX_TEMPLATE,
                          description="text with {label} placeholders, e.g. {service}-{env}")
    overwrite: bool = False


class DropRule(_Rule):
    type: Literal["drop"]
    labels: list[Annotated[str, Field(pattern=LABEL_NAME.pattern)]] = Field(min_length=1, max_length=100)


Rule = Annotated[ExtractRule | MapRule | ComposeRule | DropRule, Discriminator("type")]
_RULES = TypeAdapter(list[Rule])


@dataclass(frozen=True)
class MappingData:
    """An enrichment mapping as rules use it: the label whose value is the key, and key -> labels."""

    key_label: str
    rows: Mapping[str, Mapping[str, str]]


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # errors become EnrichmentError; RE2 would also print them to stderr
    return options


_OPTIONS = _options()


def _where(i: int, rule: Any) -> str:
    kind = rule.get("type") if isinstance(rule, dict) else getattr(rule, "type", None)
    return f"rules[{i}]" + (f" ({kind})" if isinstance(kind, str) else "")


def compile_pattern(pattern: str, where: str) -> Any:
    """An extract rule's regex, compiled by RE2, with at least one named group, each a valid label name."""
    try:
        regex = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise EnrichmentError(f"{where}: invalid regex {pattern!r}: {reason}") from None
    except UnicodeEncodeError:
        raise EnrichmentError(f"{where}: invalid regex {pattern!r}: not valid Unicode") from None
    if not regex.groupindex:
        raise EnrichmentError(f"{where}: the regex {pattern!r} has no named group; name what it extracts, "
                              "e.g. (?P<host>[a-z0-9-]+)")
    for name in regex.groupindex:
        if not LABEL_NAME.match(name):
            raise EnrichmentError(f"{where}: group name {name!r} is not a valid label name")
    return regex


def template_parts(template: str, where: str) -> list[tuple[bool, str]]:
    """A compose template as (is_placeholder, text) parts; a stray brace or empty placeholder is an error."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        if m.start() > pos:
            parts.append((False, template[pos:m.start()]))
        token = m.group(0)
        if token in ("{{", "}}"):
            parts.append((False, token[0]))
        elif token in ("{", "}"):
            raise EnrichmentError(f"{where}: unmatched {token!r} at position {m.start()} of the template; "
                                  "write {{ or }} for a literal brace")
        else:
            name = m.group(1).strip()
            if not LABEL_NAME.match(name):
                raise EnrichmentError(f"{where}: placeholder {token!r} does not name a label")
            parts.append((True, name))
        pos = m.end()
    if pos < len(template):
        parts.append((False, template[pos:]))
    if not any(is_label for is_label, _ in parts):
        raise EnrichmentError(f"{where}: the template names no label; use {{label}} placeholders")
    return parts


def parse(rules: Any) -> list[ExtractRule | MapRule | ComposeRule | DropRule]:
    """Validate a rule set as stored (a list of dicts), naming the first bad rule and what is wrong with it."""
    if not isinstance(rules, list):
        raise EnrichmentError("rules must be a list")
    if len(rules) > MAX_RULES:
        raise EnrichmentError(f"rules: at most {MAX_RULES} rules in a set")
    try:
        parsed = _RULES.validate_python(rules)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first.get("loc", ()))
        index = loc[0] if loc and isinstance(loc[0], int) else None
        where = _where(index, rules[index]) if index is not None else "rules"
        rest = ".".join(str(p) for p in loc[1:] if p not in ("extract", "map", "compose", "drop"))
        raise EnrichmentError(f"{where}{': ' + rest if rest else ''}: {first.get('msg', 'invalid')}") from None
    for i, rule in enumerate(parsed):
        if isinstance(rule, ExtractRule):
            compile_pattern(rule.pattern, _where(i, rule))
        elif isinstance(rule, ComposeRule):
            template_parts(rule.template, _where(i, rule))
    return parsed


def mapping_ids(rules: Any) -> list[int]:
    """The enrichment mappings a stored rule set uses (its map rules), in order, once each."""
    return list(dict.fromkeys(r["mapping_id"] for r in rules if isinstance(r, dict) and r.get("type") == "map"))


# ---- applying ------------------------------------------------------------------------------------


def _set(labels: dict[str, str], name: str, value: str, overwrite: bool) -> None:
    if overwrite or name not in labels:
        labels[name] = value[:LABEL_VALUE_MAX]


def _source(ev: AlertEvent, labels: dict[str, str], source: str) -> str | None:
    if source == "title":
        return ev.title
    if source == "description":
        return ev.description
    return labels.get(source[len("labels."):])


@dataclass(frozen=True)
class _Step:
    kind: str
    overwrite: bool = False
    source: str = ""
    regex: Any = None
    mapping: MappingData | None = None
    label: str = ""
    parts: tuple[tuple[bool, str], ...] = ()
    drop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Enricher:
    """A compiled rule set: regexes compiled and mappings loaded once, applied to every event."""

    steps: tuple[_Step, ...]

    def labels(self, ev: AlertEvent) -> dict[str, str]:
        """The event's labels after the rules."""
        labels = dict(ev.labels)
        for step in self.steps:
            if step.kind == "extract":
                text = _source(ev, labels, step.source)
                if not text:
                    continue
                try:
                    m = step.regex.search(text)
                except UnicodeEncodeError:  # RE2 works on UTF-8; lone surrogates are legal in JSON
                    m = step.regex.search(text.encode("utf-8", "replace").decode())
                if m is not None:
                    for name, value in m.groupdict().items():
                        if value is not None:
                            _set(labels, name, value, step.overwrite)
            elif step.kind == "map":
                assert step.mapping is not None
                key = labels.get(step.mapping.key_label)
                row = step.mapping.rows.get(key) if key is not None else None
                for name, value in (row or {}).items():
                    _set(labels, name, value, step.overwrite)
            elif step.kind == "compose":
                values = []
                for is_label, text in step.parts:
                    if is_label and text not in labels:
                        break
                    values.append(labels[text] if is_label else text)
                else:
                    _set(labels, step.label, "".join(values), step.overwrite)
            else:
                for name in step.drop:
                    labels.pop(name, None)
        return labels

    def apply(self, ev: AlertEvent) -> AlertEvent:
        """The event with enriched labels (the same object when nothing changed)."""
        labels = self.labels(ev)
        return ev if labels == ev.labels else replace(ev, labels=labels)


def compile_rules(rules: Any, mappings: Mapping[int, MappingData]) -> Enricher:
    """Compile a stored rule set. A map rule whose mapping is gone maps nothing (deleting a mapping in use
    is refused; this only guards a race)."""
    steps = []
    for i, rule in enumerate(parse(rules)):
        where = _where(i, rule)
        if isinstance(rule, ExtractRule):
            steps.append(_Step("extract", rule.overwrite, source=rule.source,
                               regex=compile_pattern(rule.pattern, where)))
        elif isinstance(rule, MapRule):
            mapping = mappings.get(rule.mapping_id, MappingData("", {}))
            steps.append(_Step("map", rule.overwrite, mapping=mapping))
        elif isinstance(rule, ComposeRule):
            steps.append(_Step("compose", rule.overwrite, label=rule.label,
                               parts=tuple(template_parts(rule.template, where))))
        else:
            steps.append(_Step("drop", drop=tuple(rule.labels)))
    return Enricher(tuple(steps))
