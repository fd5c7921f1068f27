"""Flashduty's response envelope, shared by the ingest endpoints and the Open API."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

REQUEST_ID_HEADER = "Flashcat-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)


def request_id(request: web.Request) -> str:
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = request[REQUEST_ID] = uuid.uuid4().hex
    return rid


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()


def ok(request: web.Request, data: Any, status: int = 200) -> web.Response:
    rid = request_id(request)
    return web.json_response({"request_id": rid, "data": data}, status=status, dumps=_dumps,
                             headers={REQUEST_ID_HEADER: rid})


def error(request: web.Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
          ) -> web.Response:
    rid = request_id(request)
    return web.json_response(
        {"request_id": rid, "error": {"code": code, "message": message}}, status=status, dumps=_dumps,
        headers={REQUEST_ID_HEADER: rid, **(headers or {})},
    )


@web.middleware
async def envelope_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn aiohttp's own errors (unknown route, wrong method, body too large) into the envelope."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        return error(request, 413, "RequestEntityTooLarge", f"request body is too large: {exc.text}")
    except web.HTTPNotFound:
        return error(request, 404, "RouteNotFound", f"no route for {request.method} {request.path}")
    except web.HTTPMethodNotAllowed as exc:
        # The Event API answers 400 as Flashduty does; the Open API uses plain HTTP 405.
        status = 405 if request.path.startswith("/api/") else 400
        return error(request, status, "MethodNotAllowed", f"{request.method} is not allowed on {request.path}",
                     {"Allow": ", ".join(sorted(exc.allowed_methods))})
