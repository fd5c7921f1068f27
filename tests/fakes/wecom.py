"""A local fake of WeCom's server API (token, app messages, template card updates, userid lookups) and
its callback signing and encryption, written from WeCom's docs independently of the adapter.

Like qyapi.weixin.qq.com it answers HTTP 200 with `{"errcode": N, "errmsg": ...}` for every API error,
checks the `access_token` query parameter (40014 invalid, 41001 missing), the agent id (40056),
the recipient (81013 with `invaliduser`), and issues a `response_code` per interactive card sent and
per click, each of which update_template_card accepts once and only within 72 hours (docs path 94888);
a code used again, expired or never issued is refused and listed in `refused_codes`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
RESPONSE_CODE_TTL_S = 72 * 3600


@dataclass
class WeComRequest:
    """One API request the fake accepted (after the token check): path and JSON body."""

    path: str
    body: dict[str, Any]


@dataclass
class FakeWeCom:
    corp_id: str
    corp_secret: str
    agent_id: int
    users: set[str]  # userids in the app's visible range
    mobiles: dict[str, str] = field(default_factory=dict)  # mobile -> userid
    emails: dict[tuple[str, int], str] = field(default_factory=dict)  # (email, email_type) -> userid
    requests: list[WeComRequest] = field(default_factory=list)
    cards: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (userid, task_id) -> card shown
    tokens_issued: int = 0
    script: deque[web.Response] = field(default_factory=deque)
    refused_codes: list[str] = field(default_factory=list)  # response codes update_template_card turned down
    clock: Any = time.time  # WeCom's clock, for the 72-hour validity of response codes
    _tokens: set[str] = field(default_factory=set)
    # unspent response_code -> (userid, task_id, issued at); a code leaves when used, even by a bad request
    _codes: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    _spent: set[str] = field(default_factory=set)
    chats: set[str] = field(default_factory=set)  # appchat chatids the app created (appchat/create)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/message/send", self._send)
        app.router.add_post("/cgi-bin/message/update_template_card", self._update)
        app.router.add_post("/cgi-bin/appchat/send", self._appchat_send)
        app.router.add_post("/cgi-bin/user/getuserid", self._getuserid)
        app.router.add_post("/cgi-bin/user/get_userid_by_email", self._by_email)
        return app

    # -- scripting -------------------------------------------------------------------------------

    def fail_next(self, errcode: int, errmsg: str) -> None:
        """Answer the next API call (not gettoken) with HTTP 200 and this errcode, as WeCom does."""
        self.script.append(_err(errcode, errmsg))

    def fail_next_http(self, status: int, text: str = "bad gateway") -> None:
        """Answer the next API call with a bare HTTP error, as the gateway in front of WeCom may."""
        self.script.append(web.Response(status=status, text=text))

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (WeCom answers 42001 or 40014)."""
        self._tokens.clear()

    def click_code(self, userid: str, task_id: str) -> str:
        """The fresh response_code WeCom puts in a click callback for this user's card."""
        code = uuid.uuid4().hex + uuid.uuid4().hex
        self._codes[code] = (userid, task_id, self.clock())
        return code

    def sent(self) -> list[WeComRequest]:
        return [r for r in self.requests if r.path.endswith("/send") and r.body.get("msgtype") == "template_card"]

    def texts(self) -> list[WeComRequest]:
        return [r for r in self.requests if r.path.endswith("/send") and r.body.get("msgtype") == "text"]

    def chat_posts(self) -> list[WeComRequest]:
        return [r for r in self.requests if r.path == "/cgi-bin/appchat/send"]

    def updates(self) -> list[WeComRequest]:
        return [r for r in self.requests if r.path.endswith("/update_template_card")]

    # -- API ---------------------------------------------------------------------------------------

    async def _gettoken(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("corpid") != self.corp_id:
            return _err(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.corp_secret:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        token = uuid.uuid4().hex * 2
        self._tokens.add(token)
        self.tokens_issued += 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _gate(self, request: web.Request) -> web.StreamResponse | dict[str, Any]:
        if self.script:
            return self.script.popleft()
        token = request.query.get("access_token")
        if not token:
            return _err(41001, "access_token missing")
        if token not in self._tokens:
            return _err(40014, "invalid access_token")
        try:
            body = await request.json()
        except ValueError:
            return _err(47001, "data format error")
        if not isinstance(body, dict):
            return _err(47001, "data format error")
        self.requests.append(WeComRequest(request.path, body))
        return body

    async def _send(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        if body.get("agentid") != self.agent_id:
            return _err(40056, "invalid agentid")
        touser = [u for u in str(body.get("touser", "")).split("|") if u]
        if not touser:
            return _err(40058, "invalid parameter: touser is empty")
        invalid = [u for u in touser if u not in self.users]
        if len(invalid) == len(touser):
            return _err(81013, "user & party & tag all invalid", invaliduser="|".join(invalid))
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid),
                                  "invalidparty": "", "invalidtag": "", "unlicenseduser": "",
                                  "msgid": uuid.uuid4().hex}
        if body.get("msgtype") == "template_card":
            card = body.get("template_card") or {}
            problem = _card_problem(card)
            if problem:
                return _err(40058, f"invalid template_card: {problem}")
            if card["card_type"] in INTERACTIVE:
                answer["response_code"] = uuid.uuid4().hex + uuid.uuid4().hex
                self._codes[answer["response_code"]] = (touser[0], card["task_id"], self.clock())
            for user in touser:
                if user in self.users:
                    self.cards[(user, card["task_id"])] = card
        elif body.get("msgtype") == "text":
            if not (body.get("text") or {}).get("content"):
                return _err(40058, "invalid parameter: text.content is empty")
        else:
            return _err(40008, "invalid message type")
        return web.json_response(answer)

    async def _appchat_send(self, request: web.Request) -> web.StreamResponse:
        """appchat/send (https://developer.work.weixin.qq.com/document/path/90248): text, markdown, textcard...;
        no template_card. Answers errcode/errmsg only, no msgid."""
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        if body.get("chatid") not in self.chats:
            return _err(86003, "chat not exist")
        kind = body.get("msgtype")
        if kind == "textcard":
            card = body.get("textcard") or {}
            if not card.get("title") or not card.get("description") or not card.get("url"):
                return _err(40058, "invalid parameter: textcard needs title, description and url")
        elif kind not in ("text", "markdown", "news"):
            return _err(40008, "invalid message type")
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _update(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        if body.get("agentid") != self.agent_id:
            return _err(40056, "invalid agentid")
        # A response_code is valid once, for 72 hours: spend it even if the rest of the request is wrong.
        code = str(body.get("response_code", ""))
        owner = self._codes.pop(code, None)
        if owner is None or self.clock() - owner[2] >= RESPONSE_CODE_TTL_S:
            self.refused_codes.append(code)
            return _err(40058, "response_code already used" if code in self._spent else "invalid response_code")
        self._spent.add(code)
        card = body.get("template_card")
        problem = _card_problem(card) if isinstance(card, dict) else "template_card is missing"
        if problem:
            return _err(40058, f"invalid template_card: {problem}")
        for user in body.get("userids") or [owner[0]]:
            if (user, owner[1]) in self.cards:
                self.cards[(user, owner[1])] = card
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": []})

    async def _getuserid(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        userid = self.mobiles.get(str(body.get("mobile", "")))
        return _found(userid)

    async def _by_email(self, request: web.Request) -> web.StreamResponse:
        body = await self._gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        userid = self.emails.get((str(body.get("email", "")), int(body.get("email_type") or 1)))
        return _found(userid)

    # -- callbacks -----------------------------------------------------------------------------------

    def click(self, token: str, encoding_aes_key: str, userid: str, event_key: str, task_id: str, *,
              selected: dict[str, list[str]] | None = None, timestamp: int | None = None,
              card_type: str = "button_interaction") -> tuple[dict[str, str], bytes, str]:
        """A signed, encrypted template_card_event POST as WeCom sends it: (query, body, its response_code)."""
        code = self.click_code(userid, task_id)
        xml = card_event_xml(self.corp_id, self.agent_id, userid, event_key, task_id, code,
                             selected=selected, card_type=card_type)
        query, body = encrypted_callback(token, encoding_aes_key, self.corp_id, self.agent_id, xml,
                                         timestamp=timestamp)
        return query, body, code


    def message(self, token: str, encoding_aes_key: str, userid: str, content: str, *,
                timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """A signed, encrypted text message a user sent the app, as WeCom POSTs it: (query, body)."""
        return encrypted_callback(token, encoding_aes_key, self.corp_id, self.agent_id,
                                  text_message_xml(self.corp_id, self.agent_id, userid, content), timestamp=timestamp)


def _card_problem(card: dict[str, Any]) -> str:
    card_type = card.get("card_type")
    if card_type not in {"text_notice", "news_notice"} | INTERACTIVE:
        return "card_type"
    if card_type in INTERACTIVE and not card.get("task_id"):
        return "task_id is required for interactive cards"
    if card_type == "button_interaction":
        buttons = card.get("button_list") or []
        if not 1 <= len(buttons) <= 6:
            return "button_list needs 1 to 6 buttons"
        if any(b.get("type", 0) == 0 and not b.get("key") for b in buttons):
            return "a callback button needs a key"
    if not (card.get("main_title") or {}).get("title") and card_type != "news_notice":
        return "main_title.title is required"
    return ""


def _found(userid: str | None) -> web.Response:
    if userid is None:
        return _err(46004, "user no exist")
    return web.json_response({"errcode": 0, "errmsg": "ok", "userid": userid})


def _err(errcode: int, errmsg: str, **extra: Any) -> web.Response:
    hint = f"{errmsg}, hint: [{int(time.time())}_{uuid.uuid4().hex[:8]}], from ip: 127.0.0.1, more info at " \
           f"https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    return web.json_response({"errcode": errcode, "errmsg": hint, **extra})


# -- WXBizMsgCrypt, as WeCom applies it to callbacks ---------------------------------------------------


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: SHA-1 of the four values sorted and concatenated."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def encrypt(encoding_aes_key: str, receive_id: str, message: bytes) -> str:
    """AES-256-CBC (key = base64(EncodingAESKey + "="), IV = key[:16]) of random(16) + len + msg + corp id,
    PKCS#7-padded to 32 bytes, base64-encoded."""
    key = base64.b64decode(encoding_aes_key + "=")
    plain = os.urandom(16) + struct.pack(">I", len(message)) + message + receive_id.encode()
    padder = padding.PKCS7(256).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def encrypted_callback(token: str, encoding_aes_key: str, corp_id: str, agent_id: int, xml: str, *,
                       timestamp: int | None = None, nonce: str | None = None) -> tuple[dict[str, str], bytes]:
    """The query string and XML body of a callback POST carrying `xml`."""
    stamp, nonce = str(timestamp if timestamp is not None else int(time.time())), nonce or uuid.uuid4().hex[:10]
    cipher = encrypt(encoding_aes_key, corp_id, xml.encode())
    body = (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA[{cipher}]]></Encrypt>"
            f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>")
    return {"msg_signature": signature(token, stamp, nonce, cipher), "timestamp": stamp, "nonce": nonce}, body.encode()


def url_verification(token: str, encoding_aes_key: str, corp_id: str, echo: str, *,
                     timestamp: int | None = None) -> dict[str, str]:
    """The query of the GET WeCom sends to check a callback URL; the answer must be `echo`."""
    stamp, nonce = str(timestamp if timestamp is not None else int(time.time())), uuid.uuid4().hex[:10]
    echostr = encrypt(encoding_aes_key, corp_id, echo.encode())
    return {"msg_signature": signature(token, stamp, nonce, echostr), "timestamp": stamp, "nonce": nonce,
            "echostr": echostr}


def card_event_xml(corp_id: str, agent_id: int, userid: str, event_key: str, task_id: str, response_code: str, *,
                   selected: dict[str, list[str]] | None = None, card_type: str = "button_interaction") -> str:
    """The decrypted template_card_event (docs path 90376), SelectedItems included when given."""
    items = "".join(
        f"<SelectedItem><QuestionKey><![CDATA[{q}]]></QuestionKey><OptionIds>"
        + "".join(f"<OptionId><![CDATA[{o}]]></OptionId>" for o in options)
        + "</OptionIds></SelectedItem>" for q, options in (selected or {}).items())
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{userid}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{event_key}]]></EventKey>"
            f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[{card_type}]]></CardType>"
            f"<ResponseCode><![CDATA[{response_code}]]></ResponseCode><AgentID>{agent_id}</AgentID>"
            + (f"<SelectedItems>{items}</SelectedItems>" if items else "") + "</xml>")


def text_message_xml(corp_id: str, agent_id: int, userid: str, content: str, msg_id: str | None = None) -> str:
    """The decrypted text message a user sends an app (docs path 90239)."""
    return (f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[{userid}]]>"
            f"</FromUserName><CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or int(time.time_ns() // 1000)}</MsgId>"
            f"<AgentID>{agent_id}</AgentID></xml>")
