"""WeCom (WeChat Work): template cards by the app message API, clicks as encrypted XML callbacks, and chat
commands as the text messages users send the app (the same encrypted callback), answered by message/send.

Docs: https://developer.work.weixin.qq.com/document/path/90236 (message/send, template_card),
https://developer.work.weixin.qq.com/document/path/94888 (update_template_card),
https://developer.work.weixin.qq.com/document/path/90376 (template_card_event callback),
https://developer.work.weixin.qq.com/document/path/90239 (messages users send the app),
https://developer.work.weixin.qq.com/document/path/90968 (callback crypto, the WXBizMsgCrypt scheme),
https://developer.work.weixin.qq.com/document/path/91039 (gettoken),
https://developer.work.weixin.qq.com/document/path/95402 and /95895 (userid by mobile / by email),
https://developer.work.weixin.qq.com/document/path/90313 (errcodes).

WeCom has no official async Python SDK, so the API goes through our shared aiohttp session and the
callback crypto through `cryptography`. WeCom updates a card only with a `response_code`, valid once
for 72 hours: message/send returns one and every click carries a fresh one. None is kept in memory:
the send-time code goes in the card reference (MessageRef.extra `update_codes`), a click's code reaches
the same CardRef through the click path (bot/chat/card_codes.py), and card_sync claims one from the database
before each update, so a restarted process or a worker that never saw the click can update the card
and no code is sent twice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import struct
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from html import escape
from typing import Any, ClassVar
from xml.etree.ElementTree import Element

import aiohttp
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree
from defusedxml.ElementTree import ParseError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.adapters._http import error_for_status, redact, send_request
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
    update_codes,
    with_update_codes,
)
from bot.adapters.errors import DeliveryError
from bot.cards.format import cut_bytes
from bot.cards.wecom import SNOOZE_QUESTION
from bot.chat.actions import Snooze
from core.types import Platform

log = logging.getLogger("vigil.wecom")
# WeCom documents no replay window; five minutes tolerates clock skew and its retries (5 s apart).
SIGNATURE_WINDOW_S = 300
AT_WORD = re.compile(r"(?:^|(?<=\s))@(\S+)")  # "@zhangsan" or "@张三" typed into a message to the app
REPLAYABLE = replayable_for(timedelta(seconds=SIGNATURE_WINDOW_S))
RESPONSE_CODE_TTL_S = 72 * 3600
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential / invalid token / token expired
RETRY_AFTER = {-1: 1.0, 45009: 60.0, 45033: 1.0}  # busy; per-minute API limit; concurrency limit
GONE_ERRCODES = frozenset({60111, 81013})  # userid not found; user & party & tag all invalid / out of scope
NOT_FOUND_ERRCODES = frozenset({46004, 60111})  # directory lookups: no such mobile / email


class WeComConfig(BaseModel):
    """An IM app's settings (`base_url`, `agent_id`) and secrets (corp id and secret, callback token and key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corp_id: str = Field(min_length=1)
    corp_secret: SecretStr = Field(min_length=1)
    token: SecretStr = Field(min_length=1)
    encoding_aes_key: SecretStr
    agent_id: int = Field(gt=0)
    base_url: str = "https://qyapi.weixin.qq.com"
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        try:
            ok = len(raw) == 43 and len(base64.b64decode(raw + "=", validate=True)) == 32
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("must be the 43-character EncodingAESKey from the app's callback settings")
        return value


class CallbackCrypto:
    """WeCom's callback scheme: SHA-1 signature over sorted parts, AES-256-CBC with the corp id appended."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token, self.receive_id = token, receive_id.encode()
        self.key = base64.b64decode(encoding_aes_key + "=")

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce, encrypt])).encode()).hexdigest()

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside `encrypt`; ValueError when it is not ours (bad padding, other corp)."""
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).decryptor()
        data = decryptor.update(base64.b64decode(encrypt, validate=True)) + decryptor.finalize()
        unpadder = padding.PKCS7(256).unpadder()  # WeCom pads to 32 bytes, not the AES block size
        plain = unpadder.update(data) + unpadder.finalize()
        if len(plain) < 20:
            raise ValueError("ciphertext too short")
        (size,) = struct.unpack(">I", plain[16:20])
        if plain[20 + size:] != self.receive_id:
            raise ValueError("message is for another corp")
        return plain[20:20 + size]


