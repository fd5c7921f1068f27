"""A local fake of the Feishu/Lark open platform: tenant token, im/v1 messages (create, patch, reply), batch_get_id.

It checks app credentials and `Authorization: Bearer <tenant token>` as Feishu does and answers in
Feishu's shapes: `{"code": 0, "msg": "success", "data": {...}}`, errors as a non-zero `code` with
`msg` and `error.log_id` (HTTP 400 for API errors, HTTP 429 for the gateway's frequency limit, with
`x-ogw-ratelimit-*` headers; `fail_next` scripts any status, HTTP 200 included). Tokens expire.
It also builds card callbacks exactly as Feishu sends them: plain or `{"encrypt": ...}` (AES-256-CBC,
key sha256(encrypt_key), random IV prefixed), signed with X-Lark-Signature, and `im.message.receive_v1`
events for the messages users send the bot (`message_event`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad

ID_TYPES = {"open_id", "union_id", "user_id", "email", "chat_id"}
MAX_CONTENT_BYTES = 30 * 1024


@dataclass
class FeishuRequest:
    """One request the fake accepted (after auth): method, path, query and JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeFeishu:
    app_id: str
    app_secret: str
    users: set[str]  # open_ids the bot may message
    gone: set[str] = field(default_factory=set)  # open_ids that left / are out of the app's scope
    chats: set[str] = field(default_factory=set)  # chat_ids the bot is in
    emails: dict[str, str] = field(default_factory=dict)  # email -> open_id
    mobiles: dict[str, str] = field(default_factory=dict)  # mobile as Feishu takes it -> open_id
    token_ttl: int = 7200
    requests: list[FeishuRequest] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # message_id -> {receive_id, chat_id, card}
    received: set[str] = field(default_factory=set)  # ids of user messages the bot was sent (message_event)
    replies: list[dict[str, Any]] = field(default_factory=list)  # {message_id, msg_type, content, uuid}
    tokens_issued: int = 0
    script: deque[web.Response] = field(default_factory=deque)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self._token)
        app.router.add_post("/open-apis/im/v1/messages", self._create)
        app.router.add_patch("/open-apis/im/v1/messages/{message_id}", self._patch)
        app.router.add_post("/open-apis/im/v1/messages/{message_id}/reply", self._reply)
        app.router.add_post("/open-apis/contact/v3/users/batch_get_id", self._batch_get_id)
        return app

    # -- scripting -------------------------------------------------------------------------------

    def fail_next(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        """Answer the next API call (not the token call) with this Feishu error."""
        self.script.append(error(status, code, msg, headers))

    def expire_tokens(self) -> None:
        """Every tenant token issued so far stops working, as when its two hours are up."""
        self._tokens.clear()

    def sent(self) -> list[FeishuRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/open-apis/im/v1/messages"]

    def updates(self) -> list[FeishuRequest]:
        return [r for r in self.requests if r.method == "PATCH"]

    def reply_texts(self) -> list[str]:
        """The text of each reply the bot sent, a post's text elements joined line by line."""
        out = []
        for reply in self.replies:
            content = json.loads(reply["content"])
            if reply["msg_type"] == "text":
                out.append(content["text"])
            else:
                post = next(iter(content.values()))
                out.append("\n".join("".join(e.get("text", "") for e in line) for line in post["content"]))
        return out

    def message_event(self, token: str, open_id: str, text: str, *, mentions: dict[str, str] | None = None,
                      chat_type: str = "p2p", chat_id: str = "oc_p2p_chat") -> dict[str, Any]:
        """An `im.message.receive_v1` event (schema 2.0) for a text message by `open_id`; `mentions` maps each
        `@_user_N` placeholder in `text` to the open_id mentioned, as Feishu lists them."""
        message_id = "om_" + uuid.uuid4().hex
        self.received.add(message_id)
        listed = [{"key": key, "id": {"open_id": oid, "union_id": "on_" + hashlib.md5(oid.encode()).hexdigest(),
                                      "user_id": oid[-8:]}, "name": f"user {key[7:]}", "tenant_key": "2ca1d211f64f6438"}
                  for key, oid in (mentions or {}).items()]
        return {
            "schema": "2.0",
            "header": {"event_id": uuid.uuid4().hex, "token": token, "create_time": str(int(time.time() * 1000)),
                       "event_type": "im.message.receive_v1", "tenant_key": "2ca1d211f64f6438", "app_id": self.app_id},
            "event": {
                "sender": {"sender_id": {"open_id": open_id, "union_id": "on_" + hashlib.md5(open_id.encode()).hexdigest(),
                                         "user_id": open_id[-8:]}, "sender_type": "user",
                           "tenant_key": "2ca1d211f64f6438"},
                "message": {"message_id": message_id, "root_id": "", "parent_id": "",
                            "create_time": str(int(time.time() * 1000)), "update_time": str(int(time.time() * 1000)),
                            "chat_id": chat_id, "chat_type": chat_type, "message_type": "text",
                            "content": json.dumps({"text": text}, ensure_ascii=False), "mentions": listed,
                            "user_agent": "Mozilla/5.0 Lark/7.14.5"},
            },
        }

    # -- endpoints -------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        if body.get("app_id") != self.app_id:
            return error(400, 10003, "invalid param")
        if body.get("app_secret") != self.app_secret:
            return error(400, 10014, "app secret invalid")
        token = "t-" + uuid.uuid4().hex
        self._tokens[token] = time.monotonic() + self.token_ttl
        self.tokens_issued += 1
        return web.json_response({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": self.token_ttl})

    async def _gate(self, request: web.Request) -> web.StreamResponse | dict[str, Any]:
        if self.script:
            return self.script.popleft()
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:]:
            return error(400, 99991661, "Missing access token for authorization. Please make a request with "
                                        "token attached.")
        if self._tokens.get(auth[7:], 0) < time.monotonic():
            return error(400, 99991663, "Invalid access token for authorization. Please make a request with "
                                        "token attached.")
        body = await _json(request)
        self.requests.append(FeishuRequest(request.method, request.path, dict(request.query), body))
        return body

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        id_type, receive_id = request.query.get("receive_id_type", ""), body.get("receive_id", "")
        if id_type not in ID_TYPES:
            return error(400, 99992402, "field validation failed: receive_id_type")
        if body.get("msg_type") != "interactive" or not isinstance(body.get("content"), str):
            return error(400, 230001, "Your request contains an invalid request parameter.")
        if len(body["content"].encode()) > MAX_CONTENT_BYTES:
            return error(400, 230025, "The length of the message content reaches its limit.")
        try:
            card = json.loads(body["content"])
        except ValueError:
            return error(400, 230001, "invalid message content")
        if id_type == "chat_id":
            if receive_id not in self.chats:
                return error(400, 230002, "The bot can not be outside the group.")
            chat_id = receive_id
        elif receive_id in self.gone:
            return error(400, 230013, "Bot has NO availability to this user.")
        elif id_type != "open_id" or receive_id not in self.users:
            return error(400, 99992361, "open_id cross app")
        else:
            chat_id = "oc_" + hashlib.md5(receive_id.encode()).hexdigest()
        message_id = "om_" + uuid.uuid4().hex
        self.messages[message_id] = {"receive_id": receive_id, "chat_id": chat_id, "card": card}
        now_ms = str(int(time.time() * 1000))
        return ok({"message_id": message_id, "root_id": "", "parent_id": "", "msg_type": "interactive",
                   "create_time": now_ms, "update_time": now_ms, "deleted": False, "updated": False,
                   "chat_id": chat_id, "sender": {"id": self.app_id, "id_type": "app_id", "sender_type": "app",
                                                  "tenant_key": "2ca1d211f64f6438"},
                   "body": {"content": body["content"]}, "mentions": [], "upper_message_id": ""})

    async def _patch(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        message = self.messages.get(request.match_info["message_id"])
        if message is None:
            return error(400, 230001, "Your request contains an invalid request parameter. ext=invalid message_id")
        try:
            message["card"] = json.loads(body.get("content", ""))
        except ValueError:
            return error(400, 230001, "invalid message content")
        return ok({})

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        message_id = request.match_info["message_id"]
        if message_id not in self.received and message_id not in self.messages:
            return error(400, 230011, "The message was withdrawn or does not exist.")
        msg_type, content = body.get("msg_type"), body.get("content")
        if msg_type not in {"text", "post", "interactive"} or not isinstance(content, str):
            return error(400, 230001, "Your request contains an invalid request parameter.")
        try:
            parsed = json.loads(content)
        except ValueError:
            return error(400, 230001, "invalid message content")
        if msg_type == "post" and not (isinstance(parsed, dict) and parsed and all(
                isinstance(v, dict) and isinstance(v.get("content"), list) for v in parsed.values())):
            return error(400, 230001, "invalid message content: a post needs a locale with content")
        if any(r["uuid"] and r["uuid"] == body.get("uuid") for r in self.replies):
            return ok({"message_id": "om_dup"})  # Feishu sends one message per uuid within an hour
        self.replies.append({"message_id": message_id, "msg_type": msg_type, "content": content,
                             "uuid": body.get("uuid") or ""})
        return ok({"message_id": "om_" + uuid.uuid4().hex, "parent_id": message_id, "msg_type": msg_type})

    async def _batch_get_id(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        if request.query.get("user_id_type", "open_id") != "open_id":
            return error(400, 99992402, "field validation failed: user_id_type")
        users = []
        for email in body.get("emails") or []:
            found = self.emails.get(email)
            users.append({"email": email, **({"user_id": found, "status": _active()} if found else {})})
        for mobile in body.get("mobiles") or []:
            found = self.mobiles.get(mobile)
            users.append({"mobile": mobile, **({"user_id": found, "status": _active()} if found else {})})
        return ok({"user_list": users})


# -- answers --------------------------------------------------------------------------------------------


def ok(data: dict[str, Any]) -> web.Response:
    return web.json_response({"code": 0, "msg": "success", "data": data}, headers={"X-Tt-Logid": _log_id()})


def error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    """A Feishu error answer: code, msg and an `error` object with a log id."""
    log_id = _log_id()
    body = {"code": code, "msg": msg, "error": {"log_id": log_id, "troubleshooter": (
        f"排查建议查看(Troubleshooting suggestions): https://open.feishu.cn/search?log_id={log_id}")}}
    return web.json_response(body, status=status, headers={"X-Tt-Logid": log_id, **(headers or {})})


def rate_limited(reset_seconds: int) -> tuple[int, int, str, dict[str, str]]:
    """The gateway's frequency-limit answer, as arguments for `fail_next`."""
    return 429, 99991400, "request trigger frequency limit", {
        "x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": str(reset_seconds)}


# -- callbacks, as Feishu sends them ---------------------------------------------------------------------


def card_action(token: str, open_id: str, *, value: dict[str, Any] | None = None, option: str | None = None,
                form_value: dict[str, Any] | None = None, tag: str = "button", message_id: str = "om_card",
                chat_id: str = "oc_chat", create_time_us: int | None = None) -> dict[str, Any]:
    """A `card.action.trigger` callback (schema 2.0) for a click by `open_id`."""
    action: dict[str, Any] = {"tag": tag}
    if value is not None:
        action["value"] = value
    if option is not None:
        action["option"] = option
    if form_value is not None:
        action["form_value"] = form_value
        action["name"] = "vigil_comment_submit"
    created = create_time_us if create_time_us is not None else int(time.time() * 1_000_000)
    return {
        "schema": "2.0",
        "header": {"event_id": uuid.uuid4().hex, "token": token, "create_time": str(created),
                   "event_type": "card.action.trigger", "tenant_key": "2ca1d211f64f6438", "app_id": "cli_fake"},
        "event": {
            "operator": {"tenant_key": "2ca1d211f64f6438", "user_id": "e33ggbyz", "open_id": open_id,
                         "union_id": "on_" + hashlib.md5(open_id.encode()).hexdigest()},
            "token": "c-" + uuid.uuid4().hex,  # the card's own update token, valid 30 minutes
            "action": action,
            "host": "im_message",
            "context": {"open_message_id": message_id, "open_chat_id": chat_id},
        },
    }


def url_verification(token: str, challenge: str) -> dict[str, Any]:
    """The challenge Feishu posts when a callback URL is saved."""
    return {"challenge": challenge, "token": token, "type": "url_verification"}


def encrypt(encrypt_key: str, payload: dict[str, Any]) -> dict[str, str]:
    """Feishu's `{"encrypt": base64(iv + AES-256-CBC(sha256(key), iv, pkcs7(json)))}`."""
    iv = os.urandom(16)
    cipher = AES.new(hashlib.sha256(encrypt_key.encode()).digest(), AES.MODE_CBC, iv)
    sealed = cipher.encrypt(pad(json.dumps(payload).encode(), AES.block_size))
    return {"encrypt": base64.b64encode(iv + sealed).decode()}


def signed(payload: dict[str, Any], encrypt_key: str, timestamp: int, nonce: str | None = None
           ) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a callback: encrypted and signed when there is an Encrypt Key, plain otherwise."""
    body = json.dumps(encrypt(encrypt_key, payload) if encrypt_key else payload).encode()
    headers = {"Content-Type": "application/json", "X-Request-Id": uuid.uuid4().hex}
    if encrypt_key:
        stamp, nonce = str(timestamp), nonce or uuid.uuid4().hex[:16]
        digest = hashlib.sha256((stamp + nonce + encrypt_key).encode() + body).hexdigest()
        headers |= {"X-Lark-Request-Timestamp": stamp, "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": digest}
    return body, headers


def _active() -> dict[str, bool]:
    return {"is_frozen": False, "is_resigned": False, "is_activated": True, "is_exited": False,
            "is_unjoin": False}


def _log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:18].upper()


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
