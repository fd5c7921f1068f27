"""One local fake of all six group-bot webhooks: Feishu/Lark, DingTalk, WeCom, Slack, Zoom and Telegram.

Each endpoint lives at the platform's own path, checks the platform's credential (hook token, access
token + signature, key, webhook path, verification token, bot token), validates the body's shape and
answers in the platform's shape: Feishu, DingTalk and WeCom report errors with HTTP 200 and a non-zero
code; Slack answers plain-text codes; Telegram answers `{"ok": false, ...}` with a 4xx. The DingTalk
endpoint enforces the 20-messages-a-minute limit. Scripted answers and delays simulate outages.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
from multidict import CIMultiDict


@dataclass
class Received:
    """One accepted request: which platform, the path, query, headers and JSON body."""

    platform: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: Any


@dataclass
class FakeGroupBots:
    feishu: dict[str, str] = field(default_factory=dict)  # hook token -> signing secret ("" = unsigned)
    feishu_keywords: dict[str, set[str]] = field(default_factory=dict)  # hook token -> security keywords
    dingtalk: dict[str, str] = field(default_factory=dict)  # access_token -> signing secret ("" = unsigned)
    wecom: set[str] = field(default_factory=set)  # webhook keys
    slack: set[str] = field(default_factory=set)  # "T000/B000/XXXX" webhook paths
    zoom: dict[str, str] = field(default_factory=dict)  # endpoint id -> verification token
    telegram: dict[str, set[str]] = field(default_factory=dict)  # bot token -> chat ids the bot is in
    clock: Callable[[], float] = time.time
    received: list[Received] = field(default_factory=list)
    script: dict[str, deque[web.Response]] = field(default_factory=lambda: defaultdict(deque))
    delay: dict[str, float] = field(default_factory=dict)
    _dingtalk_sends: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _telegram_ids: int = 1000

    def answer_next(self, platform: str, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Answer the platform's next authenticated request with this status and body (JSON unless str)."""
        text = body if isinstance(body, str) else json.dumps(body)
        ctype = "text/plain" if isinstance(body, str) else "application/json"
        self.script[platform].append(web.Response(status=status, text=text, headers=headers,
                                                  content_type=ctype))

    def of(self, platform: str) -> list[Received]:
        """The requests one platform accepted, in order."""
        return [r for r in self.received if r.platform == platform]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._feishu)
        app.router.add_post("/robot/send", self._dingtalk)
        app.router.add_post("/cgi-bin/webhook/send", self._wecom)
        app.router.add_post("/services/{a}/{b}/{c}", self._slack)
        app.router.add_post("/chat/webhooks/incomingwebhook/{id}", self._zoom)
        app.router.add_post("/bot{token}/sendMessage", self._telegram)
        return app

    async def _accept(self, platform: str, request: web.Request, body: Any) -> web.Response | None:
        """Record an authenticated request; the scripted answer if one is queued."""
        self.received.append(Received(platform, request.path, dict(request.query), CIMultiDict(request.headers),
                                      body))
        if self.delay.get(platform):
            await asyncio.sleep(self.delay[platform])
        return self.script[platform].popleft() if self.script[platform] else None

    # Feishu/Lark: https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
    async def _feishu(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await _json(request)
        if token not in self.feishu:
            return web.json_response({"code": 19001, "data": {},
                                      "msg": "param invalid: incoming webhook access token invalid"})
        secret = self.feishu[token]
        if secret:
            stamp = str(body.get("timestamp", ""))
            key = f"{stamp}\n{secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            fresh = stamp.isdigit() and abs(self.clock() - int(stamp)) < 3600
            if not fresh or not hmac.compare_digest(expected, str(body.get("sign", ""))):
                return web.json_response({"code": 19021, "data": {}, "msg": "sign match fail or timestamp is not "
                                          "within one hour from current time"})
        if not _feishu_valid(body):
            return web.json_response({"code": 9499, "data": {}, "msg": "Bad Request"})
        keywords = self.feishu_keywords.get(token)
        if keywords and not any(k in _feishu_text(body) for k in keywords):
            # Feishu's keyword check: at least one of the bot's keywords somewhere in the message text.
            return web.json_response({"code": 19024, "data": {}, "msg": "Key Words Not Found"})
        scripted = await self._accept("feishu", request, body)
        return scripted or web.json_response({"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {},
                                              "msg": "success"})

    # DingTalk: https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages
    async def _dingtalk(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        body = await _json(request)
        if token not in self.dingtalk:
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        secret = self.dingtalk[token]
        if secret:
            stamp = request.query.get("timestamp", "")
            digest = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
            fresh = stamp.isdigit() and abs(self.clock() * 1000 - int(stamp)) < 3_600_000
            if not fresh or not hmac.compare_digest(base64.b64encode(digest).decode(), request.query.get("sign", "")):
                return web.json_response({"errcode": 310000, "errmsg": "sign not match, more: "
                                          "[https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"})
        sends = [t for t in self._dingtalk_sends[token] if self.clock() - t < 60]
        if len(sends) >= 20:
            return web.json_response({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        self._dingtalk_sends[token] = sends + [self.clock()]
        kind = body.get("msgtype")
        if kind not in ("text", "markdown", "link", "actionCard", "feedCard") or not isinstance(body.get(kind), dict):
            return web.json_response({"errcode": 40035, "errmsg": "缺少参数 json"})
        scripted = await self._accept("dingtalk", request, body)
        return scripted or web.json_response({"errcode": 0, "errmsg": "ok"})

    # WeCom: https://developer.work.weixin.qq.com/document/path/91770
    async def _wecom(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if request.query.get("key") not in self.wecom:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url, hint: [1700000000_1_x], "
                                      "from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=93000"})
        kind = body.get("msgtype")
        if kind not in ("text", "markdown", "image", "news", "file", "template_card"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        content = (body.get(kind) or {}).get("content", "")
        if len(content.encode()) > (4096 if kind == "markdown" else 2048):
            return web.json_response({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"})
        scripted = await self._accept("wecom", request, body)
        return scripted or web.json_response({"errcode": 0, "errmsg": "ok"})

    # Slack: https://api.slack.com/messaging/webhooks#handling_errors
    async def _slack(self, request: web.Request) -> web.Response:
        path = "/".join(request.match_info[k] for k in "abc")
        if path not in self.slack:
            return web.Response(status=404, text="no_service")
        try:
            body = await _json(request)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return web.Response(status=400, text="missing_text_or_fallback_or_attachments")
        scripted = await self._accept("slack", request, body)
        return scripted or web.Response(text="ok")

    # Zoom Incoming Webhook app (format=full).
    async def _zoom(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["id"]
        if endpoint not in self.zoom:
            return web.json_response({"code": 404, "message": "Endpoint not found."}, status=404)
        if not hmac.compare_digest(request.headers.get("Authorization", ""), self.zoom[endpoint]):
            return web.json_response({"code": 401, "message": "Invalid authorization token."}, status=401)
        body = await _json(request)
        if request.query.get("format") == "full" and not (body.get("content") or {}).get("body"):
            return web.json_response({"code": 400, "message": "Invalid message body."}, status=400)
        scripted = await self._accept("zoom", request, body)
        return scripted or web.Response(status=200)

    # Telegram Bot API: https://core.telegram.org/bots/api#sendmessage
    async def _telegram(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token not in self.telegram:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        body = await _json(request)
        chat = str(body.get("chat_id", ""))
        if chat not in self.telegram[token]:
            return _telegram_error(400, "Bad Request: chat not found")
        problem = _html_problem(body.get("text", "")) if body.get("parse_mode") == "HTML" else None
        if problem:
            return _telegram_error(400, f"Bad Request: can't parse entities: {problem}")
        scripted = await self._accept("telegram", request, body)
        self._telegram_ids += 1
        return scripted or web.json_response({"ok": True, "result": {
            "message_id": self._telegram_ids, "chat": {"id": chat, "type": "group"}, "date": int(self.clock()),
            "text": body.get("text", "")}})


async def _json(request: web.Request) -> dict[str, Any]:
    data = json.loads(await request.read())
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


def _feishu_valid(body: dict[str, Any]) -> bool:
    if body.get("msg_type") == "interactive":
        return isinstance(body.get("card"), dict)
    if body.get("msg_type") == "text":
        return isinstance((body.get("content") or {}).get("text"), str)
    if body.get("msg_type") != "post":
        return False
    langs = ((body.get("content") or {}).get("post") or {})
    for lang in langs.values():
        for line in lang.get("content", []):
            for item in line:
                if item.get("tag") not in ("text", "a", "at", "img", "media", "emotion"):
                    return False
                if item.get("tag") == "at" and not item.get("user_id"):
                    return False
    return bool(langs)


def _feishu_text(body: dict[str, Any]) -> str:
    """The text a Feishu keyword check reads: the text message, the post's content elements, the card's JSON."""
    if body.get("msg_type") == "interactive":
        return json.dumps(body.get("card"), ensure_ascii=False)
    content = body.get("content") or {}
    if body.get("msg_type") == "text":
        return str(content.get("text", ""))
    return "".join(str(item.get("text", "")) for lang in (content.get("post") or {}).values()
                   for line in lang.get("content", []) for item in line)


def _telegram_error(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)


class _TelegramHtml(HTMLParser):
    """Telegram's HTML subset: known tags only, properly nested, `&` only in entities."""

    ALLOWED = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler",
               "span", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self.problem = self.problem or f"unsupported start tag \"{tag}\""
        self.stack.append(tag)

    def handle_data(self, data: str) -> None:
        if any(c in data for c in "<>&"):
            self.problem = self.problem or "unescaped <, > or & in text"

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problem = self.problem or f"unexpected end tag \"{tag}\""


def _html_problem(text: str) -> str | None:
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.stack:
        return parser.problem or f"can't find end tag corresponding to start tag \"{parser.stack[-1]}\""
    return parser.problem
