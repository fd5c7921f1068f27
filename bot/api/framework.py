"""A small declarative layer over aiohttp: every Open API endpoint is one `Endpoint`.

The same list builds the aiohttp routes and the OpenAPI 3 document, so the published
spec cannot drift from what is served. Handlers get a typed `Call` and return plain data;
this module does auth, JSON decoding, pydantic validation, error mapping and the envelope.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.envelope import error, ok
from bot.keys import SESSIONS, SETTINGS
from core.clock import utcnow
from core.errors import VigilError
from core.models import ApiToken, Member
from core.secrets import digest, same
from core.storable import storable_json, storable_query
from core.types import Role, lower_role

log = logging.getLogger("vigil.api")
BASE = "/api/v1"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin token, or a token whose effective role is the lower of its own role and
    its member's current one (`capped` when the member's role is the lower)."""

    role: Role
    member_id: int | None
    token_id: int | None = None
    capped: bool = False

    def can(self, need: str) -> bool:
        if need == "read":
            return True
        if need == "act":
            return self.role in (Role.ADMIN, Role.RESPONDER)
        return self.role is Role.ADMIN


@dataclass
class Call:
    request: web.Request
    session: AsyncSession
    principal: Principal
    body: Any
    query: Any
    now: datetime

    def path_int(self, name: str) -> int:
        return int(self.request.match_info[name])


Handler = Callable[[Call], Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # pydantic model (or list[...] for paged lists), or None for {}
    paged: bool = False
    need: str = "read"  # read | act | admin
    status: int = 200
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 409))
    path_enums: dict[str, tuple[str, ...]] = field(default_factory=dict)  # string path params and their values
    raw_body: str | None = None  # a non-JSON request body's media type (e.g. text/csv), read by the handler
    produces: str = "application/json"


ENDPOINTS: list[Endpoint] = []


def endpoint(method: str, path: str, **kw: Any) -> Callable[[Handler], Handler]:
    """Declare an Open API endpoint (path relative to /api/v1; `{id}` segments are integers)."""

    def deco(fn: Handler) -> Handler:
        ENDPOINTS.append(Endpoint(method=method, path=path, handler=fn, **kw))
        return fn

    return deco


class Page(BaseModel):
    """Offset paging, as Flashduty: `p` is 1-based, `limit` at most 100. Unknown query parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    p: int = Field(default=1, ge=1, le=10000)
    limit: int = Field(default=20, ge=1, le=100)

    @property
    def offset(self) -> int:
        return (self.p - 1) * self.limit


async def authenticate(request: web.Request, session: AsyncSession) -> Principal | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    token = token.strip()
    admin = request.app[SETTINGS].admin_token
    if admin and same(token, admin):
        return Principal(Role.ADMIN, None)
    # The member's role is read on every request, so demoting a member takes power from its tokens at once.
    stmt = (select(ApiToken.id, ApiToken.role, ApiToken.member_id, Member.role)
            .outerjoin(Member, Member.id == ApiToken.member_id).where(ApiToken.token_hash == digest(token)))
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        return None
    token_id, token_role, member_id, member_role = row
    if member_id is None:
        return Principal(Role(token_role), None, token_id)
    if member_role is None:  # the member is gone (a foreign key prevents it; fail closed all the same)
        return None
    role = lower_role(Role(token_role), Role(member_role))
    return Principal(role, member_id, token_id, capped=role is not Role(token_role))


def _validation_message(exc: ValidationError, where: str) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    return f"{where}{'.' + loc if loc else ''}: {first.get('msg', 'invalid')}"


def _wrap(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        for name, value in request.match_info.items():
            if name in ep.path_enums:
                if value not in ep.path_enums[name]:
                    return error(request, 404, "ResourceNotFound",
                                 f"{name} must be one of {', '.join(ep.path_enums[name])}")
            elif not value.isdigit() or len(value) > 18:
                return error(request, 404, "ResourceNotFound", f"{name} must be a positive integer id")
        async with request.app[SESSIONS]() as session:
            principal = await authenticate(request, session)
            if principal is None:
                return error(request, 401, "Unauthorized", "a valid Authorization: Bearer <token> header is required")
            if not principal.can(ep.need):
                capped = " (its member's current role)" if principal.capped else ""
                return error(request, 403, "AccessDenied",
                             f"this token's role ({principal.role.value}{capped}) cannot do this")
            try:
                query = ep.query.model_validate(dict(storable_query(request.query))) if ep.query else None
            except ValidationError as exc:
                return error(request, 400, "InvalidParameter", _validation_message(exc, "query"))
            body = None
            if ep.body is not None:
                raw = await request.read()
                if raw.strip() and request.content_type != "application/json":
                    return error(request, 400, "InvalidContentType", "Content-Type must be application/json")
                try:
                    data = _integral(storable_json(raw, orjson.loads(raw if raw.strip() else b"{}")))
                except orjson.JSONDecodeError as exc:
                    return error(request, 400, "InvalidParameter", f"body is not valid JSON: {exc}")
                except _OutOfRange as exc:
                    return error(request, 400, "InvalidParameter", str(exc))
                try:
                    # Strict JSON validation (`false` is not 0, "5" is not 5); 5.0 is 5 as in JSON Schema.
                    body = ep.body.model_validate_json(orjson.dumps(data), strict=True)
                except ValidationError as exc:
                    return error(request, 400, "InvalidParameter", _validation_message(exc, "body"))
            call = Call(request, session, principal, body, query, utcnow())
            try:
                result = await ep.handler(call)
            except VigilError as exc:
                await session.rollback()
                return error(request, exc.status, exc.code, str(exc))
            if isinstance(result, web.StreamResponse):
                return result
            return ok(request, result if result is not None else {}, status=ep.status)

    return handle


INT64 = 2**63 - 1  # the largest integer both databases store in an integer column (ids included)


def fits_int64(value: int) -> bool:
    return -INT64 - 1 <= value <= INT64


class _OutOfRange(ValueError):
    pass


def _integral(value: Any, path: str = "body") -> Any:
    """5.0 becomes 5 (JSON Schema's integers); an integer no database column can hold is refused here,
    naming its field, instead of failing in the database."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and not fits_int64(value):
        raise _OutOfRange(f"{path} is out of range (integers are at most 64-bit)")
    if isinstance(value, list):
        return [_integral(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _integral(v, f"{path}.{k}") for k, v in value.items()}
    return value


def page_of(items: list[Any], total: int, page: Page) -> dict[str, Any]:
    return {"items": items, "total": total, "has_next_page": page.p * page.limit < total}


def setup(app: web.Application) -> None:
    for ep in ENDPOINTS:
        # integer ids match digits only, so /templates/preview never reaches /templates/{id}
        path = re.sub(r"{(\w+)}", lambda m, e=ep: m.group(0) if m.group(1) in e.path_enums
                      else f"{{{m.group(1)}:\\d+}}", ep.path)
        app.router.add_route(ep.method, BASE + path, _wrap(ep))
