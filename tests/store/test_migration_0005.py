"""Migration 0005 on a database that already holds plaintext integration keys: each becomes a hash, the
plaintext column goes, and the senders' existing keys keep working. On both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db import make_engine
from core.migrate import upgrade
from core.secrets import digest
from tests.conftest import DATABASES, need
from tests.kit import PG_ADMIN_URL, Api

LEGACY_KEY = "0123456789abcdef0123456789abcdef"
ADMIN_TOKEN = "migration-test-admin-token-0123456789"


@pytest.fixture(params=DATABASES)
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all (the shared test databases are already at the head revision)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    need("PostgreSQL", "127.0.0.1", 5432)
    import asyncpg

    name = f"vigil_0005_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_plaintext_keys_become_hashes_and_still_work(empty_url, aiohttp_client):
    engine = make_engine(empty_url)
    try:
        await upgrade(engine, "0004")
        channel = sa.table("channel", *(sa.column(c) for c in (
            "id", "name", "description", "auto_close", "auto_resolve_timeout", "status", "rules_token")),
            *(sa.column(c, sa.JSON) for c in ("team_ids", "grouping", "flapping", "storm_thresholds")))
        integration = sa.table("integration", *(sa.column(c) for c in (
            "id", "name", "type", "channel_id", "key_hash", "key", "status")), sa.column("routing", sa.JSON))
        async with engine.begin() as conn:
            await conn.execute(channel.insert().values(
                id=1, name="prod", description="", team_ids=[], grouping={}, auto_close=True,
                auto_resolve_timeout=0, flapping={}, storm_thresholds=[], status="enabled", rules_token="t"))
            # a hash that drifted from its key must not lock the key's senders out
            await conn.execute(integration.insert().values(
                id=1, name="legacy", type="standard", channel_id=1, key_hash="stale", key=LEGACY_KEY,
                routing={}, status="enabled"))
        await upgrade(engine, "0005")
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns("integration")})
            stored = (await conn.execute(sa.text("SELECT * FROM integration"))).all()
            scoped = (await conn.execute(sa.text("SELECT team_scoped FROM channel"))).scalar_one()
        assert "key" not in columns and "key_hash" in columns
        assert LEGACY_KEY not in repr(stored) and digest(LEGACY_KEY) in repr(stored)
        assert not scoped  # existing channels stay open to everyone who could act before
        await upgrade(engine)
    finally:
        await engine.dispose()

    from bot.server import create_app
    from core.settings import Settings

    settings = Settings(database_url=empty_url, admin_token=ADMIN_TOKEN, base_url="http://vigil.test")
    app = Api(await aiohttp_client(create_app(settings)), ADMIN_TOKEN)
    await app.push(LEGACY_KEY, {"event_status": "Critical", "title_rule": "still paging", "alert_key": "k"})
    [inc] = (await app.get("/incidents"))["items"]
    assert inc["title"] == "still paging"
