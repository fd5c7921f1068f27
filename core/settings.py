"""Runtime settings, read from `VIGIL_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.egress import EgressPolicy
from core.oidc import issuer_problem
from core.types import Role

# The admin token is the key to everything: 32 characters of a random token is ~190 bits; anything shorter
# is likely a word someone chose.
MIN_ADMIN_TOKEN_CHARS = 32


class Settings(BaseSettings):
    """Everything a deployment configures; see app.json for the descriptions shown to operators."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_file=".env", extra="ignore")

    database_url: str = Field(default="", description="sqlite:///path or postgresql://...; empty = ./data/vigil.db")
    redis_url: str = Field(default="", description="redis://...; empty = run jobs in-process")
    admin_token: str = Field(default="", description="Bearer token accepted as admin by the Open API "
                             f"(at least {MIN_ADMIN_TOKEN_CHARS} characters)")
    metrics_token: str = Field(default="", description="Bearer token /metrics requires; empty = /metrics is open")
    base_url: str = Field(default="", description="Public URL of this Vigil, used in links and push URLs")
    host: str = "127.0.0.1"
    port: int = 8080
    secret_key: str = Field(default="", description="Key that encrypts bot secrets and app credentials at rest")
    max_body_bytes: int = 1024 * 1024
    body_read_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request body that has not fully arrived after this long is refused (408)")
    # Alertmanager puts a whole group in one notification (webhook_config max_alerts: 0 = all of it), so a
    # storm arrives as a few huge requests; past this many alerts a request is refused (413) before parsing.
    max_alerts_per_request: int = Field(
        default=1000, ge=1, description="Most alerts one ingest request may carry; more gets 413")
    # Counted in alerts, not requests (webhooks/ratelimit.py): a full-size request fits in a second's budget.
    ingest_rate_per_second: int = Field(default=1000, ge=1, description="Alerts per second per integration")
    ingest_rate_per_minute: int = Field(default=10000, ge=1, description="Alerts per minute per integration")
    sweep_interval_seconds: float = 2.0
    delivery_retry_budget_seconds: float = Field(
        default=600.0, gt=0, description="How long a failing delivery keeps retrying its provider (time, not count)")
    delivery_handover_seconds: float = Field(
        default=60.0, ge=0, description="After this long failing, the member's next medium is paged as well")
    log_level: str = "INFO"
    # Media providers, as JSON: {"provider": "email" | "twilio_sms" | "aliyun_sms" | "http_sms" | "twilio_voice",
    # ...that provider's settings}. Unset = that medium is not available (pages fall back past it).
    # SMS and voice also take a JSON list of such objects: the providers in order, a failing one skipped to the next.
    email: dict[str, Any] | None = Field(default=None, description="SMTP settings for the email medium (JSON)")
    sms: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="SMS provider settings (JSON object, or a list of them tried in order)")
    voice: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="Voice provider settings (JSON object, or a list of them tried in order)")
    # E-mail integrations (webhooks/mail_server.py): `vigil serve` receives their mail over SMTP when a port is set.
    mail_port: int = Field(default=0, ge=0, le=65535,
                           description="SMTP port e-mail integrations receive alerts on; 0 = no SMTP receiver")
    mail_host: str = Field(default="", description="Address the SMTP receiver listens on; empty = VIGIL_HOST")
    mail_domain: str = Field(default="", max_length=200,
                             description="Mail domain of e-mail integrations' addresses (<key>@<domain>); its MX "
                                         "record points at this SMTP receiver")
    mail_max_bytes: int = Field(default=1024 * 1024, ge=1024,
                                description="Largest message the SMTP receiver accepts (announced as SMTP SIZE)")
    # Outgoing requests never reach loopback, link-local, private or other internal addresses unless listed here.
    egress_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Internal targets Vigil may send to: CIDRs, IPs, host names or *.domain, "
                                          "comma-separated (default: public addresses only)")

    web_session_check_seconds: float = Field(
        default=15.0, gt=0, le=3600, description="How often each web process looks for signed-out sessions among "
                                                 "its open live streams (bot/web/signed_out.py)")

    # Single sign-on over OpenID Connect (bot/web/oidc.py): on when an issuer is set. The provider's host must be
    # reachable under the egress policy like any outgoing request (an internal Keycloak needs VIGIL_EGRESS_ALLOW).
    oidc_issuer: str = Field(default="", description="OpenID Connect issuer URL for single sign-on (its "
                             "/.well-known/openid-configuration is read); empty = single sign-on off")
    oidc_client_id: str = Field(default="", description="Client id Vigil is registered with at the provider")
    oidc_client_secret: str = Field(default="", description="Client secret Vigil is registered with at the provider")
    oidc_scopes: str = Field(default="openid email profile", description="Scopes asked for (space-separated)")
    oidc_name: str = Field(default="single sign-on", max_length=60,
                           description="What the sign-in button names: 'Sign in with <name>'")
    oidc_auto_provision_role: str = Field(
        default="", description="Role a new member gets when someone with a verified e-mail no member has signs "
                                "in (observer, responder or admin); empty = no auto-provisioning")

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _split_allow_list(cls, value: Any) -> Any:
        # An operator writes `10.0.0.0/8, hooks.internal` in the environment, not JSON.
        return [e for e in re.split(r"[,\s]+", value) if e] if isinstance(value, str) else value

    @field_validator("egress_allow")
    @classmethod
    def _check_allow_list(cls, value: list[str]) -> list[str]:
        EgressPolicy.parse(value)  # a bad entry stops the start with its name, rather than being ignored
        return value

    def egress_policy(self) -> EgressPolicy:
        """The egress allow-list, parsed."""
        return EgressPolicy.parse(self.egress_allow)

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        problem = issuer_problem(value) if value else None
        if problem:
            raise ValueError(f"VIGIL_OIDC_ISSUER {problem}")
        return value.rstrip("/")

    @field_validator("oidc_auto_provision_role")
    @classmethod
    def _provision_role(cls, value: str) -> str:
        if value and value not in {r.value for r in Role}:
            raise ValueError(f"VIGIL_OIDC_AUTO_PROVISION_ROLE {value!r} is not a role; use observer, responder or "
                             "admin, or leave it empty to turn auto-provisioning off")
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError("VIGIL_OIDC_ISSUER is set, so VIGIL_OIDC_CLIENT_ID and VIGIL_OIDC_CLIENT_SECRET are "
                             "needed too (from the client registered for Vigil at the provider)")
        if "openid" not in self.oidc_scopes.split():
            raise ValueError("VIGIL_OIDC_SCOPES must include 'openid'")
        return self

    @model_validator(mode="after")
    def _mail_complete(self) -> Settings:
        if self.mail_port and not self.mail_domain:
            raise ValueError("VIGIL_MAIL_PORT is set, so VIGIL_MAIL_DOMAIN is needed too: the domain of the "
                             "e-mail integrations' addresses, whose MX record points at this host")
        if self.mail_domain and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+",
                                                 self.mail_domain):
            raise ValueError(f"VIGIL_MAIL_DOMAIN {self.mail_domain!r} is not a domain name (e.g. alerts.example.com)")
        return self

    @field_validator("admin_token")
    @classmethod
    def _long_admin_token(cls, value: str) -> str:
        if value and len(value) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(f"{len(value)} characters is too short for the admin token; use at least "
                             f"{MIN_ADMIN_TOKEN_CHARS} (python -c 'import secrets; print(secrets.token_urlsafe(32))' makes one)")
        return value

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: default SQLite file under ./data, drivers made explicit."""
        url = self.database_url
        if not url:
            Path("data").mkdir(exist_ok=True)
            url = "sqlite:///data/vigil.db"
        return to_async_url(url)

    def resolved_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")


def to_async_url(url: str) -> str:
    """Map user-facing URLs (postgres://, postgresql://, sqlite://) to their asyncio drivers."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+vigil://"),  # core/db_sqlite.py: SQLite inline on the loop
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix):]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
