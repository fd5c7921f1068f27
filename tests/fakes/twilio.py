"""A local fake of Twilio's REST API (Messages and Calls), answering as Twilio does.

It checks basic auth, validates numbers and TwiML, records every accepted request, and can be
scripted to answer the next request with a given status (5xx, 429 + Retry-After) or to stall.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import deque
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from aiohttp import BasicAuth, hdrs, web

E164 = re.compile(r"^\+[1-9]\d{1,14}$")


@dataclass
class TwilioRequest:
    """One request the fake accepted."""

    resource: str
    account_sid: str
    form: dict[str, str]


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    numbers: set[str]
    requests: list[TwilioRequest] = field(default_factory=list)
    script: deque[web.Response] = field(default_factory=deque)
    delay: float = 0.0

    def fail_next(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        """Answer the next request with a Twilio-shaped error."""
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
        self.script.append(web.json_response({**body, "status": status}, status=status, headers=headers))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/{resource}.json", self._create)
        return app

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            return self.script.popleft()
        try:
            auth = BasicAuth.decode(request.headers.get(hdrs.AUTHORIZATION, ""))
        except ValueError:
            auth = None
        if auth is None or (auth.login, auth.password) != (self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        sid, resource = request.match_info["sid"], request.match_info["resource"]
        if sid != self.account_sid:
            return _error(404, 20404, f"The requested resource /2010-04-01/Accounts/{sid} was not found")
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        to, from_ = form.get("To", ""), form.get("From", "")
        if not E164.match(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if from_ not in self.numbers:
            return _error(
                400, 21606, f"The From phone number {from_} is not a valid, SMS-capable inbound phone number"
            )
        if resource == "Messages":
            if not form.get("Body"):
                return _error(400, 21602, "Message body is required.")
            prefix = "SM"
        elif resource == "Calls":
            if "Twiml" not in form and "Url" not in form:
                return _error(400, 21205, "Url parameter is required.")
            if "Twiml" in form:
                try:
                    ET.fromstring(form["Twiml"])
                except ET.ParseError:
                    return _error(400, 12100, "Document parse failure")
            prefix = "CA"
        else:
            return _error(404, 20404, f"The requested resource {resource} was not found")
        self.requests.append(TwilioRequest(resource, sid, form))
        return web.json_response(
            {
                "sid": prefix + uuid.uuid4().hex,
                "account_sid": sid,
                "to": to,
                "from": from_,
                "status": "queued",
            },
            status=201,
        )


def _error(status: int, code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)