class SpentCodes:
    """The response codes this adapter has sent to WeCom: a guard, so even a caller that passes a stale
    ref (not claimed through bot/chat/card_codes.py) never makes it send one twice."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._codes: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, code: object) -> bool:
        return code in self._codes

    def add(self, code: str) -> None:
        self._codes[code] = None
        while len(self._codes) > self.limit:
            self._codes.popitem(last=False)


class WeComApi:
    """The app's API access: a cached access token, refreshed before expiry and once when WeCom rejects it."""

    def __init__(self, config: WeComConfig, http: aiohttp.ClientSession) -> None:
        self.config, self.http = config, http
        self._token: tuple[str, float] | None = None
        self._issued: list[str] = []  # recent tokens, redacted from errors even after a refresh
        self._lock = asyncio.Lock()

    def secrets(self) -> list[str]:
        return [self.config.corp_secret.get_secret_value(), *self._issued]

    def url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    async def token(self, *, stale: str | None = None) -> str:
        async with self._lock:
            if self._token and self._token[0] != stale and time.monotonic() < self._token[1]:
                return self._token[0]
            cfg = self.config
            data = await self._json("GET", "/cgi-bin/gettoken", params={
                "corpid": cfg.corp_id, "corpsecret": cfg.corp_secret.get_secret_value()})
            if data.get("errcode", 0) != 0 or not data.get("access_token"):
                # A rejected corp id or secret stays rejected: permanent unless WeCom is busy or throttling.
                code = data.get("errcode")
                raise DeliveryError(self._detail("/cgi-bin/gettoken", data), retryable=code in RETRY_AFTER,
                                    retry_after=RETRY_AFTER.get(code))
            ttl = max(60, int(data.get("expires_in", 7200)) - 300)  # refresh early so no call races expiry
            self._token = (str(data["access_token"]), time.monotonic() + ttl)
            self._issued = [*self._issued[-2:], self._token[0]]
            return self._token[0]

    async def call(self, path: str, body: dict[str, Any], *, accept: frozenset[int] = frozenset({0}),
                   retried: bool = False) -> dict[str, Any]:
        """POST to a /cgi-bin endpoint; WeCom answers HTTP 200 with a non-zero errcode on failure."""
        token = await self.token()
        data = await self._json("POST", path, params={"access_token": token}, json=body)
        code = data.get("errcode", 0)
        if code in accept:
            return data
        if code in TOKEN_ERRCODES and not retried:
            await self.token(stale=token)
            return await self.call(path, body, accept=accept, retried=True)
        raise DeliveryError(self._detail(path, data), retryable=code in RETRY_AFTER, retry_after=RETRY_AFTER.get(code),
                            gone=code in GONE_ERRCODES)

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        reply = await send_request(self.http, method, self.url(path), provider="wecom", timeout=self.config.timeout,
                                   secrets=self.secrets(), **kw)
        if not reply.ok:
            raise error_for_status("wecom", reply, reply.text()[:200], self.secrets())
        data = reply.json()
        if not isinstance(data, dict) or not isinstance(data.get("errcode", 0), int):
            raise DeliveryError(f"wecom: {path} answered with something that is not WeCom JSON", retryable=True)
        return data

    def _detail(self, path: str, data: dict[str, Any]) -> str:
        return redact(f"wecom: {path}: errcode {data.get('errcode')}: {data.get('errmsg', '')}"[:300], self.secrets())


class WeComDirectory:
    """Auto-match by email (enterprise, then personal) and by mobile, through user/get_userid_by_email and getuserid."""

    platform: ClassVar[Platform] = Platform.WECOM

    def __init__(self, api: WeComApi) -> None:
        self.api = api

    async def lookup(self, *, email: str | None, phone: str | None) -> tuple[str, str] | None:
        """The WeCom userid of the person with this email or mobile number, or None."""
        queries: list[tuple[str, dict[str, Any]]] = []
        if email:
            queries += [("/cgi-bin/user/get_userid_by_email", {"email": email, "email_type": t}) for t in (1, 2)]
        if phone:
            # Mainland numbers are stored without their country code; others as "+<cc> <number>".
            mobile = phone[3:] if phone.startswith("+86") else phone
            queries.append(("/cgi-bin/user/getuserid", {"mobile": mobile}))
        for path, body in queries:
            data = await self.api.call(path, body, accept=frozenset({0}) | NOT_FOUND_ERRCODES)
            if data.get("errcode", 0) == 0 and data.get("userid"):
                return str(data["userid"]), "userid"
        return None


