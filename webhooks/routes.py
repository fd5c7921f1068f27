"""HTTP endpoints of the Event API: /event/push/alert/<format> and /event/push/change/standard.

Order of checks: integration key (401) -> an integration already over its rate limit (429) -> content
type and size (400/413) -> JSON -> alerts per request (413) -> the request's alerts against the rate
limit (429) -> parse (400 naming the field) -> commit -> 200. Nothing is stored unless the whole request
is valid. Events no channel takes (no routing case matched, or their channel is gone or disabled) are
refused with 400 ResourceNotFound after the commit: the others of the request are stored, and the refused
ones are recorded for the admin (core/unrouted.py), so a pusher that does not retry a 4xx loses nothing.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Counter, Histogram
from sqlalchemy import select

from bot.envelope import error, ok
from bot.keys import INTEGRATION_CACHE, SESSIONS, SETTINGS, WRITER
from core.clock import utcnow
from core.ingest import IngestResult, IntegrationRef
from core.models import ChangeRecord, Integration
from core.secrets import digest
from core.storable import storable_json, storable_query
from core.unrouted import describe
from webhooks import change
from webhooks.errors import InvalidParameter
from webhooks.ratelimit import RateLimiter, retry_after
from webhooks.registry import PARSERS, alert_count

EVENTS = Counter("vigil_events_received_total", "Alert events received", ["format", "outcome"])
LATENCY = Histogram(
    "vigil_ingest_latency_seconds", "Ingest request latency until committed",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LIMITER = web.AppKey("ingest_limiter", RateLimiter)


@functools.cache
def events_counter(fmt: str, outcome: str) -> Any:
    """EVENTS.labels(...) takes a lock and builds a key on every call; formats and outcomes are few."""
    return EVENTS.labels(fmt, outcome)

# A request with more alerts than this is parsed on a worker thread: parsing 1,000 alerts takes tens of
# milliseconds of pure Python, and the interpreter hands the loop its turn every few milliseconds meanwhile.
PARSE_INLINE = 100

CACHE_TTL = 5.0  # seconds an integration lookup is reused; edits through the API also clear it


async def integration_by_key(app: web.Application, key: str) -> Integration | None:
    """The integration a key belongs to (disabled ones too), through a short-lived cache."""
    cache = app[INTEGRATION_CACHE]
    h = digest(key)
    hit = cache.get(h)
    if hit is None or hit[1] < time.monotonic():
        async with app[SESSIONS]() as session:
            row = (await session.execute(select(Integration).where(Integration.key_hash == h))).scalar_one_or_none()
        hit = (row, time.monotonic() + CACHE_TTL)
        cache[h] = hit
    # Found by the hash alone: the plaintext is not stored, and timing of the lookup reveals nothing of the
    # key, as nobody can choose a key whose SHA-256 matches a stored one in any chosen prefix.
    return hit[0]  # type: ignore[no-any-return]


async def _integration(request: web.Request) -> Integration | web.Response:
    key = request.query.get("integration_key", "")
    if not key:
        return error(request, 401, "Unauthorized", "integration_key is required")
    row = await integration_by_key(request.app, key)
    if row is None or row.status != "enabled":
        return error(request, 401, "Unauthorized", "integration_key is not a valid one")
    delay = request.app[LIMITER].wait(row.id, time.monotonic())
    if delay:  # refused before its body is read
        return _too_frequent(request, delay)
    return row


def _too_frequent(request: web.Request, delay: float) -> web.Response:
    return error(request, 429, "RequestTooFrequently", "too many alerts for this integration; slow down",
                 {"Retry-After": retry_after(delay)})


def _spend(request: web.Request, integration: Integration, alerts: int) -> web.Response | None:
    """Count a request's alerts against its integration's rate limit: a 429 when they do not fit."""
    delay = request.app[LIMITER].take(integration.id, time.monotonic(), alerts)
    return _too_frequent(request, delay) if delay else None


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise _Bad(400, "InvalidContentType", "Content-Type must be application/json")
    raw = await request.read()  # raises 413 past client_max_size (the envelope middleware answers)
    if len(raw) > request.app[SETTINGS].max_body_bytes:
        raise _Bad(413, "RequestEntityTooLarge", "request body is too large")
    try:
        return storable_json(raw, orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise _Bad(400, "InvalidParameter", f"body is not valid JSON: {exc}") from None


class _Bad(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


async def push_alert(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fmt = request.match_info["format"]
    parser = PARSERS.get(fmt)
    if parser is None:
        return error(request, 404, "RouteNotFound", f"unknown alert format {fmt!r}; one of {', '.join(PARSERS)}")
    integration = await _integration(request)
    if isinstance(integration, web.Response):
        events_counter(fmt, "unauthorized").inc()
        return integration
    if integration.type == "email":
        return error(request, 400, "InvalidParameter",
                     "integration_key belongs to an e-mail integration: send its alerts by mail to its address")
    if integration.type != fmt:
        return error(request, 400, "InvalidParameter",
                     f"integration_key belongs to a {integration.type} integration; push to "
                     f"/event/push/alert/{integration.type}")
    try:
        body = await _json_body(request)
        n = alert_count(fmt, body)
        cap = request.app[SETTINGS].max_alerts_per_request
        if n > cap:
            raise _Bad(413, "RequestEntityTooLarge",
                       f"the request carries {n} alerts; at most {cap} are accepted in one request: send them in "
                       "smaller requests (Alertmanager: a finer group_by)")
        if (refused := _spend(request, integration, n)) is not None:
            events_counter(fmt, "limited").inc()
            return refused
        if n > PARSE_INLINE:  # see PARSE_INLINE
            evs = await asyncio.to_thread(parser, body, storable_query(request.query), utcnow())
        else:
            evs = parser(body, storable_query(request.query), utcnow())
    except _Bad as exc:
        events_counter(fmt, "rejected").inc()
        return error(request, exc.status, exc.code, str(exc))
    except InvalidParameter as exc:
        events_counter(fmt, "rejected").inc()
        return error(request, 400, "InvalidParameter", str(exc))
    ref = IntegrationRef(integration.id, integration.type, integration.channel_id, integration.routing or {})
    try:
        results = await request.app[WRITER].submit(ref, evs)
    except Exception:
        events_counter(fmt, "failed").inc()
        return error(request, 500, "InternalError", "the event could not be stored; retry")
    for r in results:
        events_counter(fmt, r.outcome).inc()
    LATENCY.observe(time.perf_counter() - started)
    if any(r.unrouted is not None for r in results):
        return error(request, 400, "ResourceNotFound", unrouted_message(integration.id, results))
    if fmt == "standard" and len(results) == 1:
        return ok(request, {"alert_key": results[0].alert_key})
    return ok(request, {"alert_keys": [r.alert_key for r in results],
                        "alert_key": results[0].alert_key if results else ""})


async def push_change(request: web.Request) -> web.Response:
    integration = await _integration(request)
    if isinstance(integration, web.Response):
        return integration
    try:
        body = await _json_body(request)
        changes = change.parse(body, storable_query(request.query), utcnow())
    except _Bad as exc:
        return error(request, exc.status, exc.code, str(exc))
    except InvalidParameter as exc:
        return error(request, 400, "InvalidParameter", str(exc))
    if (refused := _spend(request, integration, len(changes))) is not None:
        return refused
    now = utcnow()
    async with request.app[SESSIONS]() as session:
        for c in changes:
            session.add(ChangeRecord(
                integration_id=integration.id, change_key=c.change_key, change_status=c.change_status,
                title=c.title, description=c.description, link=c.link, labels=dict(c.labels),
                event_time=c.event_time or now, received_at=now,
            ))
        await session.commit()
    return ok(request, {"change_key": changes[0].change_key if changes else ""})


def unrouted_message(integration_id: int, results: list[IngestResult]) -> str:
    """What a pusher is told when no channel took some of its events (Flashduty refuses such pushes)."""
    refused = [r for r in results if r.unrouted is not None]
    first = refused[0]
    stored = len(results) - len(refused)
    return (f"{len(refused)} of {len(results)} events went to no channel: {describe(first.unrouted, first.channel_id)}"
            f" (alert_key {first.alert_key!r})"
            + (f"; the other {stored} were accepted" if stored else "")
            + f". Add a routing rule or a default channel; the refused events are listed at "
              f"/api/v1/integrations/{integration_id}/unrouted-events")


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[LIMITER] = RateLimiter(settings.ingest_rate_per_second, settings.ingest_rate_per_minute)
    app.router.add_post("/event/push/alert/{format}", push_alert)
    app.router.add_post("/event/push/change/standard", push_change)
