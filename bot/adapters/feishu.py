"""Feishu / Lark: cards through im/v1 messages (lark-oapi), clicks as `card.action.trigger` HTTP callbacks, and
chat commands as `im.message.receive_v1` events on the same callback URL, answered with im/v1 message reply.

Docs: https://open.feishu.cn/document/server-docs/im-v1/message/create (send),
https://open.feishu.cn/document/server-docs/im-v1/message-card/patch (update),
https://open.feishu.cn/document/feishu-cards/card-callback-communication (click and its answer),
https://open.feishu.cn/document/server-docs/event-subscription-guide/event-subscription-configure-/encrypt-key-encryption-configuration-case
(encryption and signature), https://open.feishu.cn/document/server-docs/contact-v3/user/batch_get_id
(directory), https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code (error codes),
https://open.feishu.cn/document/server-docs/im-v1/message/events/receive (message event),
https://open.feishu.cn/document/server-docs/im-v1/message/reply (reply). The SDK's EventDispatcherHandler runs
its handlers synchronously and checks signatures in a way that is not constant-time, so events are parsed
with its models (P2CardActionTrigger, P2ImMessageReceiveV1) after `verify`, as it would parse them.
Lark is the same API on https://open.larksuite.com: one adapter, `settings["base_url"]` picks the site.

The SDK's automatic token handling fetches the tenant token with blocking `requests` even inside its
`a*` calls and caches it process-wide by app id, so the client runs in the SDK's manual-token mode
(`enable_set_token`): the adapter fetches the token through the SDK's async `tenant_access_token.ainternal`
and passes it per call, which also lets it drop a rejected token and retry once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiohttp
import httpx
import lark_oapi as lark
from lark_oapi.api.auth.v3 import InternalTenantAccessTokenRequest, InternalTenantAccessTokenRequestBody
from lark_oapi.api.contact.v3 import BatchGetIdUserRequest, BatchGetIdUserRequestBody
from lark_oapi.api.im.v1 import (
    CreateMessageRequest,
    CreateMessageRequestBody,
    P2ImMessageReceiveV1,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)
from lark_oapi.core.exception import UnmarshalException
from lark_oapi.core.token import AccessTokenResponse
from lark_oapi.core.utils import AESCipher
from lark_oapi.event.callback.model.p2_card_action_trigger import (
    P2CardActionTrigger,
    P2CardActionTriggerResponse,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.adapters._http import parse_retry_after, redact
from bot.adapters.base import (
    ActionEvent,
    CallbackId,
    ChatMessage,
    ChatTarget,
    HttpReply,
    InboundRequest,
    MessageRef,
    Outcome,
    replayable_for,
)
from bot.adapters.errors import DeliveryError
from bot.egress import EgressRefused, policy_of, preflight
from core.egress import EgressPolicy
from core.types import Platform

CARD_ACTION = "card.action.trigger"
MESSAGE_RECEIVED = "im.message.receive_v1"
MENTION_KEY = re.compile(r"(@_user_\d+)")  # a mention's placeholder in a text message's `text`
URL_VERIFICATION = "url_verification"
# Feishu documents no window; five minutes, as Slack uses, bounds a replay while tolerating clock skew.
SIGNATURE_WINDOW_S = 300
REPLAYABLE = replayable_for(timedelta(seconds=SIGNATURE_WINDOW_S))
TOKEN_CODES = frozenset({99991661, 99991663, 99991668})  # missing / invalid / expired access token
RATE_CODES = frozenset({99991400, 11232, 230020})  # gateway, message service and per-chat frequency limits
GONE_CODES = frozenset({230013})  # "Bot has NO availability to this user": left, or out of the app's scope
DEFAULT_RETRY_AFTER = 1.0
RECEIVE_ID_PREFIXES = (("ou_", "open_id"), ("on_", "union_id"), ("oc_", "chat_id"))


class FeishuConfig(BaseModel):
    """An IM app's settings and secrets (merged). `encrypt_key` is optional on the developer console, but
    without it callbacks are not signed: they are refused unless the admin sets `allow_unsigned`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = Field(min_length=1)
    app_secret: SecretStr = Field(min_length=1)
    verification_token: SecretStr = Field(min_length=1)
    encrypt_key: SecretStr = SecretStr("")
    # Accept callbacks checked by the verification token alone: anyone who learns that static token can
    # forge any click, so it is an explicit choice, and the app lists it among its problems.
    allow_unsigned: bool = False
    base_url: str = "https://open.feishu.cn"
    timeout: float = Field(default=10.0, gt=0)


