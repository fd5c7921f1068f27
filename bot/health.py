"""/healthz (liveness), /readyz (database and queue reachable), /metrics (Prometheus text)."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot.keys import RUNNER, SESSIONS, SETTINGS


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with request.app[SESSIONS]() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash: this is what readiness is for
        checks["database"] = f"error: {type(exc).__name__}"
    runner = request.app[RUNNER]
    pool = getattr(runner, "pool", None)
    if pool is not None:
        try:
            await pool.ping()
            checks["queue"] = "ok"
        except Exception as exc:
            checks["queue"] = f"error: {type(exc).__name__}"
    else:
        checks["queue"] = "ok (in-process)"
    healthy = all(v.startswith("ok") for v in checks.values())
    return web.json_response({"status": "ok" if healthy else "unavailable", "checks": checks},
                             status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    # Counters name channels and integrations and show traffic: with VIGIL_METRICS_TOKEN set, only a
    # scraper holding it reads them (Prometheus: `authorization: {credentials: ...}` in the scrape config).
    token = request.app[SETTINGS].metrics_token
    if token and not hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                                         f"Bearer {token}".encode()):
        return web.json_response({"error": "/metrics needs the bearer token set in VIGIL_METRICS_TOKEN"},
                                 status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
