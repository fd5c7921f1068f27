"""Builds the aiohttp Application: ingest (webhooks/), the Open API (bot/api/), health, jobs."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import inspect

from bot import health, services
from bot import web as web_pages
from bot.api import (  # noqa: F401  (each resource module declares its endpoints when imported)
    alerts,
    bots,
    channels,
    custom_fields,
    enrichment,
    escalation,
    framework,
    im_apps,
    incidents,
    intake,
    mapping,
    members,
    noise,
    oncall_roles,
    openapi,
    outgoing,
    push_subscriptions,
    schedules,
    shift_notice_prefs,
    sso,
    subscriptions,
    templates,
    tokens,
)
from bot.body_deadline import body_deadline
from bot.chat import routes as im_routes
from bot.envelope import envelope_errors
from bot.keys import (
    ADAPTER_MAP,
    DIRECTORIES,
    ENGINE,
    HTTP,
    INTEGRATION_CACHE,
    JOBS,
    RUNNER,
    SESSIONS,
    SETTINGS,
    WRITER,
)
from bot.media import voice_callback
from core import jobs, migrate, shift_notices
from core.clock import utcnow
from core.db import make_engine, make_sessionmaker
from core.ingest import IngestWriter
from core.settings import Settings
from webhooks import mail_server
from webhooks import routes as ingest_routes

log = logging.getLogger("vigil.server")


async def _needs_schema(engine) -> bool:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return not await conn.run_sync(lambda c: inspect(c).has_table("alembic_version"))


def create_app(settings: Settings, *, run_jobs: bool = True) -> web.Application:
    """The whole web process. `run_jobs=False` leaves job rows for an external runner (tests)."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[envelope_errors, body_deadline])
    app[SETTINGS] = settings
    app[INTEGRATION_CACHE] = {}
    app[DIRECTORIES] = {}
    app[ADAPTER_MAP] = {}
    url = settings.resolved_database_url()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    app[ENGINE], app[SESSIONS] = engine, sessions
    app[JOBS] = services.job_context(settings, sessions, app[ADAPTER_MAP])  # the dict is refilled on IM app changes
    services.register_subscribers()
    app[WRITER] = IngestWriter(sessions)

    async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
        if url.startswith("sqlite") and await _needs_schema(engine):
            log.info("empty SQLite database: applying migrations")
            await migrate.upgrade(engine)
        await im_routes.rebuild_adapters(app)
        services.add_senders(app[JOBS], settings, app[HTTP])  # needs the shared client session
        runner: jobs.Runner
        if settings.redis_url:
            runner = jobs.ArqRunner(settings.redis_url)
        else:
            runner = jobs.InProcessRunner(app[JOBS], sweep_interval=settings.sweep_interval_seconds)
        app[RUNNER] = runner
        if run_jobs or settings.redis_url:
            jobs.attach_runner(sessions, runner)
            await runner.start()
            async with sessions() as session:  # the shift-notice scan chain runs (core/shift_notices.py)
                await shift_notices.ensure_scan(session, utcnow())
                await session.commit()
        app[WRITER].start()
        yield
        await app[WRITER].stop()
        await im_routes.stop_adapters(app)
        if run_jobs or settings.redis_url:
            await runner.stop()
        await app[JOBS].services["template_sandbox"].close()
        await engine.dispose()

    app.cleanup_ctx.append(im_routes.http_session)
    app.cleanup_ctx.append(lifecycle)
    ingest_routes.setup(app)
    mail_server.setup(app)  # after lifecycle: starts once the ingest writer runs, stops before it
    voice_callback.setup(app)
    im_routes.setup(app)
    framework.setup(app)
    openapi.setup(app)
    health.setup(app)
    web_pages.setup(app)
    return app