class FeishuApi:
    """The SDK client plus a tenant token fetched asynchronously, refreshed early and once on rejection."""

    def __init__(self, config: FeishuConfig, policy: EgressPolicy | None = None) -> None:
        self.config = config
        # lark-oapi sends through its own httpx client, which our guarded connector never sees: each call
        # resolves the base URL first and goes ahead only if the egress policy allows an address of it.
        self.policy = policy
        # Raises ValueError for a base URL that is not an https origin (http only on loopback, for tests).
        self.client = (lark.Client.builder().app_id(config.app_id).app_secret(config.app_secret.get_secret_value())
                       .domain(config.base_url.rstrip("/")).timeout(config.timeout).enable_set_token(True)
                       .log_level(lark.LogLevel.ERROR).build())
        self._token: tuple[str, float] | None = None
        self._issued: list[str] = []  # recent tokens, redacted from errors even after a refresh
        self._lock = asyncio.Lock()

    def secrets(self) -> list[str]:
        cfg = self.config
        return [cfg.app_secret.get_secret_value(), cfg.verification_token.get_secret_value(),
                cfg.encrypt_key.get_secret_value(), *self._issued]

    async def token(self, *, stale: str | None = None) -> str:
        async with self._lock:
            if self._token and self._token[0] != stale and time.monotonic() < self._token[1]:
                return self._token[0]
            body = (InternalTenantAccessTokenRequestBody.builder().app_id(self.config.app_id)
                    .app_secret(self.config.app_secret.get_secret_value()).build())
            resp = await self._send(self.client.auth.v3.tenant_access_token.ainternal(
                InternalTenantAccessTokenRequest.builder().request_body(body).build()), "tenant token")
            # The generated model nests the token under `data`; the endpoint answers flat, as the SDK's own
            # token manager reads it.
            flat = AccessTokenResponse(json.loads(resp.raw.content)) if resp.raw else None
            token = flat.tenant_access_token if flat else None
            if not resp.success() or not isinstance(token, str) or not token:
                raise self._error(resp, "tenant token", direct=False)
            # Refresh ten minutes early, as the SDK does (halfway for short-lived tokens), so it never expires
            # mid-call.
            expire = flat.expire if flat and isinstance(flat.expire, int) and flat.expire > 0 else 7200
            self._token = (token, time.monotonic() + expire - min(600, expire / 2))
            self._issued = [*self._issued[-2:], token]
            return token

    async def call(self, what: str, make: Callable[[lark.RequestOption], Awaitable[Any]], *,
                   direct: bool = False) -> Any:
        """Run one SDK call with the tenant token; a token rejection refreshes it and retries once."""
        token = await self.token()
        resp = await self._send(make(lark.RequestOption.builder().tenant_access_token(token).build()), what)
        if resp.code in TOKEN_CODES:
            token = await self.token(stale=token)
            resp = await self._send(make(lark.RequestOption.builder().tenant_access_token(token).build()), what)
        if not resp.success():
            raise self._error(resp, what, direct=direct)
        return resp

    async def _send(self, call: Coroutine[Any, Any, Any], what: str) -> Any:
        if self.policy is not None:
            try:
                await preflight(self.config.base_url, self.policy)
            except (EgressRefused, OSError) as exc:
                call.close()  # never sent
                refused = isinstance(exc, EgressRefused)
                raise DeliveryError(f"feishu: {what}: {exc if refused else type(exc).__name__}",
                                    retryable=not refused) from None
        try:
            return await call
        except (ValueError, UnmarshalException):  # the SDK parses every answer as JSON: a proxy's HTML page
            raise DeliveryError(f"feishu: {what}: the answer was not Feishu JSON", retryable=True) from None
        except httpx.HTTPError as exc:  # the SDK's transport: connection errors and timeouts (text may carry URLs)
            raise DeliveryError(f"feishu: {what}: {type(exc).__name__}", retryable=True) from None

    def _error(self, resp: Any, what: str, *, direct: bool) -> DeliveryError:
        raw = resp.raw
        status = raw.status_code if raw is not None else 0
        headers = {k.lower(): v for k, v in (raw.headers or {}).items()} if raw is not None else {}
        message = redact(f"feishu: {what}: HTTP {status}, code {resp.code}: {resp.msg or ''}"[:300], self.secrets())
        if status == 429 or resp.code in RATE_CODES:
            # The gateway says when its window resets in x-ogw-ratelimit-reset (seconds).
            wait = parse_retry_after(headers.get("x-ogw-ratelimit-reset") or headers.get("retry-after"),
                                     datetime.now(UTC))
            return DeliveryError(message, retryable=True, retry_after=DEFAULT_RETRY_AFTER if wait is None else wait)
        if resp.code in GONE_CODES:
            return DeliveryError(message, retryable=False, gone=direct)
        return DeliveryError(message, retryable=status >= 500)


