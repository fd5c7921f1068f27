"""Alembic migrations, driven programmatically (`vigil db upgrade`, and `vigil serve` on an empty DB)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database of `engine` to `revision` on the engine's own connection."""
    cfg = alembic_config(str(engine.url))

    def _run(conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


def upgrade_url(url: str) -> None:
    """Blocking helper for the command line."""

    async def _main() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(_main())
