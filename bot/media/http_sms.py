"""A generic HTTP SMS gateway: the request is described by sandboxed Jinja2 templates.

Templates see `to` (Contact), `message` (Message) and `secret` (the configured secret values, which
are redacted from every error). Values in the URL template are percent-encoded automatically; in
the body use `|tojson` for JSON or `|urlencode` for forms.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import quote

import aiohttp
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from bot.adapters._http import DETAIL_LIMIT, error_for_status, redact, send_request
from bot.adapters.errors import DeliveryError
from bot.media.base import Contact, Medium, Message
from core.egress import url_problem

_MISSING = object()


def _url_finalize(value: Any) -> str:
    return quote(str(value), safe="")


_URL_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_url_finalize)
_TEXT_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class HttpSmsConfig(BaseModel):
    """How to call the gateway and how to tell that it accepted the message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST", "PUT"] = "POST"
    url: str = Field(min_length=1, description="Jinja2 template; values are percent-encoded")
    body: str | None = Field(default=None, description="Jinja2 template for the request body")
    headers: dict[str, str] = Field(default_factory=dict, description="Jinja2 templates per header")
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # Success is a 2xx status and, when set, the JSON value at `success_path` (dotted) equal to `success_value`.
    success_path: str | None = None
    success_value: Any = None
    message_id_path: str | None = None
    timeout: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _templates_compile(self) -> HttpSmsConfig:
        fields: list[tuple[str, SandboxedEnvironment, str | None]] = [
            ("url", _URL_ENV, self.url),
            ("body", _TEXT_ENV, self.body),
        ]
        fields += [(f"headers.{name}", _TEXT_ENV, value) for name, value in self.headers.items()]
        problem = url_problem(self.url)  # the scheme and host must be written out, not come from a template value
        if problem:
            raise ValueError(f"http_sms.url: {problem}")
        for name, env, source in fields:
            if source is None:
                continue
            try:
                env.from_string(source)
            except TemplateError as exc:
                raise ValueError(f"http_sms.{name}: invalid template: {exc}") from None
        return self


def json_path(document: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path (`data.items.0.id`), or `default` when any step is missing."""
    node = document
    for step in path.split("."):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return default
    return node


class HttpSmsProvider:
    """Sends an SMS through any HTTP gateway described by templates."""

    medium: ClassVar[Medium] = Medium.SMS
    name: ClassVar[str] = "http_sms"
    config_model: ClassVar[type[BaseModel]] = HttpSmsConfig

    def __init__(self, config: HttpSmsConfig, session: aiohttp.ClientSession | None = None) -> None:
        if session is None:
            raise ValueError("HttpSmsProvider needs an aiohttp.ClientSession")
        self.config = config
        self.session = session
        self._url = _URL_ENV.from_string(config.url)
        self._body = _TEXT_ENV.from_string(config.body) if config.body is not None else None
        self._headers = {k: _TEXT_ENV.from_string(v) for k, v in config.headers.items()}
        self._secret_values = {k: v.get_secret_value() for k, v in config.secrets.items()}

    def render(self, to: Contact, message: Message) -> tuple[str, dict[str, str], str | None]:
        """The request (url, headers, body) for one message; template errors are permanent."""
        if not to.phone:
            raise DeliveryError(f"http_sms: member {to.member_id} has no phone number", retryable=False)
        context = {"to": to, "message": message, "secret": self._secret_values}
        try:
            url = self._url.render(context)
            headers = {k: t.render(context) for k, t in self._headers.items()}
            body = self._body.render(context) if self._body is not None else None
        except TemplateError as exc:
            text = redact(
                f"http_sms: template failed ({type(exc).__name__}): {exc}", self._secret_values.values()
            )
            raise DeliveryError(text[:DETAIL_LIMIT], retryable=False) from None
        return url, headers, body

    async def send(self, to: Contact, message: Message) -> str:
        """Render and send the request; return the gateway's message id ("" when it gives none)."""
        url, headers, body = self.render(to, message)
        # Header values are usually credentials (Authorization, X-Api-Key): never show them.
        secrets = [*self._secret_values.values(), *headers.values()]
        reply = await send_request(
            self.session,
            self.config.method,
            url,
            provider="http_sms",
            timeout=self.config.timeout,
            secrets=secrets,
            headers=headers,
            data=body.encode("utf-8") if body is not None else None,
        )
        if not reply.ok:
            raise error_for_status("http_sms", reply, reply.text()[:200], secrets)
        document = reply.json()
        cfg = self.config
        if cfg.success_path is not None:
            got = json_path(document, cfg.success_path, _MISSING)
            if got is _MISSING or got != cfg.success_value:
                detail = redact(f"http_sms: gateway refused: {reply.text()[:200]}", secrets)
                raise DeliveryError(detail[:DETAIL_LIMIT], retryable=False)
        if cfg.message_id_path is not None:
            found = json_path(document, cfg.message_id_path)
            if found is not None:
                return str(found)
        return ""
