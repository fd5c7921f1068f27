"""Start a real `vigil serve` in a subprocess for benchmarks, on SQLite or a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator

import aiohttp

ADMIN = "bench-admin-token"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{d}/bench.db"
        return
    import asyncpg

    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], check=True,
                       env={**os.environ, "VIGIL_DATABASE_URL": url}, stdout=subprocess.DEVNULL)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


SERVER_PIDS: dict[str, int] = {}  # base URL -> pid of its `vigil serve`, for CPU accounting


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def vigil(db_url: str, **env: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env={**os.environ, "VIGIL_DATABASE_URL": db_url, "VIGIL_ADMIN_TOKEN": ADMIN, "VIGIL_LOG_LEVEL": "WARNING",
             "VIGIL_INGEST_RATE_PER_SECOND": "1000000", "VIGIL_INGEST_RATE_PER_MINUTE": "100000000", **env},
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


async def api(session: aiohttp.ClientSession, base: str, method: str, path: str, body: object = None) -> dict:
    async with session.request(method, f"{base}/api/v1{path}", json=body,
                               headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        data = await resp.json()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {data}")
        return data["data"]


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            try:
                async with s.get(f"{base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("vigil did not become ready")
