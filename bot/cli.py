"""The `vigil` command: serve, worker, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from core.settings import Settings, get_settings


def _banner(settings: Settings) -> str:
    base = settings.resolved_base_url()
    token = settings.admin_token or "<set VIGIL_ADMIN_TOKEN>"
    return f"""
Vigil is listening on {base}   (jobs: {'arq on ' + settings.redis_url if settings.redis_url else 'in-process'})

Create a channel and an integration, then push a test alert:
  curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
       -d '{{"name": "demo"}}' {base}/api/v1/channels
  curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
       -d '{{"type": "standard", "name": "scripts"}}' {base}/api/v1/channels/1/integrations
  curl -s -H 'Content-Type: application/json' \\
       -d '{{"event_status": "Critical", "title_rule": "disk full on db-1", "alert_key": "disk-db-1"}}' \\
       '{base}/event/push/alert/standard?integration_key=<integration_key from the previous answer>'
  curl -s -H 'Authorization: Bearer {token}' {base}/api/v1/incidents
OpenAPI document: {base}/api/v1/openapi.json
"""


LISTEN_BACKLOG = 4096  # capped by the kernel's net.core.somaxconn


def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.server import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = get_settings().model_copy(update=overrides)
    if not settings.admin_token:
        import secrets

        settings = settings.model_copy(update={"admin_token": secrets.token_urlsafe(24)})
        print("No VIGIL_ADMIN_TOKEN set: using a one-off admin token for this run.")
    print(_banner(settings), flush=True)
    app = create_app(settings)
    app.on_startup.append(_freeze_heap)  # after the app's own start-up (its cleanup contexts run first)
    # A deep accept queue: when many alert sources (re)connect at once, an overflowing backlog drops
    # their SYNs and each waits a full second to retry (aiohttp's default is 128).
    web.run_app(app, host=settings.host, port=settings.port, print=None, loop=_loop(), backlog=LISTEN_BACKLOG)


async def _freeze_heap(_app: object) -> None:
    """Move everything start-up allocated (modules, models, compiled SQL) out of the garbage collector's sight.

    Those objects live as long as the process, yet every full collection would walk them again;
    under load that is several percent of the CPU an event costs.
    """
    import gc

    gc.collect()
    gc.freeze()


def _loop() -> asyncio.AbstractEventLoop:
    """uvloop where available: the same asyncio API, a markedly faster HTTP and I/O loop."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def worker(_args: argparse.Namespace) -> None:
    settings = get_settings()
    if not settings.redis_url:
        sys.exit("vigil worker needs VIGIL_REDIS_URL (without it, `vigil serve` runs jobs in-process)")
    print(f"vigil worker: arq on {settings.redis_url}", flush=True)
    try:
        _loop().run_until_complete(run_worker(settings))
    except asyncio.CancelledError:
        pass  # arq cancels its main task on SIGINT/SIGTERM: that is a normal shutdown


async def run_worker(settings: Settings, *, handle_signals: bool = True) -> None:
    """An arq worker with the same job services as the web process (bot/services.py)."""
    from arq.worker import Worker

    from bot.services import worker_context
    from core import jobs

    async with worker_context(settings) as ctx:
        kwargs = jobs.arq_worker_settings(ctx, settings.redis_url, settings.sweep_interval_seconds)
        kwargs["handle_signals"] = handle_signals
        w = Worker(**kwargs)
        try:
            await w.async_run()
        finally:
            await w.close()


def db(args: argparse.Namespace) -> None:
    from core.migrate import upgrade_url

    if args.action == "upgrade":
        upgrade_url(get_settings().resolved_database_url())
        print("database is at the latest revision")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vigil", description="Vigil on-call and alert-response platform")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the web process (and in-process jobs without VIGIL_REDIS_URL)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(fn=serve)
    sub.add_parser("worker", help="run an arq worker on VIGIL_REDIS_URL").set_defaults(fn=worker)
    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(fn=db)
    args = parser.parse_args(argv)
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-plugin INFO lines bury the banner
    args.fn(args)


if __name__ == "__main__":
    main()
