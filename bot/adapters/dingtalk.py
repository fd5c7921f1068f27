"""DingTalk: cards through the card-instance OpenAPI, clicks over Stream mode (dingtalk-stream) or HTTP, and chat
commands as messages to the robot (Stream chatbot topic, or the robot's HTTP message callback, signed like card
callbacks), answered through the robot send API.

Prefer Stream mode: an HTTP callback's signature covers only its timestamp, not its body, so whoever sees
one signed request can send any body with its headers. HTTP callbacks are therefore taken only within five
minutes of their timestamp and only once per timestamp/sign pair (the click path's replay cache).

Docs: https://open.dingtalk.com/document/orgapp/create-and-deliver-cards (send),
https://open.dingtalk.com/document/orgapp/interactive-card-update-interface (update),
https://open.dingtalk.com/document/orgapp/event-callback-card (click callback and its answer),
https://open.dingtalk.com/document/orgapp/obtain-the-access_token-of-an-internal-app (token),
https://open.dingtalk.com/document/orgapp/query-users-by-phone-number (directory),
https://open-dingtalk.github.io/developerpedia/docs/learn/stream/protocol (Stream gateway),
https://open.dingtalk.com/document/orgapp/receive-message (robot message callback),
https://open.dingtalk.com/document/orgapp/chatbots-send-one-on-one-chat-messages-in-batches and
https://open.dingtalk.com/document/orgapp/the-robot-sends-a-group-message (robot replies).

The legacy `/v1.0/im/interactiveCards/send` is closed to new apps and cannot route clicks to Stream,
so cards are created with `createAndDeliver` and `callbackType: "STREAM"`. The SDK's own card helpers
swallow errors and use blocking `requests`, so the OpenAPI calls go through our shared aiohttp session;
the SDK is used for what it is for: the Stream connection (`DingTalkStreamClient` + a callback handler).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiohttp
import dingtalk_stream
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.adapters._http import Reply, error_for_status, parse_retry_after, redact, send_request
from bot.adapters.base import (
    ActionEvent,
    CallbackId,
    ChatMessage,
    ChatTarget,
    Click,
    Heard,
    HttpReply,
    InboundRequest,
    MessageRef,
    Outcome,
    replayable_for,
)
from bot.adapters.errors import DeliveryError
from core.types import Platform

log = logging.getLogger("vigil.dingtalk")
CARD_CALLBACK_TOPIC = dingtalk_stream.Card_Callback_Router_Topic  # "/v1.0/card/instances/callback"
ROBOT_MESSAGE_TOPIC = dingtalk_stream.ChatbotMessage.TOPIC  # "/v1.0/im/bot/messages/get"
AT_WORD = re.compile(r"(?:^|(?<=\s))@\S+")  # "@Bob" as DingTalk writes a mention into a message's text
# DingTalk calls a timestamp more than an hour off illegal; we take five minutes, as Slack does: the signature
# does not cover the body, so the window is all that bounds what a captured pair of headers can do.
SIGNATURE_WINDOW_MS = 300_000
REPLAYABLE = replayable_for(timedelta(milliseconds=SIGNATURE_WINDOW_MS))
TOKEN_CODES = frozenset({"InvalidAuthentication"})
GONE_CODES = frozenset({"param.userIdNotExist"})
OAPI_TOKEN_ERRCODES = frozenset({40014, 42001})  # invalid / expired access_token
OAPI_RETRY_ERRCODES = frozenset({-1, 90002, 90018})  # system busy, flow control
OAPI_NO_USER = 60121
DEFAULT_RETRY_AFTER = 1.0  # DingTalk limits are per second and it rarely sends Retry-After


class DingTalkConfig(BaseModel):
    """An IM app's settings and secrets; `robot_code` defaults to the app key, as for an internal app's bot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(min_length=1)
    card_template_id: str = Field(min_length=1)
    robot_code: str = ""
    base_url: str = "https://api.dingtalk.com"
    oapi_base_url: str = "https://oapi.dingtalk.com"
    stream_endpoint: str = "https://api.dingtalk.com"
    timeout: float = Field(default=10.0, gt=0)


