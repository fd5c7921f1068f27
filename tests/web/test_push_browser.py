"""The service worker in a real browser (Debian's Chromium, headless, through Playwright): a page Vigil pushed
(through the local push service, decrypted there) is delivered to sw.js with the DevTools protocol as the
browser would after its push service; the worker shows the notification with severity, title, channel and the
Acknowledge and Open buttons, tells open pages, and its Acknowledge handler acknowledges the incident through
/push/ack. Headless Chromium cannot click a notification button, so the test calls the worker's own click
handler with the notification it shows (reference/web_testing.md)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from tests.kit import until
from tests.web.test_push import member_with_app, page_ann, start

CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html><title>push test</title><script>
window.pages = [];
navigator.serviceWorker.addEventListener("message", (e) => window.pages.push(e.data));
window.ready = navigator.serviceWorker.register("/sw.js").then(() => navigator.serviceWorker.ready)
  .then(() => "ready");
</script>"""


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Chromium is required (VIGIL_REQUIRE_SERVICES=1) but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def push_service(aiohttp_server):
    from tests.fakes.push_service import FakePushService

    service = FakePushService()
    server = await aiohttp_server(service.app())
    service.url = str(server.make_url("")).rstrip("/")
    return service


async def _registration_id(cdp) -> str:
    regs: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: regs.extend(e["registrations"]))
    await cdp.send("ServiceWorker.enable")
    await until(lambda: [r for r in regs if not r.get("isDeleted")], timeout=15)
    return next(r for r in regs if not r.get("isDeleted"))["registrationId"]


async def test_the_service_worker_shows_the_page_and_acknowledges_it(settings, aiohttp_client, push_service, chromium):
    from playwright.async_api import async_playwright

    api = await start(settings, aiohttp_client, pages={"/push-test": _html})
    ann, _sub = await member_with_app(api, push_service)
    iid = await page_ann(api, ann)
    await until(lambda: push_service.received)
    pushed = push_service.received[0].payload
    base = str(api.client.make_url("")).rstrip("/")

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            ctx = await browser.new_context()
            await ctx.grant_permissions(["notifications"], origin=base)
            page = await ctx.new_page()
            await page.goto(base + "/push-test")
            assert await page.evaluate("window.ready") == "ready"
            cdp = await ctx.new_cdp_session(page)
            registration = await _registration_id(cdp)
            await cdp.send("ServiceWorker.deliverPushMessage", {
                "origin": base, "registrationId": registration, "data": orjson.dumps(pushed).decode()})
            await until(lambda: page.evaluate("window.pages.length"), timeout=15)
            assert (await page.evaluate("window.pages"))[0]["page"]["incident_id"] == iid
            shown = await page.evaluate("""navigator.serviceWorker.ready.then((r) => r.getNotifications())
                .then((ns) => ns.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data,
                                               actions: n.actions.map((a) => [a.action, a.title])})))""")
            assert len(shown) == 1
            [note] = shown
            assert "Critical: checkout p99 > 2s" in note["title"] and note["body"] == "Channel: payments"
            assert note["actions"] == [["ack", "Acknowledge"], ["open", "Open"]]
            assert note["data"] == {"incident_id": iid, "token": pushed["ack_token"], "path": f"/incidents/{iid}"}

            [worker] = ctx.service_workers
            result = await worker.evaluate("""async () => {
                const [n] = await self.registration.getNotifications();
                return await self.vigilNotificationClick("ack", n);
            }""")
            assert result["ok"] is True and "acknowledged" in result["text"]
            async def titles() -> list[str]:
                return await page.evaluate("""navigator.serviceWorker.ready.then((r) => r.getNotifications())
                    .then((ns) => ns.map((n) => n.title))""")

            # The worker has replaced the notification by the time its handler's promise resolves.
            assert await titles() == ["Acknowledged"]
        finally:
            await browser.close()
    detail = await api.get(f"/incidents/{iid}")
    assert detail["progress"] == "Processing"
    assert [t["actor_id"] for t in detail["timeline"] if t["kind"] == "i_ack"] == [ann["member_id"]]


async def test_the_manifest_makes_the_pages_installable(settings, aiohttp_client):
    api = await start(settings, aiohttp_client)
    resp = await api.client.get("/manifest.webmanifest")
    assert resp.content_type == "application/manifest+json"
    manifest = await resp.json(content_type=None)
    assert (manifest["start_url"], manifest["display"]) == ("/", "standalone")
    assert manifest["theme_color"] and manifest["background_color"]
    for icon in manifest["icons"]:
        got = await api.client.get(icon["src"])
        assert got.status == 200 and got.content_type == "image/png"
        width, height = (int(x) for x in icon["sizes"].split("x"))
        png = await got.read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and (int.from_bytes(png[16:20]), int.from_bytes(png[20:24])) == (
            width, height)
    sw = await api.client.get("/sw.js")
    assert sw.status == 200 and "javascript" in sw.content_type and sw.headers["Cache-Control"] == "no-cache"


async def _html(_request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")
