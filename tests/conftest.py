"""Root fixtures: databases (SQLite and PostgreSQL), Redis, a running Vigil app, and for the outbound-HTTP
tests (chat adapters, media providers) a client session and a secret-leak checker.

PostgreSQL and Redis tests skip when the service is absent, unless VIGIL_REQUIRE_SERVICES=1
(set by .ci/run), which turns a missing service into a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import aiohttp
import pytest
from sqlmodel import SQLModel

from tests.kit import LOCAL_FAKES, PG_ADMIN_URL, REDIS_URL, Api, Inbox, service_up, smtp_server

if TYPE_CHECKING:
    from core.errors import DeliveryError

REQUIRE = os.environ.get("VIGIL_REQUIRE_SERVICES") == "1"
DATABASES = ["sqlite", "postgresql"]


def need(service: str, host: str, port: int) -> None:
    if not service_up(host, port):
        if REQUIRE:
            pytest.fail(f"{service} is required (VIGIL_REQUIRE_SERVICES=1) but not reachable on {host}:{port}")
        pytest.skip(f"{service} not reachable on {host}:{port}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test copies it (much faster than migrating)."""
    from core.migrate import upgrade_url

    path = tmp_path_factory.mktemp("template") / "vigil.db"
    upgrade_url(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A private, migrated PostgreSQL database for this test session, dropped at the end."""
    need("PostgreSQL", "127.0.0.1", 5432)
    import asyncpg

    from core.migrate import upgrade_url

    name = f"vigil_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade_url(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_EMPTYING: dict[str, str] = {}
_EMPTIED = [0]


def _empty_pg(url: str) -> None:
    """Empty every table and restart every id sequence. DELETE child tables first plus setval is ~2 ms;
    TRUNCATE of the ~40 tables costs ~200 ms a test (it replaces each table's files), which was a third of
    the suite's time. DELETE leaves dead rows and autovacuum may be off: every 50th test TRUNCATEs, so the
    tables never bloat enough to slow the timing-sensitive tests."""
    import asyncpg

    import core.models  # noqa: F401

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            if url not in _EMPTYING:
                sequences = [r[0] for r in await conn.fetch(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")]
                _EMPTYING[url] = "; ".join(
                    [f'DELETE FROM "{t.name}"' for t in reversed(SQLModel.metadata.sorted_tables)]
                    + [f"SELECT setval('\"{name}\"', 1, false)" for name in sequences])
            _EMPTIED[0] += 1
            if _EMPTIED[0] % 50 == 0:
                tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
                await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
            else:
                await conn.execute(_EMPTYING[url])
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each DB test runs twice: on SQLite and on PostgreSQL, with an empty migrated schema."""
    if request.param == "sqlite":
        path = tmp_path / "vigil.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    _empty_pg(url)
    return url


@pytest.fixture
def redis_url() -> str:
    need("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def settings(db_url: str):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    return Settings(database_url=db_url, admin_token="test-admin-token-0123456789abcdef", base_url="http://vigil.test",
                    sweep_interval_seconds=0.2, egress_allow=list(LOCAL_FAKES))


@pytest.fixture
async def app(settings, aiohttp_client) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    """A running Vigil (in-process jobs) and an admin Open API client."""
    from bot.server import create_app

    client = await aiohttp_client(create_app(settings))
    yield Api(client, "test-admin-token-0123456789abcdef")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) for the e-mail medium: (what it received, its port)."""
    box = Inbox()
    with smtp_server(box) as port:
        yield box, port


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Vigil's own kind of session (bot/egress.py), opened to the local fakes only."""
    from bot.egress import client_session
    from core.egress import EgressPolicy

    async with client_session(EgressPolicy.parse(LOCAL_FAKES)) as s:
        yield s


def _assert_no_secret(error: DeliveryError, *secrets: str) -> None:
    assert secrets, "name at least one secret to look for"
    for shown in (str(error), repr(error), repr(error.args)):
        for text, secret in itertools.product((shown, unquote(shown)), secrets):
            assert secret not in text, f"secret leaked into error: {text}"


@pytest.fixture
def assert_no_secret() -> Callable[..., None]:
    """A checker: neither the message nor the repr of a DeliveryError may carry any given secret."""
    return _assert_no_secret