class DingTalkApi:
    """The app's OpenAPI access: a cached access token, refreshed on expiry and once on rejection."""

    def __init__(self, config: DingTalkConfig, http: aiohttp.ClientSession) -> None:
        self.config, self.http = config, http
        self._token: tuple[str, float] | None = None
        self._issued: list[str] = []  # recent tokens, redacted from errors even after a refresh
        self._lock = asyncio.Lock()

    def secrets(self) -> list[str]:
        return [self.config.client_secret.get_secret_value(), *self._issued]

    async def request(self, method: str, url: str, **kw: Any) -> Reply:
        return await send_request(self.http, method, url, provider="dingtalk", timeout=self.config.timeout,
                                  secrets=self.secrets(), **kw)

    async def token(self, *, stale: str | None = None) -> str:
        async with self._lock:
            if self._token and self._token[0] != stale and time.monotonic() < self._token[1]:
                return self._token[0]
            cfg = self.config
            reply = await self.request("POST", f"{cfg.base_url.rstrip('/')}/v1.0/oauth2/accessToken", json={
                "appKey": cfg.client_id, "appSecret": cfg.client_secret.get_secret_value()})
            data = _object(reply)
            if not reply.ok or not data.get("accessToken"):
                raise self._v1_error(reply, data, "access token request rejected")
            # Refresh five minutes early, as the SDK does, so a token never expires mid-call.
            ttl = max(60, int(data.get("expireIn", 7200)) - 300)
            self._token = (str(data["accessToken"]), time.monotonic() + ttl)
            self._issued = [*self._issued[-2:], self._token[0]]
            return self._token[0]

    async def v1(self, method: str, path: str, body: dict[str, Any], *, retried: bool = False) -> dict[str, Any]:
        """Call an api.dingtalk.com v1.0 endpoint; DingTalk errors become DeliveryError."""
        token = await self.token()
        reply = await self.request(method, self.config.base_url.rstrip("/") + path, json=body,
                                   headers={"x-acs-dingtalk-access-token": token})
        data = _object(reply)
        if reply.ok:
            return data
        if not retried and (reply.status == 401 or data.get("code") in TOKEN_CODES):
            await self.token(stale=token)
            return await self.v1(method, path, body, retried=True)
        raise self._v1_error(reply, data, path)

    async def oapi(self, path: str, body: dict[str, Any], *, accept: frozenset[int] = frozenset({0}),
                   retried: bool = False) -> dict[str, Any]:
        """Call an oapi.dingtalk.com endpoint, which answers HTTP 200 with a non-zero errcode on failure."""
        token = await self.token()
        reply = await self.request("POST", self.config.oapi_base_url.rstrip("/") + path, json=body,
                                   params={"access_token": token})
        data = reply.json()
        if not reply.ok:
            raise error_for_status("dingtalk", reply, reply.text()[:200], self.secrets())
        if not isinstance(data, dict) or not isinstance(data.get("errcode", 0), int):
            raise DeliveryError(f"dingtalk: {path} answered with something that is not DingTalk JSON",
                                retryable=True)
        code = data.get("errcode", 0)
        if code in accept:
            return data
        if code in OAPI_TOKEN_ERRCODES and not retried:
            await self.token(stale=token)
            return await self.oapi(path, body, accept=accept, retried=True)
        message = redact(f"dingtalk: {path}: errcode {code}: {data.get('errmsg', '')}"[:300], self.secrets())
        retryable = code in OAPI_RETRY_ERRCODES
        raise DeliveryError(message, retryable=retryable, retry_after=DEFAULT_RETRY_AFTER if retryable else None)

    def _v1_error(self, reply: Reply, data: Mapping[str, Any], what: str) -> DeliveryError:
        code, message = str(data.get("code", "")), str(data.get("message", "")) or reply.text()[:200]
        detail = f"{what}: {code}: {message}" if code else f"{what}: {message}"
        if code in GONE_CODES:
            return DeliveryError(redact(f"dingtalk: {detail}", self.secrets()), retryable=False, gone=True)
        if reply.status == 429 or code.startswith("Throttling") or "QpsLimit" in code:
            wait = parse_retry_after(reply.headers.get("Retry-After"), datetime.now(UTC))
            return DeliveryError(redact(f"dingtalk: HTTP {reply.status}: {detail}", self.secrets())[:300],
                                 retryable=True, retry_after=wait if wait is not None else DEFAULT_RETRY_AFTER)
        return error_for_status("dingtalk", reply, detail, self.secrets())


