"""Test helpers shared across the suite (no fixtures here: those live in conftest.py)."""

from __future__ import annotations

import contextlib
import email
import os
import socket
from collections.abc import Iterator
from email import policy
from typing import Any

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Two suites running at once (helpers sharing a machine) pick different dbs with VIGIL_TEST_REDIS_DB.
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('VIGIL_TEST_REDIS_DB', '15')}"
# The fakes of tests/fakes/ listen on loopback, which Vigil refuses to send to unless told: the fixtures that
# need them opt in explicitly (Settings.egress_allow, as VIGIL_EGRESS_ALLOW would), so the default stays closed.
LOCAL_FAKES = ("127.0.0.1", "::1")


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class ApiError(AssertionError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


class Api:
    """The Open API and ingest endpoints as a test script would use them."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token = client, token

    @property
    def app(self) -> Any:
        return self.client.server.app

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def settle(self) -> None:
        """Wait until the in-process job runner has nothing queued or running (fan-out, escalation...)."""
        from bot.keys import RUNNER

        await self.app[RUNNER].drain()

    async def call(self, method: str, path: str, json: Any = None, *, expect: int | None = None,
                   token: str | None = None, **kw: Any) -> Any:
        resp = await self.client.request(method, "/api/v1" + path, json=json, headers=self.headers(token), **kw)
        body = await resp.json()
        if expect is not None:
            if resp.status != expect:
                raise ApiError(resp.status, body)
            return body
        if resp.status >= 300:
            raise ApiError(resp.status, body)
        return body["data"]

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.call("POST", path, json if json is not None else {}, **kw)

    async def patch(self, path: str, json: Any, **kw: Any) -> Any:
        return await self.call("PATCH", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.call("DELETE", path, **kw)

    async def push(self, key: str, body: Any, fmt: str = "standard", *, expect: int = 200,
                   **kw: Any) -> dict[str, Any]:
        resp = await self.client.post(f"/event/push/alert/{fmt}", params={"integration_key": key}, json=body, **kw)
        data = await resp.json()
        assert resp.status == expect, (resp.status, data)
        return data

    async def member_with_token(self, name: str, **fields: Any) -> tuple[int, str]:
        """A member (e-mail <name>@example.com unless given) and a personal API token acting as them."""
        m = await self.post("/members", {"name": name, "email": f"{name}@example.com", **fields})
        token = (await self.post("/tokens", {"name": name, "member_id": m["member_id"]}))["token"]
        return m["member_id"], token

    async def channel_with_integration(self, name: str = "prod", fmt: str = "standard",
                                       **channel: Any) -> tuple[int, str]:
        ch = await self.post("/channels", {"name": name, **channel})
        integ = await self.post(f"/channels/{ch['channel_id']}/integrations", {"type": fmt, "name": f"{name}-{fmt}"})
        return ch["channel_id"], integ["integration_key"]


async def until(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> None:
    """Wait until `predicate()` (sync, or async returning a truthy value) holds; fail after `timeout` s."""
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


class Inbox:
    """What a real SMTP server (aiosmtpd, see `smtp_server`) received, as parsed e-mail."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@contextlib.contextmanager
def smtp_server(box: Inbox) -> Iterator[int]:
    """An SMTP server on a free local port delivering into `box`, for as long as the block runs; yields the port."""
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
