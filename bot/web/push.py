"""The Vigil app's Web Push routes, and the files that make the pages an installable app.

  GET  /sw.js, /manifest.webmanifest, /icons/...   the service worker (scope "/"), manifest and icons
  GET  /push/vapid-public-key                      the applicationServerKey browsers subscribe with
  POST /push/subscriptions                         the signed-in member's browser subscribes (its PushSubscription JSON)
  DELETE /push/subscriptions                       ... or unsubscribes ({"endpoint": ...})
  POST /push/ack                                   a notification's Acknowledge button ({"token": ...})

Who subscribes is the member signed in on the browser (bot/web/auth.py), or the member whose Open API token
the request carries; `setup(app, member_of=...)` can say otherwise.
Acknowledge needs no session: the service worker posts the action token the push carried (signed, naming the
incident and the member paged, as a voice call's keypad token), and the press goes through the one action
path (bot/chat/clicks.apply -> core.incidents.ack) like every click.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from aiohttp import web
from pydantic import ValidationError

from bot.adapters.base import ActionEvent
from bot.api.framework import authenticate
from bot.chat import clicks
from bot.egress import require_sendable
from bot.envelope import error, ok
from bot.keys import SESSIONS, SETTINGS
from bot.media.senders import read_action_token
from bot.web import auth
from core import push
from core.clock import utcnow
from core.errors import InvalidInput
from core.types import Platform

log = logging.getLogger("vigil.web.push")

STATIC = Path(__file__).parent / "static"
MemberOf = Callable[[web.Request], Awaitable[int | None]]
MEMBER_OF = web.AppKey("push_member_of", MemberOf)  # type: ignore[arg-type]
MAX_BODY = 4096  # a PushSubscription is a few hundred bytes
FILES = {  # path -> (file under static/, content type); the worker must sit at the root to control every page
    "/sw.js": ("sw.js", "text/javascript"),
    "/manifest.webmanifest": ("manifest.webmanifest", "application/manifest+json"),
    "/icons/vigil-192.png": ("icons/vigil-192.png", "image/png"),
    "/icons/vigil-512.png": ("icons/vigil-512.png", "image/png"),
    "/icons/vigil-maskable-512.png": ("icons/vigil-maskable-512.png", "image/png"),
    "/apple-touch-icon.png": ("icons/apple-touch-icon.png", "image/png"),  # iOS asks for it at the root
}


async def signed_in_member(request: web.Request) -> int | None:
    """The member signed in on this browser (bot/web/auth.py), else the member whose Open API token the request
    carries; None for nobody (or an admin token, which is no member)."""
    async with request.app[SESSIONS]() as db:
        if request.app.get(auth.ENABLED):
            who = await auth.viewer(request, db)
            if who is not None:
                return who.member_id
        principal = await authenticate(request, db)
    return principal.member_id if principal else None


async def _posting_member(request: web.Request, to: str) -> int | web.Response:
    """The member a subscribe/unsubscribe request acts for, or the answer refusing it."""
    # A cross-site page can post a form with the session cookie, but not application/json without a CORS
    # preflight this server never answers: requiring JSON is what keeps these two routes same-origin.
    if request.content_type != "application/json":
        return error(request, 400, "InvalidContentType", "Content-Type must be application/json")
    member_id = await request.app[MEMBER_OF](request)
    if member_id is None:
        return error(request, 401, "Unauthorized", f"sign in as a member to {to}")
    return member_id


def _file(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    body = (STATIC / name).read_bytes()  # read once: they change only with a deployment

    async def serve(_request: web.Request) -> web.Response:
        # no-cache: a browser checks for a new service worker or manifest on every visit, not a day later
        return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "no-cache"})

    return serve


async def _json(request: web.Request) -> dict | None:
    raw = await request.read()  # already in memory: bot/body_deadline.py read it under its deadline
    if len(raw) > MAX_BODY:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def public_key(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    async with request.app[SESSIONS]() as session:
        try:
            keys = await push.vapid_keys(session, settings.secret_key, utcnow())
        except ValueError as exc:
            return error(request, 503, "PushUnavailable", str(exc))
    return ok(request, {"public_key": keys.public_key})


async def subscribe(request: web.Request) -> web.Response:
    member_id = await _posting_member(request, "receive notifications")
    if isinstance(member_id, web.Response):
        return member_id
    body = await _json(request)
    if body is None:
        return error(request, 400, "InvalidParameter", "body must be a PushSubscription as JSON")
    settings = request.app[SETTINGS]
    try:
        sub = push.SubscriptionIn.model_validate(body)
        require_sendable("endpoint", sub.endpoint, settings.egress_policy())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(request, 400, "InvalidParameter", f"{where}: {first.get('msg', 'invalid')}")
    except InvalidInput as exc:
        return error(request, 400, "InvalidParameter", str(exc))
    async with request.app[SESSIONS]() as session:
        row = await push.subscribe(session, member_id, sub, request.headers.get("User-Agent", ""), utcnow())
        await session.commit()
        return ok(request, {"subscription_id": row.id, "member_id": member_id}, status=201)


async def unsubscribe(request: web.Request) -> web.Response:
    member_id = await _posting_member(request, "manage notifications")
    if isinstance(member_id, web.Response):
        return member_id
    body = await _json(request)
    if body is None or not isinstance(body.get("endpoint"), str):
        return error(request, 400, "InvalidParameter", "endpoint: the subscription's endpoint is required")
    async with request.app[SESSIONS]() as session:
        removed = await push.unsubscribe(session, member_id, body["endpoint"])
        await session.commit()
    return ok(request, {"removed": removed})


async def acknowledge(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    body = await _json(request)
    token = body.get("token") if body else None
    who = read_action_token(settings.secret_key or settings.admin_token, token) if isinstance(token, str) else None
    if who is None:
        return error(request, 401, "Unauthorized", "invalid action token")
    incident_id, member_id = who
    # No replay cache: the token names one incident and member, and acknowledging twice changes nothing.
    event = ActionEvent(Platform.WEB, f"member:{member_id}", f"ack:{incident_id}")
    outcome = await clicks.apply(event, request.app[SESSIONS], settings.resolved_base_url(), utcnow(),
                                 member_id=member_id)
    return ok(request, {"ok": outcome.ok, "text": outcome.text, "incident_id": incident_id})


async def _make_keys(app: web.Application) -> None:
    """VAPID keys are made on the first start, so the first browser to subscribe finds them."""
    settings = app[SETTINGS]
    if not settings.secret_key:
        log.error("the app medium (Web Push) needs VIGIL_SECRET_KEY to store its VAPID key: not available")
        return
    async with app[SESSIONS]() as session:
        try:
            await push.vapid_keys(session, settings.secret_key, utcnow())
        except ValueError as exc:
            log.error("the app medium (Web Push) is not available: %s", exc)


def setup(app: web.Application, *, member_of: MemberOf = signed_in_member) -> None:
    """Add the push routes and the app's files; `member_of` says which member a web request is from."""
    app[MEMBER_OF] = member_of
    for path, (name, content_type) in FILES.items():
        app.router.add_get(path, _file(name, content_type))
    app.router.add_get("/push/vapid-public-key", public_key)
    app.router.add_post("/push/subscriptions", subscribe)
    app.router.add_delete("/push/subscriptions", unsubscribe)
    app.router.add_post("/push/ack", acknowledge)
    app.on_startup.append(_make_keys)
