"""A local fake of DingTalk: the OpenAPI (token, card instances, robot messages), oapi (user by mobile) and the
Stream gateway; `robot_message` builds a message to the robot as DingTalk delivers it.

It checks credentials and access tokens as DingTalk does and answers in DingTalk's shapes:
api.dingtalk.com errors are HTTP 4xx/5xx with `{requestid, code, message}`; oapi.dingtalk.com
answers HTTP 200 with a non-zero `errcode`. The Stream gateway hands out a websocket endpoint and
ticket, pushes card callbacks as Stream frames and collects the client's ACK frames.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

CARD_TOPIC = "/v1.0/card/instances/callback"
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
SPACE = re.compile(r"^dtv1\.card//(IM_ROBOT|IM_GROUP)\.(.+)$")


@dataclass
class DingTalkRequest:
    """One request the fake accepted (after auth): method, path, JSON body and query."""

    method: str
    path: str
    body: dict[str, Any]
    query: dict[str, str]


@dataclass
class FakeDingTalk:
    client_id: str
    client_secret: str
    templates: set[str]
    users: set[str]  # userids that exist
    mobiles: dict[str, str] = field(default_factory=dict)  # mobile -> userid
    groups: set[str] = field(default_factory=set)  # openConversationIds the robot is in
    requests: list[DingTalkRequest] = field(default_factory=list)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # outTrackId -> latest cardParamMap
    tokens_issued: int = 0
    script: deque[web.Response] = field(default_factory=deque)
    acks: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, str]] = field(default_factory=list)
    _tokens: set[str] = field(default_factory=set)
    _tickets: set[str] = field(default_factory=set)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _pending: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1.0/oauth2/accessToken", self._token)
        app.router.add_post("/v1.0/card/instances/createAndDeliver", self._create_and_deliver)
        app.router.add_put("/v1.0/card/instances", self._update)
        app.router.add_post("/topapi/v2/user/getbymobile", self._getbymobile)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._robot_to_users)
        app.router.add_post("/v1.0/robot/groupMessages/send", self._robot_to_group)
        app.router.add_post("/v1.0/gateway/connections/open", self._open)
        app.router.add_get("/gateway/connect", self._socket)
        return app

    # -- scripting -------------------------------------------------------------------------------

    def fail_next(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        """Answer the next OpenAPI call (not the token call) with an api.dingtalk.com error."""
        self.script.append(_error(status, code, message, headers))

    def fail_next_oapi(self, errcode: int, errmsg: str) -> None:
        """Answer the next oapi call with HTTP 200 and this errcode, as oapi does."""
        self.script.append(web.json_response({"errcode": errcode, "errmsg": errmsg, "request_id": _rid()}))

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (DingTalk tokens live 7200 s)."""
        self._tokens.clear()

    def sent(self) -> list[DingTalkRequest]:
        return [r for r in self.requests if r.path.endswith("/createAndDeliver")]

    def updates(self) -> list[DingTalkRequest]:
        return [r for r in self.requests if r.method == "PUT"]

    def robot_texts(self) -> list[tuple[str, str]]:
        """Every sampleText the robot sent: (userid or openConversationId, content)."""
        out = []
        for r in self.requests:
            if r.path.startswith("/v1.0/robot/"):
                content = json.loads(r.body["msgParam"])["content"]
                for to in r.body.get("userIds") or [r.body.get("openConversationId")]:
                    out.append((str(to), content))
        return out

    # -- OpenAPI ---------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        if body.get("appKey") != self.client_id or body.get("appSecret") != self.client_secret:
            return _error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token = uuid.uuid4().hex
        self._tokens.add(token)
        self.tokens_issued += 1
        return web.json_response({"accessToken": token, "expireIn": 7200})

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("x-acs-dingtalk-access-token", "") in self._tokens

    async def _v1_gate(self, request: web.Request) -> web.StreamResponse | dict[str, Any]:
        if self.script:
            return self.script.popleft()
        if not self._authorised(request):
            return _error(401, "InvalidAuthentication", "不合法的access_token")
        body = await _json(request)
        self.requests.append(DingTalkRequest(request.method, request.path, body, dict(request.query)))
        return body

    async def _create_and_deliver(self, request: web.Request) -> web.StreamResponse:
        body = await self._v1_gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        for name in ("cardTemplateId", "outTrackId", "openSpaceId", "callbackType"):
            if not body.get(name):
                return _error(400, f"param.{name}Empty", f"{name} is empty")
        if body["cardTemplateId"] not in self.templates:
            return _error(400, "param.cardTemplateNotExist", "card template does not exist")
        params = (body.get("cardData") or {}).get("cardParamMap")
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return _error(400, "param.cardParamMapInvalid", "cardParamMap values must be strings")
        space = SPACE.match(body["openSpaceId"])
        if space is None:
            return _error(400, "param.openSpaceIdInvalid", "openSpaceId is invalid")
        kind, target = space.groups()
        if kind == "IM_ROBOT":
            if (body.get("imRobotOpenDeliverModel") or {}).get("spaceType") != "IM_ROBOT":
                return _error(400, "param.openDeliverModelInvalid", "imRobotOpenDeliverModel.spaceType missing")
            if target not in self.users:
                return _error(400, "param.userIdNotExist", "用户 userId 不存在")
        elif (body.get("imGroupOpenDeliverModel") or {}).get("robotCode") is None or target not in self.groups:
            return _error(400, "param.openSpaceIdInvalid", "the robot is not in this group")
        self.cards[body["outTrackId"]] = dict(params)
        return web.json_response({"success": True, "result": {"outTrackId": body["outTrackId"], "deliverResults": [
            {"spaceType": kind, "spaceId": target, "success": True, "errorMsg": "", "carrierId": _rid()}]}})

    async def _update(self, request: web.Request) -> web.StreamResponse:
        body = await self._v1_gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        track = body.get("outTrackId")
        if not track:
            return _error(400, "param.outTrackIdEmpty", "outTrackId is empty")
        if track not in self.cards:
            return _error(400, "param.cardInstanceNotExist", "card instance does not exist")
        params = (body.get("cardData") or {}).get("cardParamMap") or {}
        by_key = (body.get("cardUpdateOptions") or {}).get("updateCardDataByKey", False)
        self.cards[track] = {**self.cards[track], **params} if by_key else dict(params)
        return web.json_response({"success": True, "result": True})

    async def _robot(self, request: web.Request) -> web.StreamResponse | dict[str, Any]:
        body = await self._v1_gate(request)
        if isinstance(body, web.StreamResponse):
            return body
        if body.get("robotCode") != self.client_id:
            return _error(400, "resource.not.found", "robot 不存在")
        if body.get("msgKey") != "sampleText":
            return _error(400, "param.msgKeyInvalid", "msgKey is not supported by this fake")
        try:
            param = json.loads(body.get("msgParam") or "")
        except ValueError:
            return _error(400, "param.msgParamInvalid", "msgParam must be a JSON string")
        if not isinstance(param, dict) or not isinstance(param.get("content"), str) or not param["content"]:
            return _error(400, "param.msgParamInvalid", "msgParam.content is empty")
        return body

    async def _robot_to_users(self, request: web.Request) -> web.StreamResponse:
        body = await self._robot(request)
        if isinstance(body, web.StreamResponse):
            return body
        users = [u for u in body.get("userIds") or [] if isinstance(u, str)]
        if not users:
            return _error(400, "param.userIdsEmpty", "userIds is empty")
        return web.json_response({"processQueryKey": _rid(), "invalidStaffIdList": [u for u in users
                                                                                     if u not in self.users],
                                  "flowControlledStaffIdList": []})

    async def _robot_to_group(self, request: web.Request) -> web.StreamResponse:
        body = await self._robot(request)
        if isinstance(body, web.StreamResponse):
            return body
        if body.get("openConversationId") not in self.groups:
            return _error(400, "param.openConversationIdInvalid", "the robot is not in this group")
        return web.json_response({"processQueryKey": _rid()})

    # -- oapi ------------------------------------------------------------------------------------

    async def _getbymobile(self, request: web.Request) -> web.StreamResponse:
        if self.script:
            return self.script.popleft()
        if request.query.get("access_token", "") not in self._tokens:
            return web.json_response({"errcode": 40014, "errmsg": "不合法的access_token", "request_id": _rid()})
        body = await _json(request)
        self.requests.append(DingTalkRequest(request.method, request.path, body, dict(request.query)))
        userid = self.mobiles.get(str(body.get("mobile", "")))
        if userid is None:
            return web.json_response({"errcode": 60121, "errmsg": "找不到该用户", "request_id": _rid()})
        return web.json_response({"errcode": 0, "errmsg": "ok", "request_id": _rid(),
                                  "result": {"userid": userid, "exclusive_account_userid_list": []}})

    # -- Stream gateway --------------------------------------------------------------------------

    async def _open(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
            return _error(401, "InvalidAuthentication", "clientId or clientSecret is invalid")
        self.subscriptions = list(body.get("subscriptions") or [])
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return web.json_response({"endpoint": f"ws://{request.host}/gateway/connect", "ticket": ticket})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=403, text="invalid ticket")
        self._tickets.discard(ticket)  # a ticket opens one connection
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.acks.append(frame)
                waiter = self._pending.pop(str(frame.get("headers", {}).get("messageId")), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
        finally:
            self._sockets.remove(ws)
        return ws

    async def connected(self, timeout: float = 10.0) -> None:
        """Wait until a Stream client holds a websocket."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._sockets:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("no Stream client connected to the fake gateway")
            await asyncio.sleep(0.02)

    async def push_card_callback(self, user_id: str, action: str, out_track_id: str, *,
                                 params: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Push a card click as a Stream CALLBACK frame; returns the client's ACK with `data` decoded."""
        return await self._push(CARD_TOPIC, card_callback(user_id, action, out_track_id, params=params), timeout)

    async def push_robot_message(self, message: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
        """Push a message to the robot (`robot_message`) as a Stream CALLBACK frame on the chatbot topic;
        returns the client's ACK."""
        if not any(s.get("topic") == ROBOT_TOPIC for s in self.subscriptions):
            raise AssertionError("the Stream client did not subscribe to the chatbot topic")
        return await self._push(ROBOT_TOPIC, message, timeout)

    async def _push(self, topic: str, data: dict[str, Any], timeout: float) -> dict[str, Any]:
        await self.connected(timeout)
        message_id = uuid.uuid4().hex
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = waiter
        frame = {"specVersion": "1.0", "type": "CALLBACK", "headers": {
            "appId": self.client_id, "connectionId": uuid.uuid4().hex, "contentType": "application/json",
            "messageId": message_id, "time": str(int(time.time() * 1000)), "topic": topic},
            "data": json.dumps(data)}
        await self._sockets[-1].send_str(json.dumps(frame))
        ack = await asyncio.wait_for(waiter, timeout)
        try:
            decoded = json.loads(ack.get("data") or "{}")
        except ValueError:  # the chatbot topic's ACK carries a plain "OK"
            decoded = ack.get("data")
        return {**ack, "data": decoded}


def card_callback(user_id: str, action: str, out_track_id: str, *,
                  params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A card `sendCardRequest` click as DingTalk delivers it (Stream `data`, or an HTTP callback body)."""
    content = {"cardPrivateData": {"actionIds": [action], "params": {"action": action, **(params or {})}}}
    return {"extension": "{}", "corpId": "ding0123456789abcdef", "type": "actionCallback", "userId": user_id,
            "content": json.dumps(content), "outTrackId": out_track_id, "spaceType": "IM", "userIdType": 1}


def robot_message(client_id: str, sender: str, text: str, *, at: tuple[str, ...] = (), group: str = "",
                  bot_user_id: str = "$:LWCP_v1:$robot") -> dict[str, Any]:
    """A text message to the robot as DingTalk posts it to the robot's HTTP message URL (and as the Stream
    chatbot topic's `data`): `at` are the staff ids mentioned, whose "@name" stays in the text; in a group
    (`group` = its openConversationId) the robot itself is mentioned too and listed without a staff id."""
    at_users = [{"dingtalkId": f"$:LWCP_v1:${uuid.uuid5(uuid.NAMESPACE_OID, s).hex}", "staffId": s} for s in at]
    if group:
        at_users.insert(0, {"dingtalkId": bot_user_id})
    return {
        "conversationId": group or f"cid{uuid.uuid5(uuid.NAMESPACE_OID, sender).hex}",
        "atUsers": at_users, "chatbotCorpId": "ding0123456789abcdef", "chatbotUserId": bot_user_id,
        "msgId": "msg" + uuid.uuid4().hex, "senderNick": sender.title(), "isAdmin": False,
        "senderStaffId": sender, "sessionWebhookExpiredTime": int(time.time() * 1000) + 5_400_000,
        "createAt": int(time.time() * 1000), "senderCorpId": "ding0123456789abcdef",
        "conversationType": "2" if group else "1", "senderId": f"$:LWCP_v1:${sender}",
        "isInAtList": True, "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=" + _rid(),
        "text": {"content": text}, "robotCode": client_id, "msgtype": "text",
        **({"conversationTitle": "ops"} if group else {}),
    }


def signed_headers(secret: str, timestamp_ms: int) -> dict[str, str]:
    """The `timestamp` and `sign` headers DingTalk puts on an HTTP callback."""
    stamp = str(timestamp_ms)
    mac = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
    return {"timestamp": stamp, "sign": base64.b64encode(mac).decode(), "Content-Type": "application/json"}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"requestid": _rid(), "code": code, "message": message}, status=status,
                             headers=headers)


def _rid() -> str:
    return uuid.uuid4().hex[:16]


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
