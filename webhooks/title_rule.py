"""Title rules (reference 1.5): turn a rule like `$resource::$check` into an alert title.

Three syntaxes, as Flashduty documents them:

- plain: `$name` is replaced by the label `name` and `::` in the rule's own text becomes ` / `;
  a `$name` with no such label stays as written.
- `[TPL]${name}`: labels only; a missing label renders as `<no value>`.
- `[TPL]{{.Labels.name}}`: a small, safe subset of Go templates over the event: `.Labels.name`,
  `index .Labels "name"`, `.EventSeverity`, `.EventStatus`, `.AlertKey`, `.Title`, `.Description`,
  `.TitleRule`; a missing value renders as "". Anything else (pipelines, `if`, functions) is left
  as written so the sender sees what was not understood. Nothing is ever evaluated.

Rendering is one left-to-right pass, so a label value that itself looks like `$x` or `{{...}}` is
never substituted again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

TPL_PREFIX = "[TPL]"
NO_VALUE = "<no value>"

_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_PLAIN = re.compile(rf"\$({_LABEL})")
_TPL = re.compile(rf"\$\{{\s*({_LABEL})\s*\}}|\{{\{{\s*(.*?)\s*\}}\}}", re.DOTALL)
_GO_LABEL = re.compile(rf"\.Labels\.({_LABEL})")
_GO_INDEX = re.compile(r'index\s+\.Labels\s+"([^"\\]*)"')


@dataclass(frozen=True)
class TitleContext:
    """What a title rule may refer to: the event's labels and its main fields."""

    labels: Mapping[str, str] = field(default_factory=dict)
    event_status: str = ""
    event_severity: str = ""
    alert_key: str = ""
    title: str = ""
    description: str = ""
    title_rule: str = ""

    def field_value(self, name: str) -> str | None:
        """The value of a Go-template field such as `.EventSeverity`; None when not supported."""
        return {
            ".EventSeverity": self.event_severity,
            ".EventStatus": self.event_status,
            ".AlertKey": self.alert_key,
            ".Title": self.title,
            ".Description": self.description,
            ".TitleRule": self.title_rule,
        }.get(name)


def render(rule: str, ctx: TitleContext) -> str:
    """Render a title rule against an event; the caller truncates the result."""
    if rule.startswith(TPL_PREFIX):
        return _TPL.sub(lambda m: _tpl_value(m, ctx), rule[len(TPL_PREFIX) :])
    out: list[str] = []
    pos = 0
    for m in _PLAIN.finditer(rule):
        out.append(rule[pos : m.start()].replace("::", " / "))
        out.append(ctx.labels.get(m.group(1), m.group(0)))
        pos = m.end()
    out.append(rule[pos:].replace("::", " / "))
    return "".join(out)


def _tpl_value(m: re.Match[str], ctx: TitleContext) -> str:
    if m.group(1) is not None:
        return ctx.labels.get(m.group(1), NO_VALUE)
    expr = m.group(2)
    if label := _GO_LABEL.fullmatch(expr):
        return ctx.labels.get(label.group(1), "")
    if index := _GO_INDEX.fullmatch(expr):
        return ctx.labels.get(index.group(1), "")
    value = ctx.field_value(expr)
    return m.group(0) if value is None else value
