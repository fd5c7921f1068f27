"""Notification templates: sandboxed Jinja2 per medium and event type, shipped defaults, overrides.

A template is chosen per (medium, event_type) and scope: an override may hold for every incident, for one
channel's, or for those of one escalation rule. The most specific scope that has an override for the
medium wins (escalation rule, then channel, then everywhere; `scope_order`), and within a scope the
override for the event type comes before the scope's `default`; else the shipped file
`core/template_defaults/<medium>/<event_type>.j2`, else `<medium>/default.j2`. `TemplateSet.validate`
rejects a template that cannot compile at configuration time; `TemplateSet.render` never raises for a
page: any failure of an override (runtime error, sandbox violation, work budget, size cap) renders the
shipped default instead and logs the error.

Email templates define `{% block subject %}` and `{% block text %}`, and may define `{% block html %}`
(rendered with HTML autoescape; without it the html part is the escaped text). Telegram bot templates are
Telegram HTML (send with parse_mode=HTML) and are autoescaped.

Rendering is bounded from inside first: every loop iteration, call and output chunk spends one step of a
fixed budget (deterministic, so a preview and a real page agree) and checks a wall-clock deadline;
operators that allocate (`*`, `**`, `%`, `~`), filters, calls and namespace assignments refuse results
over a size limit before or right after they are built; mutating methods and width-padding string
methods are not exposed; output stops at the medium's cap. That cannot stop one filter call that runs in
C (a `sum` of lists, a `join` of a gigabyte), so user-supplied sources never render in a server process:
`core/template_sandbox.py` runs `render_override` in worker processes under CPU, memory and time limits.
The shipped defaults are trusted and render in-process (`render_default`).
"""

from __future__ import annotations

import contextvars
import enum
import functools
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace
from markupsafe import escape

from core import escaping, images

log = logging.getLogger("vigil.templates")

MEDIA = ("sms", "voice", "email", "im", "feishu_bot", "dingtalk_bot", "wecom_bot", "slack_bot", "zoom_bot",
         "telegram_bot")
DEFAULT_EVENT = "default"
# Characters a rendered part may hold; over it an override falls back, a shipped default is cut.
OUTPUT_CAP = {"sms": 600, "voice": 400, "email": 100_000, "im": 4_000, "feishu_bot": 4_000, "dingtalk_bot": 4_000,
              "wecom_bot": 4_000, "slack_bot": 4_000, "zoom_bot": 4_000, "telegram_bot": 4_096}
# WeCom group bots reject markdown over 4096 bytes of UTF-8 (https://developer.work.weixin.qq.com/document/path/91770).
BYTE_CAP = {"wecom_bot": 4_096}
SUBJECT_CAP = 255
STEP_BUDGET = 100_000  # loop iterations + calls + output chunks one rendering may spend
DEADLINE_SECONDS = 1.0
VALUE_CAP = 200_000  # longest string / list a template may build
INT_ARG_CAP = 100_000  # largest integer argument a filter accepts (widths, counts)
EVENT_LABELS = {"i_new": "Triggered", "i_ack": "Acknowledged", "i_unack": "Unacknowledged", "i_snooze": "Snoozed",
                "i_wake": "Snooze ended", "i_rslv": "Closed", "i_reopen": "Reopened", "i_assign": "Reassigned",
                "i_comm": "New comment", "i_merge": "Merged", "i_storm": "Alert storm", "i_custom": "Custom action",
                "i_a_rspd": "Responder added", "i_r_title": "Title changed", "i_r_desc": "Description changed",
                "i_r_severity": "Severity changed"}
SEVERITY_ICONS = {"Critical": "🔴", "Warning": "🟠", "Info": "🔵"}
KEY_LABELS = ("service", "alertname", "check", "host", "hostname", "instance", "resource", "env", "cluster",
              "namespace", "pod", "job", "region")
MAX_KEY_LABELS = 5
DEFAULTS_DIR = Path(__file__).with_name("template_defaults")


class TemplateError(ValueError):
    """A template is unusable; the message names the line when there is one."""


class TemplateLimitError(TemplateError):
    """Rendering hit a limit of the template sandbox (time, CPU or memory); the message names the limit."""


@dataclass(frozen=True)
class Rendered:
    """One rendered notification; `used_fallback` says the shipped default replaced a failing override,
    `hit_limit` that the override failed on a limit of the sandbox (`TemplateLimitError`)."""

    subject: str | None
    text: str
    html: str | None
    used_fallback: bool = False
    error: str | None = None
    hit_limit: bool = False


