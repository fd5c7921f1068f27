"""Notification templates: sandboxed Jinja2, per medium and event type, shipped defaults, overrides.

`TemplateSet.render` never raises for a page: a template that fails to compile, raises, tries to
escape the sandbox, loops too long or writes too much falls back to the shipped default, and the
error is logged and returned with the result. `validate` rejects bad templates at configuration time.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import escape

from core.template_defaults import DEFAULTS

log = logging.getLogger("vigil.templates")

MEDIA = ("sms", "voice", "email", "im", "feishu_bot", "dingtalk_bot", "wecom_bot", "slack_bot", "zoom_bot",
         "telegram_bot")
OUTPUT_CAP = {"sms": 600, "voice": 400, "email": 100_000}
DEFAULT_CAP = 8_000
LOOP_BUDGET = 100_000  # loop iterations one rendering may spend, summed over every loop
_budget: contextvars.ContextVar[list[int]] = contextvars.ContextVar("template_budget")


class TemplateError(ValueError):
    """A template is unusable; the message names the line when there is one."""


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None
    used_fallback: bool = False
    error: str | None = None


class _OutOfBudget(SecurityError):
    pass


def _budget_range(*args: int) -> Any:
    """range() whose iterations count against the rendering's loop budget (nested loops included)."""
    counter = _budget.get()
    for value in range(*args):
        counter[0] += 1
        if counter[0] > LOOP_BUDGET:
            raise _OutOfBudget(f"template loops ran more than {LOOP_BUDGET} iterations")
        yield value


def _dt(value: Any, fmt: str = "%Y-%m-%d %H:%M %Z", tz: str = "UTC") -> str:
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, ZoneInfo("UTC")) if value else None
    if not isinstance(value, datetime):
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def _duration(seconds: Any) -> str:
    s = int(seconds or 0)
    h, rest = divmod(s, 3600)
    m = rest // 60
    return f"{h}h {m}m" if h else f"{m}m"


_MDV2 = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def _env(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=ChainableUndefined, autoescape=autoescape, trim_blocks=True,
                               lstrip_blocks=True)
    env.globals["range"] = _budget_range
    env.filters.update(datetime=_dt, duration=_duration, html_escape=lambda v: str(escape(v)),
                       md_escape_telegram=lambda v: _MDV2.sub(r"\\\1", str(v)))
    return env


_TEXT, _HTML = _env(False), _env(True)


def incident_context(incident: Mapping[str, Any], *, event_type: str, actor_name: str | None = None,
                     base_url: str = "") -> dict[str, Any]:
    """The variables a template sees (Flashduty's names), from a plain mapping of the incident."""
    ctx = {k: incident.get(k) for k in ("incident_id", "num", "title", "description", "progress", "labels",
                                        "alert_cnt", "start_time", "ack_time", "close_time", "channel_name")}
    ctx["incident_severity"] = incident.get("incident_severity") or incident.get("severity")
    ctx["responders"] = list(incident.get("responders") or [])
    ctx["labels"] = dict(ctx["labels"] or {})
    ctx["detail_url"] = incident.get("detail_url") or f"{base_url}/incidents/{incident.get('incident_id')}"
    ctx.update(event_type=event_type, actor_name=actor_name or "")
    return {"incident": ctx, **ctx}


class TemplateSet:
    """Shipped defaults plus overrides {(medium, event_type): source}."""

    def __init__(self, overrides: Mapping[tuple[str, str], str] | None = None) -> None:
        self.overrides = dict(overrides or {})

    @staticmethod
    def validate(medium: str, source: str) -> None:
        """Raise TemplateError (with the line) if `source` cannot be a template for `medium`."""
        if medium not in MEDIA:
            raise TemplateError(f"unknown medium {medium!r}; one of {', '.join(MEDIA)}")
        try:
            (_HTML if medium == "email" else _TEXT).parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"line {exc.lineno}: {exc.message}") from None

    def render(self, medium: str, event_type: str, context: Mapping[str, Any]) -> Rendered:
        """Render, falling back to the shipped default on any problem (never raises)."""
        source = self.overrides.get((medium, event_type)) or self.overrides.get((medium, "default"))
        if source is not None:
            try:
                return self._render(medium, source, context)
            except Exception as exc:  # noqa: BLE001 - any template failure must not block a page
                error = f"{type(exc).__name__}: {exc}"
                log.warning("template %s/%s failed, using the default: %s", medium, event_type, error)
                default = self._render(medium, _default(medium, event_type), context)
                return Rendered(default.subject, default.text, default.html, True, error)
        return self._render(medium, _default(medium, event_type), context)

    def _render(self, medium: str, source: str, context: Mapping[str, Any]) -> Rendered:
        token = _budget.set([0])
        try:
            subject = html = None
            text = _capped(_TEXT, source, context, OUTPUT_CAP.get(medium, DEFAULT_CAP))
            if medium == "email":
                subject_line, _, body = text.partition("\n")
                subject = subject_line.removeprefix("Subject:").strip()
                text = body.strip()
                html = "<html><body><pre>" + str(escape(text)) + "</pre></body></html>"
            return Rendered(subject, text.strip(), html)
        finally:
            _budget.reset(token)


def _capped(env: SandboxedEnvironment, source: str, context: Mapping[str, Any], cap: int) -> str:
    out: list[str] = []
    size = 0
    try:
        for chunk in env.from_string(source).generate(dict(context)):
            out.append(chunk)
            size += len(chunk)
            if size > cap * 4:  # clearly runaway: stop generating
                break
    except JinjaTemplateError:
        raise
    text = "".join(out)
    if len(text) > cap:
        raise TemplateError(f"output is longer than {cap} characters")
    return text


def _default(medium: str, event_type: str) -> str:
    return DEFAULTS.get((medium, event_type)) or DEFAULTS[(medium, "default")]
