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

ADMIN = "bench-admin-token-0123456789abcdef"
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
def vigil(db_url: str, log: str | None = None, **env: str) -> Iterator[str]:
    """`vigil serve` on a free port; its stderr goes to `log` (a file, appended) when given."""
    port = free_port()
    err = open(log, "ab") if log else None  # closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env={**os.environ, "VIGIL_DATABASE_URL": db_url, "VIGIL_ADMIN_TOKEN": ADMIN, "VIGIL_LOG_LEVEL": "WARNING",
             "VIGIL_EGRESS_ALLOW": "127.0.0.1",  # the benches' sinks listen on loopback
             "VIGIL_INGEST_RATE_PER_SECOND": "1000000", "VIGIL_INGEST_RATE_PER_MINUTE": "100000000", **env},
        stdout=subprocess.DEVNULL, stderr=err,
    )
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"vigil serve exited with {proc.returncode}" + (f" (see {log})" if log else ""))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if err:
            err.close()


def redis_url(db: int) -> str:
    """A Redis database of its own for a benchmark (tests use 15, bench/escalation.py 14)."""
    return f"redis://127.0.0.1:6379/{db}"


def flush_redis(url: str) -> None:
    """FLUSHDB on the database of `url` (only that database number)."""
    from redis import Redis

    r = Redis.from_url(url)
    try:
        r.flushdb()
    finally:
        r.close()


class Worker:
    """One `vigil worker` process (arq on VIGIL_REDIS_URL) that can be killed and started again.

    `cpu()` adds up the CPU of every incarnation, read from /proc (a killed one is read just before the kill).
    """

    def __init__(self, env: dict[str, str], log: str | None = None) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen | None = None
        self._past_cpu = 0.0
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        err = open(self.log, "ab") if self.log else None  # the child has its own copy
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=err)
        if err:
            err.close()
        self.starts += 1

    def _reap(self, sig: str) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self._past_cpu += cpu_seconds(self.proc.pid)
            if sig == "kill":
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL (kill -9): no shutdown, no cleanup."""
        self._reap("kill")

    def stop(self) -> None:
        self._reap("term")

    def cpu(self) -> float:
        now = 0.0
        if self.pid is not None:
            with contextlib.suppress(OSError):
                now = cpu_seconds(self.pid)
        return self._past_cpu + now


@contextlib.contextmanager
def workers(db_url: str, n: int, redis: str, log: str | None = None, **env: str) -> Iterator[list[Worker]]:
    """`n` `vigil worker` processes on the database and Redis URL given."""
    full = {**os.environ, "VIGIL_DATABASE_URL": db_url, "VIGIL_REDIS_URL": redis, "VIGIL_ADMIN_TOKEN": ADMIN, "VIGIL_EGRESS_ALLOW": "127.0.0.1",
            "VIGIL_LOG_LEVEL": "WARNING", **env}
    started = [Worker(full, log) for _ in range(n)]
    try:
        for w in started:
            w.start()
        yield started
    finally:
        for w in started:
            w.stop()


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
