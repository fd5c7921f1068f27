"""A local fake of a typical HTTP SMS gateway: API key in a header, JSON in, JSON out.

It records every request as received (method, path, query, headers, raw body). A wrong key gets a
401 that echoes the request back, as careless gateways do, so redaction can be tested.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict


@dataclass
class GatewayRequest:
    """One request exactly as the gateway received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class FakeSmsGateway:
    api_key: str
    requests: list[GatewayRequest] = field(default_factory=list)
    script: deque[tuple[int, str, dict[str, str]]] = field(default_factory=deque)
    delay: float = 0.0

    def answer_next(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        """Answer the next request with this status and raw body."""
        self.script.append((status, body, headers or {}))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        body = await request.read()
        seen = GatewayRequest(
            request.method, request.path, dict(request.query), CIMultiDict(request.headers), body
        )
        if request.headers.get("X-Api-Key") != self.api_key:
            echo = f"bad key for {request.method} {request.path_qs} headers={dict(request.headers)}"
            return web.json_response({"status": "error", "error": echo}, status=401)
        self.requests.append(seen)
        if self.script:
            status, text, headers = self.script.popleft()
            return web.Response(status=status, text=text, headers=headers, content_type="application/json")
        return web.json_response({"status": "ok", "data": {"id": f"gw-{uuid.uuid4().hex[:12]}"}})