def _object(reply: Reply) -> dict[str, Any]:
    data = reply.json()
    return data if isinstance(data, dict) else {}


class DingTalkDirectory:
    """Auto-match by phone: `topapi/v2/user/getbymobile` (DingTalk has no lookup by email for apps)."""

    platform: ClassVar[Platform] = Platform.DINGTALK

    def __init__(self, api: DingTalkApi) -> None:
        self.api = api

    async def lookup(self, *, email: str | None, phone: str | None) -> tuple[str, str] | None:
        """The DingTalk userid of the person with this mobile number, or None."""
        if not phone:
            return None
        # Mainland numbers are looked up without their country code; others as digits with it.
        mobile = phone[3:] if phone.startswith("+86") else phone.lstrip("+")
        data = await self.api.oapi("/topapi/v2/user/getbymobile", {"mobile": mobile},
                                   accept=frozenset({0, OAPI_NO_USER}))
        userid = (data.get("result") or {}).get("userid") if data.get("errcode", 0) == 0 else None
        return (str(userid), "userid") if userid else None


class DingTalkAdapter:
    """DingTalk interactive cards; clicks arrive over Stream (`start`) or as signed HTTP callbacks."""

    platform: ClassVar[Platform] = Platform.DINGTALK
    docs_url: ClassVar[str] = "https://open.dingtalk.com/document/orgapp/create-and-deliver-cards"
    supports_update: ClassVar[bool] = True

    def __init__(self, config: DingTalkConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.api = DingTalkApi(config, http)
        self.directory = DingTalkDirectory(self.api)
        self._stream: _Stream | None = None

    @classmethod
    def from_app(cls, settings: dict[str, Any], secrets: dict[str, str], *,
                 http: aiohttp.ClientSession) -> DingTalkAdapter:
        """Build from an IM app row; raises ValueError naming each missing or bad setting (never its value)."""
        if "client_secret" in settings:
            raise ValueError("dingtalk settings: client_secret belongs in the app's secrets, not its settings")
        try:
            config = DingTalkConfig(**{**settings, **secrets})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"dingtalk settings: {problems}") from None
        return cls(config, http)

    @property
    def robot_code(self) -> str:
        return self.config.robot_code or self.config.client_id

    def verify(self, req: InboundRequest, now: datetime) -> bool:
        """HTTP callbacks carry `timestamp` (ms) and `sign` = base64(HMAC-SHA256(secret, ts + "\\n" + secret))."""
        stamp, sign = req.header("timestamp"), req.header("sign")
        if not stamp.isdigit() or not sign:
            return False
        if abs(now.timestamp() * 1000 - int(stamp)) > SIGNATURE_WINDOW_MS:
            return False
        return hmac.compare_digest(sign_callback(self.config.client_secret.get_secret_value(), stamp), sign)

    def precheck(self, req: InboundRequest, now: datetime) -> bool:
        """DingTalk signs the timestamp only, never the body: the whole check runs before the body is read."""
        return self.verify(req, now)

    def handshake(self, req: InboundRequest) -> HttpReply | None:
        """DingTalk card callbacks have no URL verification step."""
        return None

    def parse_action(self, req: InboundRequest) -> ActionEvent | None:
        """The click in a card callback body (the same JSON the Stream gateway sends as `data`); its id is the
        timestamp/sign pair, the only signed part, so each pair is taken once whatever body comes with it."""
        try:
            data = json.loads(req.body)
        except ValueError:
            return None
        event = to_event(data) if isinstance(data, dict) else None
        if event is None:
            return None
        return replace(event, callback=CallbackId(f"{req.header('timestamp')}:{req.header('sign')}", REPLAYABLE))

    def parse_message(self, req: InboundRequest) -> ChatMessage | None:
        """A text message to the robot (its HTTP message callback, signed like card callbacks); taken once per
        timestamp/sign pair, as a click is."""
        try:
            data = json.loads(req.body)
        except ValueError:
            return None
        message = to_message(data) if isinstance(data, dict) else None
        if message is None:
            return None
        return replace(message, callback=CallbackId(f"{req.header('timestamp')}:{req.header('sign')}", REPLAYABLE))

    async def send_reply(self, message: ChatMessage, text: str) -> None:
        """Answer through the robot's own send API (the body's sessionWebhook is a URL an unsigned body names):
        to the sender in a 1:1 chat, into the group otherwise. sampleText is plain text: nothing in it @s anyone."""
        base = {"robotCode": self.robot_code, "msgKey": "sampleText",
                "msgParam": json.dumps({"content": text}, ensure_ascii=False)}
        if message.context.get("group"):
            data = await self.api.v1("POST", "/v1.0/robot/groupMessages/send", {
                **base, "openConversationId": message.context["conversation_id"]})
        else:
            data = await self.api.v1("POST", "/v1.0/robot/oToMessages/batchSend", {
                **base, "userIds": [message.im_user_id]})
            if message.im_user_id in (data.get("invalidStaffIdList") or []):
                raise DeliveryError(f"dingtalk: reply not delivered to {message.im_user_id}", retryable=False)

    def reply(self, req: InboundRequest, outcome: Outcome) -> HttpReply:
        """DingTalk takes the card update in the callback answer; the text goes to the clicker's private data.
        A message to the robot gets an empty object: its answer goes through the robot API."""
        if req.body.lstrip().startswith(b"{") and b'"msgtype"' in req.body:
            return HttpReply(200, b"{}")
        return HttpReply(200, json.dumps(callback_answer(outcome), ensure_ascii=False).encode())

    async def send_card(self, to: ChatTarget, card: dict[str, Any]) -> MessageRef:
        """Create and deliver a card to a user's robot chat or a group; the outTrackId names it from then on."""
        kind = "IM_ROBOT" if to.direct else "IM_GROUP"
        out_track_id, space = uuid.uuid4().hex, f"dtv1.card//{kind}.{to.conversation_id}"
        places = ({"imRobotOpenSpaceModel": {"supportForward": False},
                   "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": self.robot_code}}
                  if to.direct else
                  {"imGroupOpenSpaceModel": {"supportForward": False},
                   "imGroupOpenDeliverModel": {"robotCode": self.robot_code}})
        data = await self.api.v1("POST", "/v1.0/card/instances/createAndDeliver", {
            "cardTemplateId": self.config.card_template_id, "outTrackId": out_track_id, "callbackType": "STREAM",
            "cardData": _card_data(card), "openSpaceId": space, "userIdType": 1, **places})
        failed = [r for r in (data.get("result") or {}).get("deliverResults", []) if not r.get("success")]
        if not data.get("success", True) or failed:
            reason = "; ".join(str(r.get("errorMsg", "")) for r in failed) or "createAndDeliver failed"
            raise DeliveryError(f"dingtalk: card not delivered to {to.conversation_id}: {reason}"[:300],
                                retryable=False, gone="userIdNotExist" in reason)
        return MessageRef(self.platform, to.conversation_id, out_track_id, {"open_space_id": space})

    async def update_card(self, ref: MessageRef, card: dict[str, Any]) -> None:
        """Replace the card's public data (every variable is rendered each time)."""
        data = await self.api.v1("PUT", "/v1.0/card/instances", {
            "outTrackId": ref.message_id, "cardData": _card_data(card),
            "cardUpdateOptions": {"updateCardDataByKey": True}})
        if data.get("success") is False:
            raise DeliveryError(f"dingtalk: card {ref.message_id} was not updated", retryable=False)

    async def start(self, click: Click, hear: Heard | None = None) -> None:
        """Open the Stream connection; each card click is answered by `click(event)` on the calling loop, and
        with `hear`, each message to the robot (the chatbot topic, for robots in Stream mode) by `hear`."""
        if self._stream is None:
            self._stream = _Stream(self, click, asyncio.get_running_loop(), hear)
            await self._stream.start()

    async def stop(self) -> None:
        """Close the Stream connection and wait for its thread to end."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.stop()

    async def _open_connection(self, subscriptions: list[dict[str, str]]) -> dict[str, Any] | None:
        """Ask the gateway for a websocket endpoint and ticket (the SDK's `open_connection`, async)."""
        cfg = self.config
        try:
            reply = await self.api.request("POST", f"{cfg.stream_endpoint.rstrip('/')}/v1.0/gateway/connections/open",
                                           json={"clientId": cfg.client_id,
                                                 "clientSecret": cfg.client_secret.get_secret_value(),
                                                 "subscriptions": subscriptions, "ua": "vigil", "localIp": ""})
        except DeliveryError as exc:
            log.warning("dingtalk stream: %s", exc)
            return None
        data = reply.json()
        if reply.ok and isinstance(data, dict) and data.get("endpoint") and data.get("ticket"):
            return data
        log.warning("dingtalk stream: gateway refused the connection (HTTP %s)", reply.status)
        return None


def sign_callback(secret: str, timestamp: str) -> str:
    """DingTalk's callback signature for `timestamp` (milliseconds, as a string)."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def to_event(data: Mapping[str, Any]) -> ActionEvent | None:
    """A card callback (`userId`, `outTrackId`, `content` JSON with `cardPrivateData`) as an ActionEvent."""
    try:
        msg = dingtalk_stream.CardCallbackMessage.from_dict(dict(data))
    except (TypeError, ValueError):
        return None
    private = msg.content.get("cardPrivateData") if isinstance(msg.content, dict) else None
    private = private if isinstance(private, dict) else {}
    params = private.get("params") if isinstance(private.get("params"), dict) else {}
    ids = private.get("actionIds") if isinstance(private.get("actionIds"), list) else []
    payload = params.get("action") or (ids[0] if ids else "")
    if not isinstance(payload, str) or not payload or not isinstance(msg.user_id, str) or not msg.user_id:
        return None
    inputs = {k: v for k, v in params.items() if k != "action" and isinstance(v, str)}
    return ActionEvent(Platform.DINGTALK, msg.user_id, payload, inputs, {"out_track_id": msg.card_instance_id})


def to_message(data: Mapping[str, Any]) -> ChatMessage | None:
    """A robot text message (the HTTP callback body, or the Stream chatbot topic's `data`) as a ChatMessage:
    the @name words DingTalk leaves in the text are taken out, and `atUsers` gives the staff ids mentioned
    (the robot itself, which has none or its chatbotUserId, left out)."""
    if data.get("msgtype") != "text":
        return None
    try:
        msg = dingtalk_stream.ChatbotMessage.from_dict(dict(data))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    sender, text = msg.sender_staff_id, getattr(msg.text, "content", None)
    if not isinstance(sender, str) or not sender or not isinstance(text, str):
        return None
    mentions = tuple(u.staff_id for u in msg.at_users or []
                     if isinstance(u.staff_id, str) and u.staff_id and u.dingtalk_id != msg.chatbot_user_id)
    group = str(msg.conversation_type) == "2"
    return ChatMessage(Platform.DINGTALK, sender, " ".join(AT_WORD.sub(" ", text).split()), mentions,
                       context={"group": group, "conversation_id": str(msg.conversation_id or ""),
                                "msg_id": str(msg.message_id or "")})


def callback_answer(outcome: Outcome) -> dict[str, Any]:
    """The card callback answer: the re-rendered card for everyone, the outcome text for the clicker only."""
    answer: dict[str, Any] = {"cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True},
                              "userPrivateData": {"cardParamMap": {"notice": outcome.text}}}
    if outcome.card and isinstance(outcome.card.get("cardData"), dict):
        answer["cardData"] = outcome.card["cardData"]
    return answer


def _card_data(card: Mapping[str, Any]) -> dict[str, Any]:
    data = card.get("cardData")
    if not isinstance(data, dict) or not isinstance(data.get("cardParamMap"), dict):
        raise DeliveryError("dingtalk: card must be the DingTalk renderer's {'cardData': {'cardParamMap': ...}}",
                            retryable=False)
    return data


_SILENT = logging.getLogger("vigil.dingtalk.stream.stopping")
_SILENT.disabled = True


class _StreamClient(dingtalk_stream.DingTalkStreamClient):
    # The SDK posts to a module-level gateway URL with blocking `requests`; ours asks the adapter, on the
    # app's loop, so the gateway address comes from settings and the secret stays out of SDK logs.
    def __init__(self, credential: dingtalk_stream.Credential, opener: Any) -> None:
        sdk_log = logging.getLogger("vigil.dingtalk.stream")
        sdk_log.setLevel(logging.WARNING)  # the SDK logs each gateway answer, ticket included, at INFO
        super().__init__(credential, logger=sdk_log)
        self._opener = opener

    def open_connection(self) -> dict[str, Any] | None:
        topics = [{"type": "CALLBACK", "topic": t} for t in self.callback_handler_map]
        return self._opener(topics)

    def get_host_ip(self) -> str:
        return ""  # the SDK probes a route to 8.8.8.8 for an informational field


class _CardCallbacks(dingtalk_stream.CallbackHandler):
    def __init__(self, click: Click, app_loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.logger = log
        self.click, self.app_loop = click, app_loop

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, dict[str, Any]]:
        event = to_event(callback.data) if isinstance(callback.data, dict) else None
        if event is None:
            return dingtalk_stream.AckMessage.STATUS_OK, callback_answer(Outcome(True, ""))
        # The click path (database sessions) lives on the app's loop, not on the Stream thread's.
        future = asyncio.run_coroutine_threadsafe(self.click(event), self.app_loop)
        try:
            outcome = await asyncio.wrap_future(future)
        except Exception:
            log.exception("dingtalk stream: click handling failed")
            return dingtalk_stream.AckMessage.STATUS_SYSTEM_EXCEPTION, {"error": "click handling failed"}
        return dingtalk_stream.AckMessage.STATUS_OK, callback_answer(outcome)


class _RobotMessages(dingtalk_stream.CallbackHandler):
    def __init__(self, hear: Heard, app_loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.logger = log
        self.hear, self.app_loop = hear, app_loop

    async def process(self, callback: dingtalk_stream.CallbackMessage) -> tuple[int, str]:
        message = to_message(callback.data) if isinstance(callback.data, dict) else None
        if message is None:
            return dingtalk_stream.AckMessage.STATUS_OK, "OK"
        # The gateway pushes what DingTalk sent over our authenticated connection; msgId names the message
        # in DingTalk's redeliveries of it, so it is answered once.
        msg_id = str(message.context.get("msg_id") or "")
        heard = replace(message, callback=CallbackId(f"msg:{msg_id}", REPLAYABLE) if msg_id else None)
        future = asyncio.run_coroutine_threadsafe(self.hear(heard), self.app_loop)
        try:
            await asyncio.wrap_future(future)
        except Exception:
            log.exception("dingtalk stream: a message to the robot failed")
            return dingtalk_stream.AckMessage.STATUS_SYSTEM_EXCEPTION, "message handling failed"
        return dingtalk_stream.AckMessage.STATUS_OK, "OK"


class _Stream:
    """Runs the SDK client in its own thread and loop, as `start_forever` would, so it never blocks ours."""

    def __init__(self, adapter: DingTalkAdapter, click: Click, app_loop: asyncio.AbstractEventLoop,
                 hear: Heard | None = None) -> None:
        cfg, timeout = adapter.config, adapter.config.timeout + 5
        self.app_loop = app_loop
        self.client = _StreamClient(
            dingtalk_stream.Credential(cfg.client_id, cfg.client_secret.get_secret_value()),
            lambda topics: self._on_app_loop(adapter._open_connection(topics), timeout))
        self.client.register_callback_handler(CARD_CALLBACK_TOPIC, _CardCallbacks(click, app_loop))
        if hear is not None:
            self.client.register_callback_handler(ROBOT_MESSAGE_TOPIC, _RobotMessages(hear, app_loop))
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="dingtalk-stream", daemon=True)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None

    def _on_app_loop(self, coro: Any, timeout: float) -> Any:
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.app_loop)
        except RuntimeError:  # the app's loop is closed: we are shutting down
            coro.close()
            return None
        try:
            return future.result(timeout)
        except Exception:  # the SDK treats None as "try again in a while"
            future.cancel()
            return None

    async def start(self) -> None:
        self.thread.start()
        await asyncio.to_thread(self.ready.wait, 5)

    async def stop(self) -> None:
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        await asyncio.to_thread(self.thread.join, 30)

    async def _main(self) -> None:
        self.loop, self.stopping = asyncio.get_running_loop(), asyncio.Event()
        self.ready.set()
        runner = asyncio.ensure_future(self.client.start())
        await asyncio.wait({runner, asyncio.ensure_future(self.stopping.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        # The SDK's loop catches one CancelledError per attempt, logs it as a network error and sleeps:
        # silence it, then cancel until it is done.
        self.client.logger = _SILENT
        while not runner.done():
            runner.cancel()
            await asyncio.wait({runner}, timeout=0.1)
        if not runner.cancelled() and runner.exception() is not None:
            log.error("dingtalk stream stopped: %s", runner.exception())