class FeishuDirectory:
    """Auto-match by email or mobile through contact/v3 `users/batch_get_id`, returning open_ids."""

    platform: ClassVar[Platform] = Platform.FEISHU

    def __init__(self, api: FeishuApi) -> None:
        self.api = api

    async def lookup(self, *, email: str | None, phone: str | None) -> tuple[str, str] | None:
        """The open_id of the active user with this email (tried first) or mobile, or None."""
        if not email and not phone:
            return None
        body = BatchGetIdUserRequestBody.builder().include_resigned(False)
        if email:
            body = body.emails([email])
        if phone:
            # Mainland China numbers are looked up without their country code, others with it.
            body = body.mobiles([phone[3:] if phone.startswith("+86") else phone])
        request = BatchGetIdUserRequest.builder().user_id_type("open_id").request_body(body.build()).build()
        resp = await self.api.call("user lookup", lambda opt: self.api.client.contact.v3.user.abatch_get_id(
            request, opt))
        found = [u for u in (resp.data.user_list if resp.data and resp.data.user_list else []) if u.user_id]
        found.sort(key=lambda u: 0 if u.email else 1)
        return (found[0].user_id, "open_id") if found else None


class FeishuAdapter:
    """Feishu/Lark interactive cards (JSON 2.0); clicks arrive as signed `card.action.trigger` callbacks."""

    platform: ClassVar[Platform] = Platform.FEISHU
    docs_url: ClassVar[str] = "https://open.feishu.cn/document/feishu-cards/card-callback-communication"
    supports_update: ClassVar[bool] = True

    def __init__(self, config: FeishuConfig, policy: EgressPolicy | None = None) -> None:
        self.config = config
        self.api = FeishuApi(config, policy)
        self.directory = FeishuDirectory(self.api)
        key = config.encrypt_key.get_secret_value()
        self._cipher = AESCipher(key) if key else None

    @classmethod
    def from_app(cls, settings: dict[str, Any], secrets: dict[str, str], *,
                 http: aiohttp.ClientSession | None = None) -> FeishuAdapter:
        """Build from an IM app row; raises ValueError naming each missing or bad setting (never its value).

        The SDK brings its own HTTP client, so the shared `http` session only lends its egress policy."""
        misplaced = sorted({"app_secret", "verification_token", "encrypt_key"} & set(settings))
        if misplaced:
            raise ValueError(f"feishu settings: {', '.join(misplaced)} belong in the app's secrets, not its settings")
        try:
            config = FeishuConfig(**{**settings, **secrets})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"feishu settings: {problems}") from None
        try:
            return cls(config, policy_of(http) if http is not None else None)
        except ValueError as exc:
            raise ValueError(f"feishu settings: base_url: {exc}") from None

    @property
    def problems(self) -> list[str]:
        """What is wrong with a working app, listed with the IM app (the app still sends cards)."""
        if self.config.encrypt_key.get_secret_value():
            return []
        if self.config.allow_unsigned:
            return ["feishu: no encrypt_key, and allow_unsigned is on: callbacks are checked by the verification "
                    "token only, so anyone who learns it can forge clicks; add the app's Encrypt Key to the secrets"]
        return ["feishu: no encrypt_key: callbacks are refused because they are not signed; add the Encrypt Key "
                "(Events & Callbacks > Encryption Strategy) to the app's secrets, or set allow_unsigned: true "
                "in its settings to accept callbacks checked by the verification token only"]

    def precheck(self, req: InboundRequest, now: datetime) -> bool:
        """Nothing to check before the body: Feishu's URL challenge and unsigned apps put everything in it."""
        return True

    def verify(self, req: InboundRequest, now: datetime) -> bool:
        """The verification token must match, the body be signed with the Encrypt Key (unless the app allows
        unsigned callbacks), and the timestamp fresh."""
        key = self.config.encrypt_key.get_secret_value()
        if not key and not self.config.allow_unsigned:
            return False
        payload = self._open(req.body)
        if payload is None:
            return False
        challenge = payload.get("type") == URL_VERIFICATION
        header = payload.get("header") if isinstance(payload.get("header"), dict) else {}
        token = payload.get("token") if challenge else header.get("token")
        expected = self.config.verification_token.get_secret_value()
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), expected.encode()):
            return False
        if challenge:
            return True  # Feishu does not sign the challenge; the SDK too checks only its token
        stamp = req.header("X-Lark-Request-Timestamp")
        if key:
            nonce, signature = req.header("X-Lark-Request-Nonce"), req.header("X-Lark-Signature")
            if not stamp or not nonce or not signature:
                return False
            if not hmac.compare_digest(sign_callback(key, stamp, nonce, req.body), signature.lower()):
                return False
        return _fresh(stamp or str(header.get("create_time") or ""), now)

    def handshake(self, req: InboundRequest) -> HttpReply | None:
        """Answer the callback URL's `url_verification` challenge by echoing it."""
        payload = self._open(req.body)
        if payload is None or payload.get("type") != URL_VERIFICATION:
            return None
        return HttpReply(200, json.dumps({"challenge": str(payload.get("challenge", ""))}).encode())

    def parse_action(self, req: InboundRequest) -> ActionEvent | None:
        """The click in a `card.action.trigger` callback: button value, snooze option, or comment form."""
        payload = self._open(req.body)
        if payload is None:
            return None
        try:
            data = P2CardActionTrigger(payload)
        except (TypeError, ValueError, UnmarshalException):
            return None
        if data.header is None or data.header.event_type != CARD_ACTION or data.event is None:
            return None
        action, operator = data.event.action, data.event.operator
        if action is None or operator is None or not isinstance(operator.open_id, str) or not operator.open_id:
            return None
        packed = action.option or (action.value or {}).get("action")
        if not isinstance(packed, str) or not packed:
            return None
        inputs = {k: v for k, v in (action.form_value or {}).items() if isinstance(v, str)}
        ctx = data.event.context
        context = {"open_message_id": ctx.open_message_id, "open_chat_id": ctx.open_chat_id} if ctx else {}
        # Feishu's event_id is unique per callback ("safe for deduplication"); it is inside the signed body.
        event_id = data.header.event_id if isinstance(data.header.event_id, str) else ""
        callback = CallbackId(event_id or hashlib.sha256(req.body).hexdigest(), REPLAYABLE)
        return ActionEvent(Platform.FEISHU, operator.open_id, packed, inputs,
                           {**context, "user_id": operator.user_id, "union_id": operator.union_id}, callback)

    def reply(self, req: InboundRequest, outcome: Outcome) -> HttpReply:
        """A toast for the clicker and, when there is one, the re-rendered card shown at once."""
        return HttpReply(200, lark.JSON.marshal(callback_answer(outcome)).encode())

    def parse_message(self, req: InboundRequest) -> ChatMessage | None:
        """A user's text message to the bot (`im.message.receive_v1`): in a group only when it starts by
        mentioning the bot (Feishu sends group messages without one to apps allowed to read them all)."""
        payload = self._open(req.body)
        if payload is None or not isinstance(payload.get("header"), dict):
            return None
        try:
            data = P2ImMessageReceiveV1(payload)
        except (TypeError, ValueError, UnmarshalException):
            return None
        if data.header is None or data.header.event_type != MESSAGE_RECEIVED or data.event is None:
            return None
        sender, message = data.event.sender, data.event.message
        if sender is None or sender.sender_type != "user" or sender.sender_id is None or message is None:
            return None
        open_id = sender.sender_id.open_id
        if not isinstance(open_id, str) or not open_id or message.message_type != "text" or not message.message_id:
            return None
        try:
            text = json.loads(message.content or "").get("text")
        except (ValueError, AttributeError):
            return None
        if not isinstance(text, str):
            return None
        by_key = {m.key: (m.id.open_id if m.id else None) for m in message.mentions or [] if m.key}
        addressed, words, mentions = False, [], []
        for part in MENTION_KEY.split(text):
            if part in by_key:
                if not "".join(words).strip():
                    addressed = True  # mentioned before any word: the message is addressed to them (the bot)
                elif by_key[part]:
                    mentions.append(str(by_key[part]))
            else:
                words.append(part)
        if message.chat_type != "p2p" and not addressed:
            return None
        event_id = data.header.event_id if isinstance(data.header.event_id, str) else ""
        callback = CallbackId(event_id or hashlib.sha256(req.body).hexdigest(), REPLAYABLE)
        return ChatMessage(Platform.FEISHU, open_id, " ".join("".join(words).split()), tuple(mentions),
                           context={"message_id": message.message_id, "chat_id": message.chat_id or ""},
                           callback=callback)

    async def send_reply(self, message: ChatMessage, text: str) -> None:
        """Reply to the message with a rich-text post: its text elements are shown as typed, so a title holding
        `<at user_id="all">` mentions nobody (a plain text message would)."""
        lines = [[{"tag": "text", "text": line}] for line in text.split("\n")]
        body = ReplyMessageRequestBody.builder().msg_type("post").content(json.dumps(
            {"zh_cn": {"title": "", "content": lines}}, ensure_ascii=False))
        if message.callback is not None:  # Feishu sends one reply per uuid, even when we retry
            body = body.uuid(hashlib.sha256(message.callback.key.encode()).hexdigest()[:50])
        request = (ReplyMessageRequest.builder().message_id(str(message.context.get("message_id", "")))
                   .request_body(body.build()).build())
        await self.api.call("reply", lambda opt: self.api.client.im.v1.message.areply(request, opt))

    async def send_card(self, to: ChatTarget, card: dict[str, Any]) -> MessageRef:
        """Post an interactive card to a user (open_id / union_id / user_id) or a group chat (chat_id)."""
        id_type = "chat_id" if not to.direct else _id_type(to.conversation_id)
        request = (CreateMessageRequest.builder().receive_id_type(id_type).request_body(
            CreateMessageRequestBody.builder().receive_id(to.conversation_id).msg_type("interactive")
            .content(json.dumps(card, ensure_ascii=False)).build()).build())
        resp = await self.api.call("send card", lambda opt: self.api.client.im.v1.message.acreate(request, opt),
                                   direct=to.direct)
        if resp.data is None or not resp.data.message_id:
            raise DeliveryError("feishu: send card: the answer carried no message_id", retryable=True)
        return MessageRef(self.platform, to.conversation_id, resp.data.message_id, {"chat_id": resp.data.chat_id})

    async def update_card(self, ref: MessageRef, card: dict[str, Any]) -> None:
        """Replace a sent card for everyone (the renderer sets `update_multi`)."""
        request = (PatchMessageRequest.builder().message_id(ref.message_id).request_body(
            PatchMessageRequestBody.builder().content(json.dumps(card, ensure_ascii=False)).build()).build())
        await self.api.call("update card", lambda opt: self.api.client.im.v1.message.apatch(request, opt))

    def _open(self, body: bytes) -> dict[str, Any] | None:
        """The callback JSON, decrypted with the SDK's cipher when it came as {"encrypt": ...}."""
        try:
            data = json.loads(body)
            if isinstance(data, dict) and isinstance(data.get("encrypt"), str):
                if self._cipher is None:
                    return None
                data = json.loads(self._cipher.decrypt_str(data["encrypt"]))
        except (ValueError, TypeError):  # bad JSON, base64, padding or UTF-8
            return None
        return data if isinstance(data, dict) else None


