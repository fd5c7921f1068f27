"""Email over SMTP with aiosmtplib: implicit TLS or STARTTLS, optional AUTH, text with optional HTML."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import ClassVar

import aiohttp
import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.adapters._http import DETAIL_LIMIT, redact
from bot.adapters.errors import DeliveryError
from bot.media.base import Contact, Medium, Message


class EmailConfig(BaseModel):
    """SMTP server, credentials and sender; `start_tls=None` upgrades only when the server offers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: 465 with use_tls, 587 with start_tls, else 25"
    )
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    start_tls: bool | None = None
    from_addr: str
    # A CA bundle to trust instead of the system store (a private CA or a self-signed server).
    ca_file: str | None = None
    validate_certs: bool = True
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("from_addr")
    @classmethod
    def _from_has_address(cls, value: str) -> str:
        if "@" not in parseaddr(value)[1]:
            raise ValueError(f"email.from_addr must contain an address like vigil@example.com, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailConfig:
        if self.use_tls and self.start_tls:
            raise ValueError("email: use_tls (implicit TLS) and start_tls cannot both be on")
        if (self.username is None) != (self.password is None):
            raise ValueError("email: username and password must be set together")
        return self


class EmailProvider:
    """Sends a notification email; SMTP 5xx replies are permanent, 4xx and network trouble retryable."""

    medium: ClassVar[Medium] = Medium.EMAIL
    name: ClassVar[str] = "email"
    config_model: ClassVar[type[BaseModel]] = EmailConfig

    def __init__(self, config: EmailConfig, session: aiohttp.ClientSession | None = None) -> None:
        self.config = config
        self._secrets = [config.password.get_secret_value()] if config.password else []

    def compose(self, to: Contact, message: Message) -> EmailMessage:
        """The MIME message: plain text, plus an HTML alternative when the message has one."""
        if not to.email:
            raise DeliveryError(f"email: member {to.member_id} has no email address", retryable=False)
        domain = parseaddr(self.config.from_addr)[1].rpartition("@")[2]
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.config.from_addr
        mail["To"] = formataddr((to.name, to.email))
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain=domain)
        mail["X-Vigil-Incident"] = message.incident_id
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        return mail

    async def send(self, to: Contact, message: Message) -> str:
        """Send over SMTP and return the Message-ID header."""
        cfg = self.config
        mail = self.compose(to, message)
        try:
            await aiosmtplib.send(
                mail,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=cfg.password.get_secret_value() if cfg.password else None,
                use_tls=cfg.use_tls,
                start_tls=cfg.start_tls,
                validate_certs=cfg.validate_certs,
                cert_bundle=cfg.ca_file,
                timeout=cfg.timeout,
            )
        except Exception as exc:  # noqa: BLE001 - every failure must leave as a DeliveryError
            raise self._classify(exc) from None
        return str(mail["Message-ID"])

    def _classify(self, exc: Exception) -> DeliveryError:
        retryable, text = _classify(exc)
        message = redact(f"email: {text}"[:DETAIL_LIMIT], self._secrets)
        return DeliveryError(message, retryable=retryable)


def _classify(exc: Exception) -> tuple[bool, str]:
    # Order matters: aiosmtplib's timeout and connect errors are also OSErrors / response errors.
    if isinstance(exc, DeliveryError):
        return exc.retryable, str(exc)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return any(code < 500 for code in codes), f"recipient refused: {text}"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return True, "SMTP server timed out"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return exc.code < 500, f"authentication failed: {exc.code}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # RFC 5321 4.2.1: 4yz is a transient negative reply, 5yz a permanent one.
        return not 500 <= exc.code < 600, f"{exc.code} {exc.message}"
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        return False, f"TLS failed ({type(exc).__name__})"
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # The server lacks something the config requires (STARTTLS, AUTH): fixing it takes a person.
        return False, f"not supported by server: {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected | OSError):
        return True, f"connection failed: {exc or type(exc).__name__}"
    return False, f"{type(exc).__name__}: {exc}"