# -- context ------------------------------------------------------------------------------------------


def incident_context(incident: Mapping[str, Any], *, event_type: str, actor_name: str | None = None,
                     base_url: str, time_zone: str = "UTC") -> dict[str, Any]:
    """The variables a template sees, under Flashduty's names, from a plain mapping of the incident."""
    severity = _plain(incident.get("incident_severity") or incident.get("severity")) or ""
    labels = {str(k): str(_plain(v)) for k, v in dict(incident.get("labels") or {}).items()}
    start, close = _aware(incident.get("start_time")), _aware(incident.get("close_time"))
    incident_id = incident.get("incident_id")
    ctx: dict[str, Any] = {
        "incident_id": incident_id,
        "num": str(incident.get("num") or incident_id or ""),
        "title": str(incident.get("title") or ""),
        "description": str(incident.get("description") or ""),
        "incident_severity": severity,
        "severity": severity,
        "progress": str(_plain(incident.get("progress")) or ""),
        "channel_name": str(incident.get("channel_name") or ""),
        "labels": labels,
        "key_labels": _key_labels(labels),
        # Custom field values by name (core.custom_fields.effective): a string, a list of options or a bool.
        "fields": {str(k): _plain(v) for k, v in dict(incident.get("fields") or {}).items()},
        "alert_cnt": int(incident.get("alert_cnt") or 0),
        # Images of the newest alerts that may be shown ({src, alt, href}: https src only, core/images.py).
        "images": images.shown(incident.get("images") or []),
        "responders": [_person_name(r) for r in incident.get("responders") or []],
        "start_time": start,
        "ack_time": _aware(incident.get("ack_time")),
        "close_time": close,
        "duration_seconds": int((close - start).total_seconds()) if start and close else None,
        "detail_url": str(incident.get("detail_url") or f"{base_url.rstrip('/')}/incidents/{incident_id}"),
    }
    extra = {"event_type": event_type, "event_label": EVENT_LABELS.get(event_type, "Updated"),
             "actor_name": actor_name or "", "time_zone": time_zone,
             "icon": "✅" if event_type == "i_rslv" else SEVERITY_ICONS.get(severity, "⚪")}
    return {**ctx, **extra, "incident": dict(ctx)}


def _plain(value: Any) -> Any:
    # str-mixin enums print as "Severity.CRITICAL" on Python 3.11; templates want the value.
    return value.value if isinstance(value, enum.Enum) else value


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)  # the store keeps naive UTC on SQLite
    if isinstance(value, int | float) and value > 0:  # Flashduty's Unix seconds, 0 = unset
        return datetime.fromtimestamp(value, UTC)
    return None


def _person_name(person: Any) -> str:
    if isinstance(person, Mapping):
        return str(person.get("person_name") or person.get("name") or person.get("email") or "")
    return str(person)


def _key_labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    known = [(k, labels[k]) for k in KEY_LABELS if k in labels]
    rest = sorted((k, v) for k, v in labels.items() if k not in KEY_LABELS)
    return (known + rest)[:MAX_KEY_LABELS]


# -- filters ------------------------------------------------------------------------------------------


@pass_context
def _datetime(context: Context, value: Any, fmt: str = "%Y-%m-%d %H:%M %Z", tz: str | None = None) -> str:
    when = _aware(value)
    if when is None:
        return ""
    name = tz or context.get("time_zone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"datetime filter: unknown time zone {name!r}") from None
    return when.astimezone(zone).strftime(fmt)


def _duration(value: Any) -> str:
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value or 0)
    days, rest = divmod(max(seconds, 0), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")] if seconds >= 60 else [(secs, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def _truncate(value: Any, length: int = 255, end: str = "…") -> str:
    text = str(value)
    return text if len(text) <= length else text[:max(length - len(end), 0)].rstrip() + end


_TELEGRAM_MDV2 = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")  # https://core.telegram.org/bots/api#markdownv2-style
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.IGNORECASE)


def _md_escape_telegram(value: Any) -> str:
    return _TELEGRAM_MDV2.sub(r"\\\1", str(value))


def _escaping(escape_text: Callable[[str], str]) -> Callable[[Any], str]:
    """A filter from one of core.escaping's functions: alert text shown as written in that message format."""
    def escape_filter(value: Any) -> str:
        return escape_text(str(value))
    return escape_filter


def _speakable(value: Any) -> str:
    """Text a voice call can read: no URLs, emoji or symbols, separators turned into spaces."""
    text = _URL.sub(" ", str(value))
    text = "".join(" " if c in "_|/\\*#~`" else c for c in text
                   if not unicodedata.category(c).startswith(("S", "C")) or c in " \t")
    return " ".join(text.split())


