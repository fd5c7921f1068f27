"""Alibaba Cloud SMS (dysmsapi `SendSms`, RPC style, signature version 1.0).

Signing follows https://www.alibabacloud.com/help/en/sms/signature-method. Aliyun answers HTTP 200
with an error `Code` for business failures, so a 200 is not success until `Code` is "OK".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar, Literal
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.adapters._http import DETAIL_LIMIT, Reply, error_for_status, redact, send_request
from bot.adapters.errors import DeliveryError
from bot.media.base import Contact, HttpUrlStr, Medium, Message

API_VERSION = "2017-05-25"
# Codes that may succeed later (https://help.aliyun.com/document_detail/101346.html): per-number
# frequency limits, account throttling and Aliyun-side faults. Everything else is permanent.
RETRYABLE_CODES = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isp.SYSTEM_ERROR",
    "ServiceUnavailable",
    "InternalError",
}
RETRYABLE_PREFIXES = ("Throttling",)
# BUSINESS_LIMIT_CONTROL's tightest window is one message per number per minute.
RATE_LIMIT_WAIT = 60.0

MessageField = Literal["subject", "text", "incident_id"]


class AliyunSmsConfig(BaseModel):
    """Credentials, the approved sign name and template, and which message fields fill the template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr
    sign_name: str = Field(min_length=1)
    template_code: str = Field(min_length=1)
    # Template variable name -> message field; e.g. a template "Vigil: ${title}" needs {"title": "subject"}.
    template_params: dict[str, MessageField] = Field(default_factory=lambda: {"title": "subject"})
    # Aliyun caps each variable's length (35 characters for most variable types).
    param_max_chars: int = Field(default=35, gt=0)
    base_url: HttpUrlStr = "https://dysmsapi.aliyuncs.com"
    region_id: str = "cn-hangzhou"
    timeout: float = Field(default=10.0, gt=0)


def percent_encode(value: str) -> str:
    """Aliyun's POP encoding: RFC 3986 unreserved characters kept, everything else %XX of UTF-8."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, percent-encoded query that is signed (the Signature parameter excluded)."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )


def rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Signature v1.0: base64(HMAC-SHA1(secret + "&", METHOD&%2F&encode(canonical query)))."""
    string_to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def to_aliyun_number(phone: str) -> str:
    """Aliyun takes the country code without '+' (e.g. 8613800000000 or 85291234567)."""
    return phone.removeprefix("+")


class AliyunSmsProvider:
    """Sends a templated SMS through Alibaba Cloud's SendSms API."""

    medium: ClassVar[Medium] = Medium.SMS
    name: ClassVar[str] = "aliyun_sms"
    config_model: ClassVar[type[BaseModel]] = AliyunSmsConfig

    def __init__(self, config: AliyunSmsConfig, session: aiohttp.ClientSession | None = None) -> None:
        if session is None:
            raise ValueError("AliyunSmsProvider needs an aiohttp.ClientSession")
        self.config = config
        self.session = session
        self._secrets = [config.access_key_secret.get_secret_value()]

    def request_params(self, to: Contact, message: Message, now: datetime, nonce: str) -> dict[str, str]:
        """The signed SendSms parameters for one message."""
        if not to.phone:
            raise DeliveryError(f"aliyun_sms: member {to.member_id} has no phone number", retryable=False)
        cfg = self.config
        values = {"subject": message.subject, "text": message.text, "incident_id": message.incident_id}
        template = {name: values[field][: cfg.param_max_chars] for name, field in cfg.template_params.items()}
        params = {
            "AccessKeyId": cfg.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": message.incident_id[:64],
            "PhoneNumbers": to_aliyun_number(to.phone),
            "RegionId": cfg.region_id,
            "SignName": cfg.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": nonce,
            "SignatureVersion": "1.0",
            "TemplateCode": cfg.template_code,
            "TemplateParam": json.dumps(template, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }
        params["Signature"] = rpc_signature("POST", params, cfg.access_key_secret.get_secret_value())
        return params

    async def send(self, to: Contact, message: Message) -> str:
        """Call SendSms and return the BizId; an error Code in a 200 reply still raises."""
        params = self.request_params(to, message, datetime.now(UTC), uuid.uuid4().hex)
        reply = await send_request(
            self.session,
            "POST",
            self.config.base_url.rstrip("/") + "/",
            provider="aliyun_sms",
            timeout=self.config.timeout,
            secrets=self._secrets,
            data=params,
        )
        body = reply.json()
        code = str(body.get("Code", "")) if isinstance(body, dict) else ""
        detail = (
            f"{code or 'no Code'}: {body.get('Message', '')}"
            if isinstance(body, dict)
            else reply.text()[:200]
        )
        if reply.ok and code == "OK" and body.get("BizId"):
            return str(body["BizId"])
        raise _error(reply, code, detail, self._secrets)


# Errors about the number itself: another vendor would refuse it too.
RECIPIENT_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})


def _error(reply: Reply, code: str, detail: str, secrets: list[str]) -> DeliveryError:
    # The Code decides first (throttling may come as HTTP 400 or as 200); the HTTP status second.
    by_code = code in RETRYABLE_CODES or code.startswith(RETRYABLE_PREFIXES)
    if not reply.ok:
        error = error_for_status("aliyun_sms", reply, detail, secrets)
        if not by_code or error.retryable:
            return error
        return DeliveryError(str(error), retryable=True, retry_after=error.retry_after)
    retry_after = RATE_LIMIT_WAIT if code == "isv.BUSINESS_LIMIT_CONTROL" else None
    message = redact(f"aliyun_sms: {detail or 'reply is not JSON'}"[:DETAIL_LIMIT], secrets)
    return DeliveryError(message, retryable=by_code, retry_after=retry_after, recipient=code in RECIPIENT_CODES)
