"""A local fake of Alibaba Cloud's dysmsapi `SendSms`, verifying signature v1.0 as Aliyun does.

Protocol errors (unknown key, bad signature, stale timestamp, reused nonce) get HTTP 4xx; business
errors (bad number, unknown sign name or template, rate limit) get HTTP 200 with an error Code,
which is how Aliyun answers them. The signature is recomputed here independently of the provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from aiohttp import web

# Aliyun rejects timestamps more than 15 minutes away from its clock.
MAX_SKEW = timedelta(minutes=15)
NUMBER = re.compile(r"^(\+|00)?\d{11,15}$")


def _enc(value: str) -> str:
    return quote(value, safe="~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    query = "&".join(f"{_enc(k)}={_enc(params[k])}" for k in sorted(params) if k != "Signature")
    return f"{method}&{_enc('/')}&{_enc(query)}"


@dataclass
class FakeAliyun:
    keys: dict[str, str]
    sign_names: set[str]
    templates: set[str]
    requests: list[dict[str, str]] = field(default_factory=list)
    script: deque[tuple[int, dict[str, object], dict[str, str]]] = field(default_factory=deque)
    nonces: set[str] = field(default_factory=set)
    delay: float = 0.0

    def answer_next(
        self, status: int, body: dict[str, object], headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request (after its signature checks out) with this status and JSON."""
        self.script.append((status, body, headers or {}))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        params = dict(request.query)
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        if error := self._check_protocol(request.method, params):
            return error
        self.requests.append(params)
        if self.script:
            status, body, headers = self.script.popleft()
            return web.json_response({"RequestId": _rid(), **body}, status=status, headers=headers)
        return self._send_sms(params)

    def _check_protocol(self, method: str, params: dict[str, str]) -> web.Response | None:
        required = ["AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "Timestamp", "Action"]
        for name in required:
            if not params.get(name):
                return _fail(400, f"Missing{name}", f"{name} is mandatory for this action.")
        secret = self.keys.get(params["AccessKeyId"])
        if secret is None:
            return _fail(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            return _fail(400, "InvalidSignatureMethod", "Specified signature method is not supported.")
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return _fail(
                400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
            )
        if abs(datetime.now(UTC) - stamp) > MAX_SKEW:
            return _fail(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        to_sign = string_to_sign(method, params)
        digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), params["Signature"]):
            # Like Aliyun, echo the server's string to sign (it holds no secret) to help debugging.
            return _fail(
                400,
                "SignatureDoesNotMatch",
                f"Specified signature is not matched with our calculation. server string to sign is:{to_sign}",
            )
        if params["SignatureNonce"] in self.nonces:
            return _fail(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self.nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms":
            return _fail(
                404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
            )
        if params.get("Version") != "2017-05-25":
            return _fail(400, "InvalidVersion", "Specified parameter Version is not valid.")
        return None

    def _send_sms(self, params: dict[str, str]) -> web.Response:
        numbers = params.get("PhoneNumbers", "").split(",")
        if not all(NUMBER.match(n) for n in numbers):
            return _business("isv.MOBILE_NUMBER_ILLEGAL", "invalid mobile number")
        if params.get("SignName") not in self.sign_names:
            return _business("isv.SMS_SIGNATURE_ILLEGAL", "The signature is invalid.")
        if params.get("TemplateCode") not in self.templates:
            return _business("isv.SMS_TEMPLATE_ILLEGAL", "The template does not exist.")
        try:
            json.loads(params.get("TemplateParam", "{}"))
        except ValueError:
            return _business("isv.INVALID_JSON_PARAM", "JSON parameter is invalid.")
        biz_id = f"{uuid.uuid4().int % 10**15}^0"
        return web.json_response({"Message": "OK", "RequestId": _rid(), "Code": "OK", "BizId": biz_id})


def _rid() -> str:
    return str(uuid.uuid4()).upper()


def _fail(status: int, code: str, message: str) -> web.Response:
    body = {"RequestId": _rid(), "HostId": "dysmsapi.aliyuncs.com", "Code": code, "Message": message}
    return web.json_response(body, status=status)


def _business(code: str, message: str) -> web.Response:
    return web.json_response({"RequestId": _rid(), "Code": code, "Message": message})
