"""The `vigil` command: serve, worker, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.settings import Settings, get_settings

TOKEN_FILE = Path("data/admin-token")


def _banner(settings: Settings, token_source: str) -> str:
    """What to do next. The admin token itself never appears: banners end up in log files."""
    base = settings.resolved_base_url()
    return f"""
Vigil is listening on {base}   (jobs: {'arq on ' + _masked_url(settings.redis_url) if settings.redis_url else 'in-process'})
Admin token: {mask(settings.admin_token)} ({token_source})

Create a channel and an integration, then push a test alert:
  TOKEN={'"$VIGIL_ADMIN_TOKEN"' if token_source == 'VIGIL_ADMIN_TOKEN' else f'$(cat {TOKEN_FILE})'}
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"name": "demo"}}' {base}/api/v1/channels
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"type": "standard", "name": "scripts"}}' {base}/api/v1/channels/1/integrations
  curl -s -H 'Content-Type: application/json' \\
       -d '{{"event_status": "Critical", "title_rule": "disk full on db-1", "alert_key": "disk-db-1"}}' \\
       '{base}/event/push/alert/standard?integration_key=<integration_key from the previous answer>'
  curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/incidents
OpenAPI document: {base}/api/v1/openapi.json
"""


def mask(secret: str) -> str:
    """Enough of a secret to tell two apart, never enough to use: the first 4 characters and the length."""
    return f"{secret[:4]}… ({len(secret)} characters)" if secret else "<none>"


def _masked_url(url: str) -> str:
    """A URL with its password replaced (redis://:pw@host keeps the host, loses the password)."""
    from yarl import URL

    u = URL(url)
    return str(u.with_password("***")) if u.password else url


def _admin_token(settings: Settings) -> tuple[Settings, str]:
    """The admin token and where it came from: VIGIL_ADMIN_TOKEN, or one generated once and kept in a file
    only its owner can read (so it survives restarts and is never printed)."""
    if settings.admin_token:
        return settings, "VIGIL_ADMIN_TOKEN"
    if TOKEN_FILE.exists():
        token = TOKEN_FILE.read_text().strip()
    else:
        import secrets

        token = secrets.token_urlsafe(32)
        TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
    return settings.model_copy(update={"admin_token": token}), f"generated, in {TOKEN_FILE}"


LISTEN_BACKLOG = 4096  # capped by the kernel's net.core.somaxconn


def serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.access_log import RedactedAccessLogger
    from bot.server import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings, token_source = _admin_token(get_settings().model_copy(update=overrides))
    print(_banner(settings, token_source), flush=True)
    app = create_app(settings)
    app.on_startup.append(_freeze_heap)  # after the app's own start-up (its cleanup contexts run first)
    # A deep accept queue: when many alert sources (re)connect at once, an overflowing backlog drops
    # their SYNs and each waits a full second to retry (aiohttp's default is 128).
    web.run_app(app, host=settings.host, port=settings.port, print=None, loop=_loop(), backlog=LISTEN_BACKLOG,
                access_log_class=RedactedAccessLogger)  # no integration keys or tokens in access logs


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
    print(f"vigil worker: arq on {_masked_url(settings.redis_url)}", flush=True)
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


def _setting_error(error: Any) -> str:
    name = "VIGIL_" + "_".join(map(str, error["loc"])).upper()
    reason = error.get("ctx", {}).get("error") or error["msg"]
    return f"  {name}: {reason}"


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
    try:
        get_settings()
    except ValidationError as exc:  # one clear line per bad setting, not a traceback
        sys.exit("vigil: bad settings:\n" + "\n".join(_setting_error(e) for e in exc.errors()))
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-plugin INFO lines bury the banner
    args.fn(args)


if __name__ == "__main__":
    main()