# -- sandbox and work budget ----------------------------------------------------------------------------


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + DEADLINE_SECONDS

    def spend(self) -> None:
        self.steps += 1
        if self.steps > STEP_BUDGET:
            raise SecurityError(f"template did more than {STEP_BUDGET} steps (loop iterations, calls, output)")
        if time.monotonic() > self.deadline:
            raise SecurityError(f"template ran longer than {DEADLINE_SECONDS} s")


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("vigil_template_budget", default=None)
_BUDGET_FILTER = "_vigil_budget"


def _spend() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.spend()


def _budgeted(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend()
        yield item


def _checked(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set) and len(value) > VALUE_CAP:
        raise SecurityError(f"template built a value longer than {VALUE_CAP}")
    if isinstance(value, int) and value.bit_length() > 10_000:
        raise SecurityError("template built an integer over 10000 bits")
    return value


class _BudgetedCodeGenerator(CodeGenerator):
    """Compiles every `for` over a budgeted iterator and every `~` through the size check."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in list(node.find_all(nodes.For)):
            loop.iter = nodes.Filter(loop.iter, _BUDGET_FILTER, [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")


class _Namespace(Namespace):
    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _checked(value))


# Width-padding and replacing string methods allocate whatever size their argument asks for.
_UNSAFE_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "format",
                                 "format_map", "translate"})
_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?([^a-zA-Z%]*)[a-zA-Z%]")


def _check_format(fmt: Any) -> None:
    if not isinstance(fmt, str):
        return
    for spec in _FORMAT_SPEC.findall(fmt):
        if "*" in spec or any(int(n) > INT_ARG_CAP for n in re.findall(r"\d+", spec)):
            raise SecurityError("format width or precision is too large")


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox with allocation limits and a work budget (see the module docstring)."""

    code_generator_class = _BudgetedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, autoescape: bool) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=autoescape, trim_blocks=True, lstrip_blocks=True)
        self.globals.pop("lipsum", None)
        self.globals["namespace"] = _Namespace
        own = {"datetime": _datetime, "duration": _duration, "truncate": _truncate, "html_escape": escape,
               "md_escape_telegram": _md_escape_telegram, "slack_escape": _escaping(escaping.slack_mrkdwn),
               "lark_md_escape": _escaping(escaping.lark_md), "dingtalk_escape": _escaping(escaping.dingtalk_markdown),
               "wecom_escape": _escaping(escaping.wecom_markdown), "speakable": _speakable}
        self.filters = {name: _guard_filter(name, f) for name, f in {**self.filters, **own}.items()}
        self.filters[_BUDGET_FILTER] = _budgeted

    def checked(self, value: Any) -> Any:
        return _checked(value)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**" and isinstance(left, int) and isinstance(right, int) \
                and right > 0 and left.bit_length() * right > 10_000:
            raise SecurityError("power result is too large")
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > VALUE_CAP:
                    raise SecurityError(f"repetition would build a value longer than {VALUE_CAP}")
        if operator_ == "%":
            _check_format(left)
        return _checked(super().call_binop(context, operator_, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _UNSAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format is refused by is_safe_attribute instead of being wrapped

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Fail loudly: a silent empty string would hide the attempt and render a confusing page.
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")


def _guard_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    skip = 2 if hasattr(f, "jinja_pass_arg") else 1  # the context/environment argument, then the value

    @functools.wraps(f)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for arg in (*args[skip:], *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > INT_ARG_CAP:
                raise SecurityError(f"filter {name}: argument {arg} is over {INT_ARG_CAP}")
        if name == "format" and len(args) >= skip:
            _check_format(args[skip - 1])
        if name == "replace" and len(args) >= skip + 2:
            value, old, new = str(args[skip - 1]), str(args[skip]), str(args[skip + 1])
            hits = value.count(old) if old else len(value) + 1
            if len(value) + hits * len(new) > VALUE_CAP:
                raise SecurityError(f"replace would build a value longer than {VALUE_CAP}")
        return _checked(f(*args, **kwargs))

    return guarded


_TEXT_ENV, _HTML_ENV = _Environment(autoescape=False), _Environment(autoescape=True)
_HTML_MEDIA = frozenset({"telegram_bot"})


@functools.lru_cache(maxsize=512)
def _compile(html: bool, source: str) -> Any:
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


# -- shipped defaults -----------------------------------------------------------------------------------


def _load_defaults(root: Path) -> dict[tuple[str, str], str]:
    found = {(p.parent.name, p.stem): p.read_text(encoding="utf-8") for p in root.glob("*/*.j2")}
    missing = [m for m in MEDIA if (m, DEFAULT_EVENT) not in found]
    if missing:
        raise RuntimeError(f"shipped templates missing default.j2 for: {', '.join(missing)}")
    return found


DEFAULTS = _load_defaults(DEFAULTS_DIR)


def default_source(medium: str, event_type: str) -> str:
    """The shipped template for (medium, event_type), or the medium's generic default."""
    return DEFAULTS.get((medium, event_type)) or DEFAULTS[(medium, DEFAULT_EVENT)]


# -- the template set -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Where an override holds: every incident (0, 0), one channel's (channel_id, 0), or those one escalation
    rule pages (its channel, rule id). A rule belongs to one channel, so its scope names both."""

    channel_id: int = 0
    rule_id: int = 0


EVERYWHERE = Scope()


def scope_order(channel_id: int | None, rule_id: int | None) -> list[Scope]:
    """The scopes that may hold an override for an incident of `channel_id` paged by `rule_id`, most specific
    first: the rule's own templates (a rule's owners word its pages), then the channel's, then everywhere.
    A scope outranks an event type: a rule's `default` beats the channel's template for that event, so a
    team that words its rule's pages is never half-overridden by the channel's."""
    order = []
    if rule_id and channel_id:
        order.append(Scope(channel_id, rule_id))
    if channel_id:
        order.append(Scope(channel_id, 0))
    return [*order, EVERYWHERE]


class TemplateSet:
    """Shipped defaults plus overrides `{(medium, event_type): source}` (everywhere) or
    `{(medium, event_type, channel_id, rule_id): source}` (scoped); `event_type` may be "default"."""

    def __init__(self, overrides: Mapping[tuple[str, str] | tuple[str, str, int, int], str] | None = None) -> None:
        self.overrides: dict[tuple[str, str, int, int], str] = {
            (key[0], key[1], *(key[2:] or (0, 0))): source for key, source in (overrides or {}).items()}

    @staticmethod
    def validate(medium: str, source: str) -> None:
        """Raise TemplateError (naming the line) if `source` cannot compile as a template for `medium`."""
        if medium not in MEDIA:
            raise TemplateError(f"medium: unknown medium {medium!r}; expected one of {', '.join(MEDIA)}")
        try:
            template = _compile(medium in _HTML_MEDIA, source)
            if medium == "email":
                _compile(True, source)
            _check_names(_TEXT_ENV.parse(source))
        except TemplateSyntaxError as exc:
            raise TemplateError(f"line {exc.lineno}: {exc.message}") from None
        except RecursionError:  # the parser and compiler recurse once per level of nesting
            raise TemplateError("the template nests too deeply (brackets, blocks or filters)") from None
        if medium == "email":
            missing = [b for b in ("subject", "text") if b not in template.blocks]
            if missing:
                raise TemplateError("email template needs " + " and ".join(
                    f"{{% block {b} %}}...{{% endblock %}}" for b in missing))

    def source(self, medium: str, event_type: str, channel_id: int | None = 0, rule_id: int | None = 0) -> str | None:
        """The override that applies to (medium, event_type) for an incident of `channel_id` paged by
        `rule_id`, or None for the shipped default."""
        for scope in scope_order(channel_id, rule_id):
            for event in (event_type, DEFAULT_EVENT):
                found = self.overrides.get((medium, event, scope.channel_id, scope.rule_id))
                if found:
                    return found
        return None

    def render(self, medium: str, event_type: str, context: Mapping[str, Any]) -> Rendered:
        """Render a notification in this process; on any failure of an override use the shipped default
        (never raises). A server process renders only shipped defaults here: user-supplied overrides go
        through `core.template_sandbox.render_all`, which runs them in a bounded worker process."""
        source = self.source(medium, event_type) if medium in MEDIA else None
        if source is None:
            return render_default(medium, event_type, context)
        try:
            return render_override(medium, source, context)
        except Exception as exc:  # any failure of an override must not block the page
            return render_default(medium, event_type, context, failure(exc))


def _check_names(tree: nodes.Template) -> None:
    """Refuse what Jinja only reports at render time: unknown filters or tests under an `if`, and includes."""
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        raise TemplateSyntaxError("templates cannot extend, include or import other templates", node.lineno)
    for node in tree.find_all(nodes.Filter):
        if node.name not in _TEXT_ENV.filters:
            raise TemplateSyntaxError(f"no filter named {node.name!r}", node.lineno)
    for node in tree.find_all(nodes.Test):
        if node.name not in _TEXT_ENV.tests:
            raise TemplateSyntaxError(f"no test named {node.name!r}", node.lineno)


def failure(exc: BaseException) -> str:
    """How a failed override is reported (timeline, log, preview): the error type and its message."""
    return f"{type(exc).__name__}: {exc}"


def render_override(medium: str, source: str, context: Mapping[str, Any]) -> Rendered:
    """Render a user-supplied override strictly: any failure (syntax, runtime, sandbox, budget, size) raises."""
    TemplateSet.validate(medium, source)
    return _render(medium, source, context, strict=True)


def render_default(medium: str, event_type: str, context: Mapping[str, Any], error: str | None = None, *,
                   hit_limit: bool = False) -> Rendered:
    """Render the shipped default (trusted, in-process; never raises). `error` says why an override was not
    used: it is logged and carried in the result as a fallback."""
    if medium not in MEDIA:
        log.warning("no template for unknown medium %r, sending plain text", medium)
        return _last_resort(context, f"unknown medium {medium!r}")
    if error is not None:
        log.warning("template %s/%s failed, using the shipped default: %s", medium, event_type, error)
    try:
        r = _render(medium, default_source(medium, event_type), context, strict=False)
    except Exception as exc:  # a context the defaults cannot digest still pages
        log.exception("shipped template %s/%s failed", medium, event_type)
        return _last_resort(context, error or failure(exc), hit_limit=hit_limit)
    return Rendered(r.subject, r.text, r.html, error is not None, error, hit_limit)


def _last_resort(context: Mapping[str, Any], error: str, *, hit_limit: bool = False) -> Rendered:
    text = f"[{context.get('incident_severity', '')}] {context.get('title', '')} {context.get('detail_url', '')}"
    return Rendered(str(context.get("title", "")), text.strip(), None, True, error, hit_limit)


def _render(medium: str, source: str, context: Mapping[str, Any], *, strict: bool) -> Rendered:
    token = _budget.set(_Budget())
    try:
        cap = OUTPUT_CAP[medium]
        if medium != "email":
            text = _generate(_compile(medium in _HTML_MEDIA, source).generate(dict(context)), cap, strict)
            return Rendered(None, _within_bytes(medium, text, strict), None)
        text_tmpl, html_tmpl = _compile(False, source), _compile(True, source)
        subject = " ".join(_generate(_block(text_tmpl, "subject", context), SUBJECT_CAP * 4, strict).split())
        if len(subject) > SUBJECT_CAP:
            if strict:
                raise TemplateError(f"subject is longer than {SUBJECT_CAP} characters")
            subject = _truncate(subject, SUBJECT_CAP)
        text = _generate(_block(text_tmpl, "text", context), cap, strict)
        if "html" in html_tmpl.blocks:
            html = _generate(_block(html_tmpl, "html", context), cap, strict)
        else:
            html = f'<div style="font-family:sans-serif;white-space:pre-wrap">{escape(text)}</div>'
        return Rendered(subject, text, html)
    finally:
        _budget.reset(token)


def _block(template: Any, name: str, context: Mapping[str, Any]) -> Iterator[str]:
    if name not in template.blocks:
        raise TemplateError(f"email template has no {{% block {name} %}}")
    return template.blocks[name](template.new_context(dict(context)))


def _generate(chunks: Iterator[str], cap: int, strict: bool) -> str:
    """Join output chunks, stopping at `cap`: an override over it fails, a shipped default is cut."""
    out: list[str] = []
    size = 0
    for chunk in chunks:
        _spend()
        out.append(chunk)
        size += len(chunk)
        if size > cap * 2 + 1_000:  # well past the cap: stop generating, the result is decided
            break
    text = "".join(out).strip()
    if len(text) > cap:
        if strict:
            raise TemplateError(f"output is longer than {cap} characters")
        text = _truncate(text, cap)
    return text


def _within_bytes(medium: str, text: str, strict: bool) -> str:
    limit = BYTE_CAP.get(medium)
    if limit is None or len(text.encode()) <= limit:
        return text
    if strict:
        raise TemplateError(f"output is longer than {limit} bytes of UTF-8")
    return text.encode()[:limit - 3].decode(errors="ignore") + "…"


__all__ = ["DEFAULTS", "MEDIA", "OUTPUT_CAP", "Rendered", "TemplateError", "TemplateLimitError", "TemplateSet",
           "default_source", "failure", "incident_context", "render_default", "render_override"]
