"""Small things that add up (issue 11, point 7), written as the requests a hostile caller would send:
a body that never finishes, a scrape of /metrics without its token, a short admin token, a banner in a log.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.server import create_app
from core.settings import Settings
from tests.kit import Api

TOKEN = "test-admin-token-0123456789abcdef"


async def _slow_body(host: str, port: int, path: str, *, declared: int, sent: bytes
                     ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection, send headers promising `declared` bytes and only `sent` of them, then stall.
    The caller keeps the writer: a collected StreamWriter closes its connection."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {declared}\r\n\r\n".encode() + sent)
    await writer.drain()
    return reader, writer


async def test_a_stalled_body_is_cut_at_the_deadline_and_the_server_stays_responsive(settings, aiohttp_client):
    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"body_read_timeout_seconds": 1.0}))),
              TOKEN)
    _, key = await api.channel_with_integration()
    server = api.client.server
    started = time.monotonic()
    stalled = [await _slow_body(server.host, server.port, f"/event/push/alert/standard?integration_key={key}",
                                declared=5000, sent=b'{"event_status": "Crit') for _ in range(20)]
    # While twenty uploads stall, the server answers others at once.
    t = time.monotonic()
    assert (await api.client.get("/healthz")).status == 200
    assert time.monotonic() - t < 1.0
    for reader, _writer in stalled:
        head = await asyncio.wait_for(reader.read(4096), timeout=5)
        assert head.startswith(b"HTTP/1.1 408"), head[:80]
        assert b"VIGIL_BODY_READ_TIMEOUT_SECONDS" in head
    assert time.monotonic() - started < 4.0
    # Nothing half-sent became an alert; an honest push still works.
    assert (await api.get("/incidents"))["total"] == 0
    await api.push(key, {"event_status": "Critical", "title_rule": "disk full", "alert_key": "k"})
    assert (await api.get("/incidents"))["total"] == 1


async def test_metrics_need_their_token_when_one_is_set(settings, aiohttp_client):
    client = await aiohttp_client(create_app(settings.model_copy(update={"metrics_token": "scrape-" + "x" * 20})))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}"}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401
        assert "VIGIL_METRICS_TOKEN" in (await resp.json())["error"]
    resp = await client.get("/metrics", headers={"Authorization": "Bearer scrape-" + "x" * 20})
    assert resp.status == 200 and "vigil_" in await resp.text()


async def test_metrics_stay_open_without_a_token(app):
    assert (await app.client.get("/metrics")).status == 200


@pytest.mark.parametrize("token", ["x", "admin", "a" * 31])
def test_a_short_admin_token_is_refused(token):
    with pytest.raises(ValidationError, match="too short for the admin token; use at least 32"):
        Settings(admin_token=token)


def test_vigil_serve_refuses_a_short_admin_token_with_a_clear_message(tmp_path):
    env = {**os.environ, "VIGIL_ADMIN_TOKEN": "hunter2", "VIGIL_DATABASE_URL": f"sqlite:///{tmp_path}/v.db"}
    run = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--port", "1"], env=env, cwd=Path.cwd(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "VIGIL_ADMIN_TOKEN: 7 characters is too short for the admin token" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_banner_never_shows_the_admin_token(tmp_path, monkeypatch):
    from bot import cli

    monkeypatch.chdir(tmp_path)
    settings, source = cli._admin_token(Settings(admin_token=TOKEN, redis_url="redis://:s3cret@redis:6379/0"))
    banner = cli._banner(settings, source)
    assert TOKEN not in banner and "s3cret" not in banner
    assert "test… (33 characters) (VIGIL_ADMIN_TOKEN)" in banner
    assert 'TOKEN="$VIGIL_ADMIN_TOKEN"' in banner


def test_a_generated_admin_token_is_kept_in_an_owner_only_file_and_reused(tmp_path, monkeypatch):
    from bot import cli

    monkeypatch.chdir(tmp_path)
    first, source = cli._admin_token(Settings())
    token = first.admin_token
    assert len(token) >= 32 and source == "generated, in data/admin-token"
    path = tmp_path / "data" / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in cli._banner(first, source) and "TOKEN=$(cat data/admin-token)" in cli._banner(first, source)
    again, _ = cli._admin_token(Settings())
    assert again.admin_token == token  # a restart keeps the token the operator already uses


async def test_configuring_a_feishu_app_never_freezes_the_server(tmp_path):
    """The first Feishu app imports lark-oapi (seconds): in a fresh `vigil serve`, /healthz keeps answering."""
    import aiohttp

    from tests.conftest import free_port

    port = free_port()
    env = {**os.environ, "VIGIL_ADMIN_TOKEN": TOKEN, "VIGIL_DATABASE_URL": f"sqlite:///{tmp_path}/v.db",
           "VIGIL_SECRET_KEY": "k" * 32, "VIGIL_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                                                env=env, stdout=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(base + "/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            latencies: list[float] = []
            done = asyncio.Event()

            async def probe() -> None:
                while not done.is_set():
                    t = time.monotonic()
                    async with http.get(base + "/healthz") as r:
                        assert r.status == 200
                    latencies.append(time.monotonic() - t)
                    await asyncio.sleep(0.05)

            prober = asyncio.create_task(probe())
            async with http.post(base + "/api/v1/im-apps", headers={"Authorization": f"Bearer {TOKEN}"},
                                 json={"platform": "feishu", "name": "lark", "settings": {"app_id": "cli_a"},
                                       "secrets": {"app_secret": "s", "encrypt_key": "e",
                                                   "verification_token": "v"}}) as r:
                assert r.status in (200, 201), await r.text()
            done.set()
            await prober
    finally:
        proc.terminate()
        await proc.wait()
    assert latencies and max(latencies) < 1.0, f"/healthz took up to {max(latencies):.2f} s"


@pytest.mark.parametrize("path", ["/im/voice/callback", "/api/v1/channels", "/im/slack/callback"])
async def test_every_body_has_the_deadline(settings, aiohttp_client, path):
    """Routes read by the middleware and the chat callback, which reads its own after its precheck, alike
    (with no Slack app configured, the callback answers 404 at once: nothing to wait for)."""
    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"body_read_timeout_seconds": 0.5}))),
              TOKEN)
    server = api.client.server
    reader, writer = await _slow_body(server.host, server.port, path, declared=2000, sent=b"Digits=1&Call")
    head = await asyncio.wait_for(reader.read(4096), timeout=5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408" if path != "/im/slack/callback" else b"HTTP/1.1 404"), head[:80]