# textcard limits (https://developer.work.weixin.qq.com/document/path/90236): title 128 bytes, description 512.
TEXTCARD_TITLE_BYTES, TEXTCARD_DESCRIPTION_BYTES = 128, 512


def _textcard_description(card: dict[str, Any]) -> str:
    """The template card's state line (grey) and rows as a textcard description: WeCom draws its <div class>
    lines, not newlines. Whole lines only, within the byte limit, so no tag is ever cut."""
    lines = [f'<div class="gray">{escape(str((card.get("main_title") or {}).get("desc") or ""))}</div>']
    lines += [f'<div class="normal">{escape(str(row.get("keyname")))}: {escape(str(row.get("value")))}</div>'
              for row in card.get("horizontal_content_list") or []]
    out = ""
    for line in lines:
        if len((out + line).encode()) > TEXTCARD_DESCRIPTION_BYTES:
            break
        out += line
    return out


class WeComAdapter:
    """WeCom template cards (button_interaction) sent as app messages; clicks arrive as encrypted XML."""

    platform: ClassVar[Platform] = Platform.WECOM
    docs_url: ClassVar[str] = "https://developer.work.weixin.qq.com/document/path/90236"
    supports_update: ClassVar[bool] = True
    spends_update_codes: ClassVar[bool] = True  # each update spends a response_code (bot/chat/card_codes.py)
    # A group chat gets the card as an appchat textcard: appchat/send takes no template_card, and a sent appchat
    # message cannot be edited, so it is not recorded for card sync (bot/chat/group_cards.py).
    updates_group_cards: ClassVar[bool] = False

    def __init__(self, config: WeComConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.api = WeComApi(config, http)
        self.directory = WeComDirectory(self.api)
        self.crypto = CallbackCrypto(config.token.get_secret_value(), config.encoding_aes_key.get_secret_value(),
                                     config.corp_id)
        self.spent = SpentCodes()
        self._notices: set[asyncio.Task[None]] = set()

    @classmethod
    def from_app(cls, settings: dict[str, Any], secrets: dict[str, str], *,
                 http: aiohttp.ClientSession) -> WeComAdapter:
        """Build from an IM app row; raises ValueError naming each missing or bad setting (never its value)."""
        misplaced = sorted({"corp_secret", "token", "encoding_aes_key"} & set(settings))
        if misplaced:
            raise ValueError(f"wecom settings: {', '.join(misplaced)} belong in the app's secrets, not its settings")
        try:
            config = WeComConfig(**{**settings, **secrets})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"wecom settings: {problems}") from None
        return cls(config, http)

    def verify(self, req: InboundRequest, now: datetime) -> bool:
        """`msg_signature` = SHA-1 over sorted (token, timestamp, nonce, ciphertext), fresh `timestamp`,
        and a ciphertext that decrypts for our corp."""
        signature, stamp, nonce = (req.query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        encrypt = self._ciphertext(req)
        if not (signature and nonce and encrypt and stamp.isdigit()):
            return False
        if abs(now.timestamp() - int(stamp)) > SIGNATURE_WINDOW_S:
            return False
        if not hmac.compare_digest(self.crypto.signature(stamp, nonce, encrypt), signature.lower()):
            return False
        return self._decrypted(req) is not None

    def precheck(self, req: InboundRequest, now: datetime) -> bool:
        """The signature's query parameters are there and its timestamp is fresh (it signs the ciphertext in
        the body, which `verify` checks once read)."""
        signature, stamp, nonce = (req.query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        return bool(signature and nonce and stamp.isdigit()) and abs(now.timestamp() - int(stamp)) <= SIGNATURE_WINDOW_S

    def handshake(self, req: InboundRequest) -> HttpReply | None:
        """URL verification: a GET with `echostr`, answered with its decrypted plaintext."""
        if req.method != "GET" or not req.query.get("echostr"):
            return None
        plain = self._decrypted(req)
        return HttpReply(200, plain, "text/plain") if plain is not None else None

    def parse_action(self, req: InboundRequest) -> ActionEvent | None:
        """A template_card_event: FromUserName, EventKey (packed payload), the snooze selection, TaskId and
        ResponseCode; the click path stores the ResponseCode on the card's CardRef (bot/chat/card_codes.py)."""
        root = _xml(self._decrypted(req)) if req.method != "GET" else None
        if root is None or root.findtext("MsgType") != "event" or root.findtext("Event") != "template_card_event":
            return None
        user, key = (root.findtext("FromUserName") or "").strip(), (root.findtext("EventKey") or "").strip()
        if not user or not key:
            return None
        inputs = {}
        if key.startswith(Snooze.prefix + ":"):  # the dropdown's selection is reported with every button
            for item in root.iterfind("SelectedItems/SelectedItem"):
                chosen = [o.text.strip() for o in item.iterfind("OptionIds/OptionId") if o.text and o.text.strip()]
                if item.findtext("QuestionKey") == SNOOZE_QUESTION and chosen:
                    inputs["snooze"] = chosen[0]
        task_id, code = (root.findtext("TaskId") or "").strip(), (root.findtext("ResponseCode") or "").strip()
        # msg_signature covers timestamp, nonce and ciphertext (as verify checks it, case-insensitively): one
        # per callback, and the same for WeCom's own retries of it, which must not act twice either.
        callback = CallbackId(req.query.get("msg_signature", "").lower(), REPLAYABLE)
        return ActionEvent(Platform.WECOM, user, key, inputs, {"task_id": task_id, "response_code": code,
                                                               "card_type": root.findtext("CardType") or ""},
                           callback)

    def parse_message(self, req: InboundRequest) -> ChatMessage | None:
        """A text message a user sent the app. WeCom app messages carry no mention markup: each `@word` is taken
        out of the words as a mention, a userid or a member's name (the mapping table is asked for both)."""
        root = _xml(self._decrypted(req)) if req.method != "GET" else None
        if root is None or root.findtext("MsgType") != "text":
            return None
        user, content = (root.findtext("FromUserName") or "").strip(), root.findtext("Content") or ""
        if not user:
            return None
        mentions = tuple(m.group(1) for m in AT_WORD.finditer(content))
        # MsgId is inside the signed ciphertext and the same in WeCom's own retries of the message.
        msg_id = (root.findtext("MsgId") or "").strip()
        callback = CallbackId(f"msg:{msg_id}" if msg_id else req.query.get("msg_signature", "").lower(), REPLAYABLE)
        return ChatMessage(Platform.WECOM, user, " ".join(AT_WORD.sub(" ", content).split()), mentions,
                           mentions_by_name=True, context={"msg_id": msg_id}, callback=callback)

    async def send_reply(self, message: ChatMessage, text: str) -> None:
        """Answer with a text app message to the sender (apps talk to users one to one)."""
        await self.api.call("/cgi-bin/message/send", {"touser": message.im_user_id, "msgtype": "text",
                                                      "agentid": self.config.agent_id, "text": {"content": text}})

    def reply(self, req: InboundRequest, outcome: Outcome) -> HttpReply:
        """An empty 200 (the card is updated through the API); a refused click is explained in a text message."""
        if not outcome.ok and outcome.text:
            root = _xml(self._decrypted(req)) if req.method != "GET" else None
            user = (root.findtext("FromUserName") or "").strip() if root is not None else ""
            if user:
                self._notify(user, outcome.text)
        return HttpReply(200, b"", "text/plain")

    async def send_card(self, to: ChatTarget, card: dict[str, Any]) -> MessageRef:
        """Send the template card to a user as an app message; its task_id and response_code go in the ref."""
        if not to.direct:
            return await self._send_to_chat(to.conversation_id, card)
        task_id = _task_id(card)
        data = await self.api.call("/cgi-bin/message/send", {
            "touser": to.conversation_id, "msgtype": "template_card", "agentid": self.config.agent_id,
            "template_card": card})
        invalid = {u for u in str(data.get("invaliduser") or "").split("|") if u}
        unlicensed = {u for u in str(data.get("unlicenseduser") or "").split("|") if u}
        if to.conversation_id in invalid | unlicensed:
            why = "is not a user in the app's visible range" if invalid else "has no WeCom licence"
            raise DeliveryError(f"wecom: {to.conversation_id} {why}", retryable=False, gone=bool(invalid))
        code = str(data.get("response_code") or "")
        return MessageRef(self.platform, to.conversation_id, str(data.get("msgid") or task_id), with_update_codes(
            {"task_id": task_id}, [(code, time.time())] if code else []))

    async def _send_to_chat(self, chat_id: str, card: dict[str, Any]) -> MessageRef:
        """Post the card's title, state, rows and link into an app group chat (appchat/send, msgtype textcard:
        https://developer.work.weixin.qq.com/document/path/90248); it carries no buttons, its link opens the
        incident page, where a member acts."""
        title = str((card.get("main_title") or {}).get("title") or "Vigil incident")
        url = str((card.get("card_action") or {}).get("url") or "")
        data = await self.api.call("/cgi-bin/appchat/send", {
            "chatid": chat_id, "msgtype": "textcard", "safe": 0,
            "textcard": {"title": cut_bytes(title, TEXTCARD_TITLE_BYTES), "description": _textcard_description(card),
                         "url": url, "btntxt": "Open"}})
        return MessageRef(self.platform, chat_id, str(data.get("msgid") or ""), {})

    async def update_card(self, ref: MessageRef, card: dict[str, Any]) -> None:
        """Replace the user's card with update_template_card, spending the ref's newest usable response_code
        (card_sync passes a ref carrying only the code it claimed)."""
        card_task = _task_id(card)  # refuses anything but the renderer's template card
        task_id = str(ref.extra.get("task_id") or card_task)
        now = time.time()
        entry = next((c for c in update_codes(ref.extra)
                      if c[0] not in self.spent and now - c[1] < RESPONSE_CODE_TTL_S), None)
        if entry is None:
            raise DeliveryError(f"wecom: card {task_id} cannot be updated until it is clicked again (each "
                                "update spends a response_code: one from sending, one per click, 72 h each)",
                                retryable=False)
        try:
            # The card keeps the task_id it was sent with, so later clicks name the CardRef's task.
            await self.api.call("/cgi-bin/message/update_template_card", {
                "userids": [ref.conversation_id], "agentid": self.config.agent_id, "response_code": entry[0],
                "template_card": {**card, "task_id": task_id}})
        except DeliveryError as exc:
            if not exc.retryable:  # WeCom may have taken it; a retryable failure leaves it for the retry
                self.spent.add(entry[0])
            raise
        self.spent.add(entry[0])

    async def stop(self) -> None:
        """Let pending "not linked" notices finish before the adapter is replaced."""
        if self._notices:
            await asyncio.gather(*self._notices, return_exceptions=True)

    def _notify(self, user: str, text: str) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._send_text(user, text))
        except RuntimeError:  # no loop: nothing to answer with
            return
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _send_text(self, user: str, text: str) -> None:
        try:
            await self.api.call("/cgi-bin/message/send", {"touser": user, "msgtype": "text",
                                                          "agentid": self.config.agent_id, "text": {"content": text}})
        except DeliveryError as exc:
            log.warning("wecom: could not tell %s why their click changed nothing: %s", user, exc)

    def _ciphertext(self, req: InboundRequest) -> str:
        if req.method == "GET":
            encrypt = req.query.get("echostr", "")
        else:
            root = _xml(req.body)
            encrypt = (root.findtext("Encrypt") or "") if root is not None else ""
        return encrypt.strip().replace(" ", "+")  # a '+' sent unencoded in a query string arrives as ' '

    def _decrypted(self, req: InboundRequest) -> bytes | None:
        try:
            return self.crypto.decrypt(self._ciphertext(req))
        except ValueError:
            return None


def _xml(data: bytes | None) -> Element | None:
    if not data:
        return None
    try:
        return ElementTree.fromstring(data)  # defusedxml: no entities, no external references
    except (ParseError, ValueError):  # malformed, or refused by defusedxml (DTDs, entities): not WeCom's
        return None


def _task_id(card: dict[str, Any]) -> str:
    if card.get("card_type") != "button_interaction" or not card.get("task_id"):
        raise DeliveryError("wecom: card must be the WeCom renderer's button_interaction template_card with a "
                            "task_id", retryable=False)
    return str(card["task_id"])