def sign_callback(encrypt_key: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Feishu's X-Lark-Signature: hex sha256(timestamp + nonce + encrypt_key + raw body).

    The SDK's check is private (`EventDispatcherHandler._verify_sign`) and not constant-time."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def callback_answer(outcome: Outcome) -> P2CardActionTriggerResponse:
    """The card callback answer: a success/error toast and the raw card JSON 2.0 to show at once (a Timeline
    click's view is that card with its timeline section)."""
    answer: dict[str, Any] = {}
    if outcome.text:
        answer["toast"] = {"type": "success" if outcome.ok else "error", "content": outcome.text}
    card = outcome.view or outcome.card
    if card:
        answer["card"] = {"type": "raw", "data": card}
    return P2CardActionTriggerResponse(answer)


def _id_type(receive_id: str) -> str:
    return next((kind for prefix, kind in RECEIVE_ID_PREFIXES if receive_id.startswith(prefix)), "user_id")


def _fresh(stamp: str, now: datetime) -> bool:
    # X-Lark-Request-Timestamp is in seconds; an event header's create_time in milliseconds or microseconds.
    if not stamp.isdigit():
        return False
    value = int(stamp)
    seconds = value / 1_000_000 if len(stamp) >= 16 else value / 1000 if len(stamp) >= 13 else value
    return abs(now.timestamp() - seconds) <= SIGNATURE_WINDOW_S
