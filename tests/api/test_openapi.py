"""The published OpenAPI document matches the served routes, and the API honours it under fuzzing."""

import asyncio
import re
import threading

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

import bot.server  # noqa: F401  (registers every endpoint)
from bot.api.framework import BASE, ENDPOINTS
from bot.api.openapi import build
from tests.conftest import free_port

TOKEN = "schema-admin-token-0123456789abcdef"


def test_every_route_is_documented_and_every_documented_route_exists():
    from bot.server import create_app
    from core.settings import Settings

    app = create_app(Settings(database_url="sqlite:///:memory:", admin_token=TOKEN))
    served = {
        (r.method, re.sub(r"{(\w+):[^}]+}", r"{\1}", r.resource.canonical))
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith(BASE) and r.method != "HEAD"
    }
    served.discard(("GET", BASE + "/openapi.json"))
    documented = {(m.upper(), path) for path, ops in build()["paths"].items() for m in ops}
    assert served == documented
    assert len(documented) == len(ENDPOINTS)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """Vigil on a real socket in a background thread (SQLite), seeded with a channel and an incident."""
    from bot.adapters import ADAPTERS
    from bot.server import create_app
    from core.settings import Settings
    from core.types import Platform

    # The chat SDKs load on first use (lark-oapi takes seconds, more on a busy machine): load them now, so
    # the first fuzzed POST /im-apps measures the endpoint and not an import against the client's timeout.
    for platform in Platform:
        ADAPTERS.get(platform)
    db = tmp_path_factory.mktemp("schema") / "vigil.db"
    settings = Settings(database_url=f"sqlite:///{db}", admin_token=TOKEN, base_url="http://vigil.test")
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(settings))
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(30)
    url = f"http://127.0.0.1:{port}"
    _seed(url)
    yield url
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _seed(url: str) -> None:
    import json
    import urllib.request

    def call(path, body, token=TOKEN):
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())["data"]

    ch = call(BASE + "/channels", {"name": "seed"})
    integ = call(BASE + f"/channels/{ch['channel_id']}/integrations", {"type": "standard", "name": "seed"})
    call(f"/event/push/alert/standard?integration_key={integ['integration_key']}",
         {"event_status": "Critical", "title_rule": "seed", "alert_key": "seed"})
    call(BASE + "/members", {"name": "seed"})


schema = schemathesis.openapi.from_dict(build())


@schema.auth()
class AdminToken:
    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
# 8 examples for each of ~140 operations: the whole run stays near a minute inside a suite kept under 10.
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, live_server):
    # positive_data_acceptance is left out: rules such as "exists takes no values" or "that team must exist"
    # are semantic and not expressible in JSON Schema; everything else (no 5xx, documented status codes,
    # response schemas, negative data rejected, auth enforced) is checked.
    case.call_and_validate(base_url=live_server, excluded_checks=[positive_data_acceptance])
