"""Twilio SMS and voice over Twilio's REST API, plus the pure helpers for the keypad callback.

The official `twilio` package is not used: its async client builds its own aiohttp session and
hard-codes api.twilio.com per domain, so it can neither share our session nor reach a fake without
patching internals. The REST calls are two form POSTs with basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.etree import ElementTree as ET

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.adapters._http import Reply, error_for_status, send_request
from bot.adapters.errors import DeliveryError
from bot.media.base import E164, Contact, HttpUrlStr, Medium, Message

# https://www.twilio.com/docs/sms/api/message-resource: a body may span up to 1600 characters.
SMS_LIMIT = 1600
# https://www.twilio.com/docs/voice/api/call-resource: the Twiml parameter is limited to 4000 characters.
TWIML_LIMIT = 4000
KEYPAD: dict[str, str] = {"1": "ack", "2": "escalate"}
TOKEN_PARAM = "token"


class TwilioConfig(BaseModel):
    """Account credentials and the caller id; `callback_url` is Vigil's public keypad endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sid: str = Field(pattern=r"^AC\w+$")
    auth_token: SecretStr
    from_number: str = Field(pattern=E164.pattern)
    base_url: HttpUrlStr = "https://api.twilio.com"
    callback_url: str | None = None
    language: str = "en-US"
    timeout: float = Field(default=10.0, gt=0)


# Errors about the number itself (https://www.twilio.com/docs/api/errors): invalid (21211, 21217), cannot be
# called (21214), opted out with STOP (21610), cannot take SMS (21614). Any other vendor would fail it too.
RECIPIENT_CODES = frozenset({21211, 21214, 21217, 21610, 21614})


class _TwilioBase:
    config_model: ClassVar[type[BaseModel]] = TwilioConfig

    def __init__(self, config: TwilioConfig, session: aiohttp.ClientSession | None = None) -> None:
        if session is None:
            raise ValueError(f"{type(self).__name__} needs an aiohttp.ClientSession")
        self.config = config
        self.session = session
        self._secrets = [config.auth_token.get_secret_value()]
        # Built by hand: aiohttp 3.14 deprecates BasicAuth, and encode_basic_auth is not in older 3.x.
        credentials = f"{config.account_sid}:{config.auth_token.get_secret_value()}".encode()
        self._basic_auth = "Basic " + base64.b64encode(credentials).decode()

    def _phone(self, to: Contact) -> str:
        if not to.phone:
            raise DeliveryError(f"twilio: member {to.member_id} has no phone number", retryable=False,
                                recipient=True)
        return to.phone

    async def _create(self, resource: str, form: dict[str, str]) -> str:
        cfg = self.config
        url = f"{cfg.base_url.rstrip('/')}/2010-04-01/Accounts/{cfg.account_sid}/{resource}.json"
        reply = await send_request(
            self.session,
            "POST",
            url,
            provider="twilio",
            timeout=cfg.timeout,
            secrets=self._secrets,
            data=form,
            headers={"Authorization": self._basic_auth},
        )
        body = reply.json()
        if not reply.ok:
            error = error_for_status("twilio", reply, _error_detail(reply, body), self._secrets)
            error.recipient = isinstance(body, dict) and body.get("code") in RECIPIENT_CODES
            raise error
        if not isinstance(body, dict) or not body.get("sid"):
            raise DeliveryError("twilio: success reply without a sid", retryable=True)
        return str(body["sid"])


class TwilioSmsProvider(_TwilioBase):
    """Sends an SMS through Twilio's Messages resource."""

    medium: ClassVar[Medium] = Medium.SMS
    name: ClassVar[str] = "twilio_sms"

    async def send(self, to: Contact, message: Message) -> str:
        """Create a Message and return its SID."""
        body = (message.text or message.subject)[:SMS_LIMIT]
        return await self._create(
            "Messages", {"To": self._phone(to), "From": self.config.from_number, "Body": body}
        )


class TwilioVoiceProvider(_TwilioBase):
    """Places a call through Twilio's Calls resource that reads the incident and offers a keypad menu."""

    medium: ClassVar[Medium] = Medium.VOICE
    name: ClassVar[str] = "twilio_voice"

    async def send(self, to: Contact, message: Message) -> str:
        """Create a Call with inline TwiML and return its SID."""
        twiml = twiml_for(message, self.config.callback_url, self.config.language)
        return await self._create(
            "Calls", {"To": self._phone(to), "From": self.config.from_number, "Twiml": twiml}
        )


def twiml_for(message: Message, callback_url: str | None, language: str = "en-US") -> str:
    """TwiML that reads the incident title and, given a callback and token, gathers one keypad digit."""
    response = ET.Element("Response")
    parent = response
    if callback_url and message.action_token:
        sep = "&" if "?" in callback_url else "?"
        action = f"{callback_url}{sep}{urlencode({TOKEN_PARAM: message.action_token})}"
        parent = ET.SubElement(
            response,
            "Gather",
            numDigits="1",
            action=action,
            method="POST",
            timeout="10",
            actionOnEmptyResult="false",
        )
        prompt = "Press 1 to acknowledge, 2 to escalate."
    else:
        prompt = ""
    # Leave room for the markup and the prompt: the title is what gets cut when it is too long.
    title = message.subject[: TWIML_LIMIT // 4]
    say = ET.SubElement(parent, "Say", language=language, loop="2")
    say.text = f"Vigil alert. {title}. {prompt}".strip()
    if parent is not response:
        goodbye = ET.SubElement(response, "Say", language=language)
        goodbye.text = "No input received. Goodbye."
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding="unicode")


def twiml_say(text: str, language: str = "en-US") -> str:
    """TwiML that says `text` and hangs up: the answer to a keypad callback."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say", language=language).text = text
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(response, encoding="unicode")


def parse_keypad(params: Mapping[str, str]) -> tuple[str, str] | None:
    """(action, token) from a Gather callback's query and form parameters merged; None for other digits."""
    action = KEYPAD.get((params.get("Digits") or "").strip())
    token = params.get(TOKEN_PARAM) or ""
    if action is None or not token:
        return None
    return action, token


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """X-Twilio-Signature for a form POST: base64(HMAC-SHA1(token, url + sorted key+value pairs))."""
    pairs = params.items() if isinstance(params, Mapping) else params
    payload = url + "".join(k + v for k, v in sorted(pairs))
    digest = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], signature: str
) -> bool:
    """True when `signature` matches `url` and the POST `params`, compared in constant time.

    Twilio may sign the URL with or without the default port, so both forms are tried, as Twilio's
    own validators do (https://www.twilio.com/docs/usage/security#validating-requests).
    """
    if not signature or not auth_token:
        return False
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    expected = signature.encode()
    ok = False
    for candidate in _url_variants(url):
        # No early exit: every variant is checked so timing does not tell which one matched.
        ok |= hmac.compare_digest(twilio_signature(auth_token, candidate, pairs).encode(), expected)
    return ok


def _url_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    bare = urlunsplit(parts._replace(netloc=_netloc(parts, host)))
    port = parts.port or default
    with_port = urlunsplit(parts._replace(netloc=_netloc(parts, f"{host}:{port}"))) if port else url
    return list(dict.fromkeys([url, bare, with_port]))


def _netloc(parts: Any, hostport: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{hostport}" if userinfo else hostport


def _error_detail(reply: Reply, body: Any) -> str:
    # Twilio errors look like {"code": 21211, "message": "...", "more_info": "...", "status": 400}.
    if isinstance(body, dict) and "message" in body:
        return f"Twilio error {body.get('code')}: {body.get('message')}"
    return reply.text()[:200]
