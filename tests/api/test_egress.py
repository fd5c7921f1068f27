"""SSRF attacks on a running Vigil: outgoing requests must not reach inside the network unless allowed.

A webhook, custom action or bot pointed at loopback, at cloud metadata (169.254.169.254) or at a name
that resolves to 127.0.0.1 is refused by default: at save time when the URL is an IP literal, at send
time on the address really connected to otherwise. The local server proves nothing arrived. With the
allow-list (VIGIL_EGRESS_ALLOW) the same targets work; redirects are never followed; a bot's test
endpoint reports a status, never the remote body.
"""

from __future__ import annotations

import pytest
from aiohttp import web

from core.models import Webhook
from tests.kit import Api, until

INTERNAL_PAGE = "INTERNAL-ADMIN-PAGE do-not-leak"


class Internal:
    """A service inside the network: it records whatever reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.redirect_to = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        if request.path == "/redirect":
            raise web.HTTPFound(self.redirect_to)
        if request.path == "/error":
            return web.Response(status=500, text=INTERNAL_PAGE)
        if request.path == "/json-error":
            return web.json_response({"errcode": 310000, "errmsg": INTERNAL_PAGE})
        return web.Response(text="ok")


@pytest.fixture
async def internal(aiohttp_server) -> tuple[Internal, int]:
    service = Internal()
    server = await aiohttp_server(service.app())
    return service, server.port


async def vigil(aiohttp_client, settings, allow: list[str]) -> Api:
    from bot.server import create_app

    app = create_app(settings.model_copy(update={"secret_key": "k", "egress_allow": allow}))
    return Api(await aiohttp_client(app), settings.admin_token)


async def results(app: Api, incident_id: int, kind: str) -> list[str]:
    timeline = (await app.get(f"/incidents/{incident_id}"))["timeline"]
    return [t["detail"]["result"] for t in timeline if t["kind"] == kind]


async def first_failure(app: Api, key: str) -> str:
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": "a"})
    [inc] = (await app.get("/incidents"))["items"]
    await until(lambda: results(app, inc["incident_id"], "webhook_failed"))
    return (await results(app, inc["incident_id"], "webhook_failed"))[0]


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:{port}/hook", "127.0.0.1 is a loopback address"),
    ("http://[::1]:{port}/hook", "::1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "is a link-local address"),
    ("http://10.0.0.8/hook", "10.0.0.8 is a private address"),
    ("http://0.0.0.0:{port}/hook", "0.0.0.0 is an unspecified address"),
])
async def test_a_webhook_to_an_internal_address_is_refused_when_saved(settings, aiohttp_client, internal, url,
                                                                       reason):
    service, port = internal
    app = await vigil(aiohttp_client, settings, [])
    err = await app.call("POST", "/webhooks", {"name": "w", "url": url.format(port=port)}, expect=400)
    assert err["error"]["message"].startswith("url: ") and reason in err["error"]["message"]
    assert "VIGIL_EGRESS_ALLOW" in err["error"]["message"]
    await app.call("POST", "/webhooks", {"name": "w", "url": "gopher://example.com/_x"}, expect=400)
    assert service.hits == []


async def test_a_name_resolving_to_loopback_is_refused_when_sending(settings, aiohttp_client, internal):
    service, port = internal
    app = await vigil(aiohttp_client, settings, [])
    await app.post("/webhooks", {"name": "w", "url": f"http://localhost:{port}/hook"})  # a name: judged when sent
    _, key = await app.channel_with_integration()
    result = await first_failure(app, key)
    assert result.startswith("refused: ") and "is a loopback address" in result
    await app.settle()
    assert service.hits == []  # nothing reached the internal service


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://169.254.169.254/latest/meta-data/"])
async def test_a_webhook_saved_before_the_policy_is_refused_when_sending(settings, aiohttp_client, internal, url):
    from bot.keys import SESSIONS
    from core.clock import utcnow

    service, port = internal
    app = await vigil(aiohttp_client, settings, [])
    async with app.app[SESSIONS]() as session:  # a row the save-time check never saw
        session.add(Webhook(name="old", url=url.format(port=port), created_at=utcnow(), updated_at=utcnow()))
        await session.commit()
    _, key = await app.channel_with_integration()
    result = await first_failure(app, key)
    assert result.startswith("refused: ") and ("loopback" in result or "link-local" in result)
    assert service.hits == []


async def test_the_allow_list_from_the_environment_opens_internal_targets(settings, aiohttp_client, internal,
                                                                         monkeypatch):
    from bot.server import create_app
    from core.settings import Settings

    service, port = internal
    monkeypatch.setenv("VIGIL_EGRESS_ALLOW", "127.0.0.1, ::1")
    opened = Settings(database_url=settings.database_url, admin_token=settings.admin_token,
                      sweep_interval_seconds=0.2)
    assert opened.egress_allow == ["127.0.0.1", "::1"]
    app = Api(await aiohttp_client(create_app(opened)), settings.admin_token)
    await app.post("/webhooks", {"name": "w", "url": f"http://127.0.0.1:{port}/hook"})
    await app.post("/webhooks", {"name": "by name", "url": f"http://localhost:{port}/by-name"})
    _, key = await app.channel_with_integration()
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": "a"})
    await until(lambda: {"/hook", "/by-name"} <= set(service.hits))


async def test_a_host_entry_opens_that_name_only(settings, aiohttp_client, internal):
    service, port = internal
    app = await vigil(aiohttp_client, settings, ["localhost"])
    await app.call("POST", "/webhooks", {"name": "w", "url": f"http://127.0.0.1:{port}/hook"}, expect=400)
    await app.post("/webhooks", {"name": "w", "url": f"http://localhost:{port}/hook"})
    _, key = await app.channel_with_integration()
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": "a"})
    await until(lambda: service.hits == ["/hook"])


@pytest.mark.parametrize("allow", [["localhost"], ["127.0.0.1", "::1"]])
async def test_a_redirect_is_never_followed(settings, aiohttp_client, internal, allow):
    service, port = internal
    service.redirect_to = f"http://127.0.0.1:{port}/internal-admin"
    app = await vigil(aiohttp_client, settings, allow)
    await app.post("/webhooks", {"name": "w", "url": f"http://localhost:{port}/redirect"})
    _, key = await app.channel_with_integration()
    assert await first_failure(app, key) == "HTTP 302"
    await app.settle()
    assert "/internal-admin" not in service.hits and "/redirect" in service.hits


async def test_a_custom_action_to_an_internal_name_is_refused(settings, aiohttp_client, internal):
    service, port = internal
    app = await vigil(aiohttp_client, settings, [])
    cid, key = await app.channel_with_integration()
    err = await app.call("POST", f"/channels/{cid}/custom-actions",
                         {"name": "metadata", "url": "http://169.254.169.254/latest/meta-data/"}, expect=400)
    assert "url: 169.254.169.254 is a link-local address" in err["error"]["message"]
    action = await app.post(f"/channels/{cid}/custom-actions", {"name": "a", "url": f"http://localhost:{port}/a"})
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": "a"})
    [inc] = (await app.get("/incidents"))["items"]
    outcome = await app.post(f"/incidents/{inc['incident_id']}/custom-actions/{action['action_id']}")
    assert outcome["ok"] is False and "refused: " in outcome["result"] and "loopback" in outcome["result"]
    assert service.hits == []


@pytest.mark.parametrize(("url", "problem"), [
    ("ftp://hooks.example.com/x", "url: must be an http or https URL, not 'ftp'"),
    ("http://169.254.169.254/hook", "url: 169.254.169.254 is a link-local address"),
    ("http://[fd00::1]/hook", "url: fd00::1 is a private address"),
])
async def test_a_bot_url_is_checked_when_saved(settings, aiohttp_client, url, problem):
    app = await vigil(aiohttp_client, settings, [])
    err = await app.call("POST", "/bots", {"type": "slack", "alias": "x", "url": url}, expect=400)
    assert problem in err["error"]["message"]
    bot = await app.post("/bots", {"type": "slack", "alias": "ok", "url": "https://hooks.slack.com/services/T/B/x"})
    err = await app.call("PATCH", f"/bots/{bot['bot_id']}", {"url": url}, expect=400)
    assert problem in err["error"]["message"]


async def test_bot_test_reports_the_refusal_and_sends_nothing(settings, aiohttp_client, internal):
    service, port = internal
    app = await vigil(aiohttp_client, settings, [])
    bot = await app.post("/bots", {"type": "slack", "alias": "x", "url": f"http://localhost:{port}/hook"})
    result = await app.post(f"/bots/{bot['bot_id']}/test")
    assert result["ok"] is False and result["result"].startswith("slack: refused: ")
    assert "loopback" in result["result"] and service.hits == []


@pytest.mark.parametrize(("bot_type", "path", "shown"), [
    ("slack", "/error", "slack: HTTP 500"),
    ("wecom", "/json-error", "wecom: platform error 310000"),
])
async def test_bot_test_never_returns_the_remote_body(settings, aiohttp_client, internal, bot_type, path, shown):
    service, port = internal
    app = await vigil(aiohttp_client, settings, ["127.0.0.1", "::1"])  # allowed: the body is still not shown
    bot = await app.post("/bots", {"type": bot_type, "alias": "x", "url": f"http://127.0.0.1:{port}{path}"})
    result = await app.post(f"/bots/{bot['bot_id']}/test")
    assert result == {"ok": False, "result": shown}
    assert service.hits == [path]


@pytest.mark.parametrize(("settings_in", "problem"), [
    ({"base_url": "file:///etc/passwd"}, "settings.base_url: must be an http or https URL"),
    ({"base_url": "http://169.254.169.254"}, "settings.base_url: 169.254.169.254 is a link-local address"),
    ({"base_url": 42}, "settings.base_url: must be a URL string"),
])
async def test_im_app_urls_are_checked_when_saved(settings, aiohttp_client, settings_in, problem):
    app = await vigil(aiohttp_client, settings, [])
    err = await app.call("POST", "/im-apps", {"platform": "wecom", "name": "w", "settings": settings_in}, expect=400)
    assert problem in err["error"]["message"]


async def test_an_sdk_base_url_resolving_inside_is_refused_when_the_adapter_is_built(settings, aiohttp_client):
    # lark-oapi brings its own HTTP client: its base URL is resolved and judged whenever adapters are built.
    app = await vigil(aiohttp_client, settings, [])
    created = await app.post("/im-apps", {"platform": "feishu", "name": "f", "settings": {"base_url": "http://localhost:9"},
                                          "secrets": {"app_id": "cli_x", "app_secret": "s", "verification_token": "t"}})
    [problem] = [p for p in created["problems"] if "base_url" in p]
    assert "settings.base_url: refused: " in problem and "loopback" in problem
    from bot.keys import ADAPTER_MAP
    from core.types import Platform

    assert Platform.FEISHU not in app.app[ADAPTER_MAP]
