"""The incident page's actions and live updates in a real browser (Debian's Chromium through Playwright):
acknowledging on the page updates the Slack card that paged the member (the same path as a click on it),
and another member's comment, posted through the Open API, appears on an open page without a reload."""

from __future__ import annotations

import json

from tests.fakes.slack import FakeSlack
from tests.kit import Api, until
from tests.web.conftest import PASSWORD, new_incident, new_member
from tests.web.test_pages_browser import DESKTOP, PHONE, _base, _screenshots, _sign_in, chromium  # noqa: F401

SLACK_TOKEN, SIGNING, ANN_SLACK = "xoxb-web-actions", "web-actions-signing-secret", "U0ANN0001"


async def test_ack_on_the_page_updates_the_slack_card(settings, aiohttp_client, aiohttp_server, chromium):  # noqa: F811
    from bot.server import create_app

    slack = FakeSlack(bot_token=SLACK_TOKEN, users={ANN_SLACK: "ann@example.com"})
    slack_url = str((await aiohttp_server(slack.app())).make_url("")).rstrip("/")
    app = Api(await aiohttp_client(create_app(settings)), "test-admin-token-0123456789abcdef")
    await app.post("/im-apps", {"platform": "slack", "name": "s", "settings": {"base_url": slack_url},
                                "secrets": {"bot_token": SLACK_TOKEN, "signing_secret": SIGNING}})
    ann = await app.post("/members", {"name": "Ann", "email": "ann@example.com", "preferences": {"Critical": ["im"]}})
    await app.call("PUT", f"/members/{ann['member_id']}/password", {"password": PASSWORD})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN_SLACK})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: slack.calls("chat.postMessage"))
    iid = (await app.get("/incidents"))["items"][0]["incident_id"]

    page = await (await chromium.new_context(viewport=PHONE)).new_page()
    await page.goto(f"{_base(app)}/incidents/{iid}")
    await _sign_in(page, "ann@example.com")
    await page.wait_for_url(f"**/incidents/{iid}")
    await page.get_by_role("button", name="Acknowledge", exact=True).click()
    await page.get_by_role("status").filter(has_text="Ann acknowledged incident").wait_for()
    assert await page.locator(".meta .progress").inner_text() == "Processing"
    await until(lambda: slack.calls("chat.update"))
    [update] = slack.calls("chat.update")
    card = json.dumps(update.args)
    assert "Processing" in card and "Ann" in card
    timeline = await page.locator("#timeline").inner_text()
    assert "Acknowledged by Ann via the web" in timeline


async def test_another_members_comment_appears_live(app, chromium, db_url):  # noqa: F811
    await new_member(app, "alice")
    bob = await new_member(app, "bob")
    bob_token = (await app.post("/tokens", {"name": "bob", "member_id": bob, "role": "responder"}))["token"]
    iid = await new_incident(app, "checkout latency p99 above 2 s")
    page = await (await chromium.new_context(viewport=DESKTOP)).new_page()
    await page.goto(f"{_base(app)}/incidents/{iid}")
    await _sign_in(page, "alice@example.com")
    await page.wait_for_url(f"**/incidents/{iid}")
    await page.evaluate("window.vigilNotReloaded = true")
    await page.locator("#comment").fill("half typed")  # a form being filled in is left alone
    await app.post(f"/incidents/{iid}/comment", {"comment": "rolled back the deploy"}, token=bob_token)
    await app.post(f"/incidents/{iid}/ack", token=bob_token)
    await page.locator("#timeline").get_by_text("rolled back the deploy").wait_for(timeout=15000)
    await page.locator(".meta .progress").filter(has_text="Processing").wait_for(timeout=15000)
    # the actions follow (Acknowledge gives way to Unacknowledge) while the comment being typed stays
    await page.get_by_role("button", name="Unacknowledge").wait_for(timeout=15000)
    assert await page.get_by_role("button", name="Acknowledge", exact=True).count() == 0
    assert await page.evaluate("window.vigilNotReloaded") is True
    assert await page.locator("#comment").input_value() == "half typed"
    assert "Acknowledged by bob via Open API" in await page.locator("#timeline").inner_text()
    if "sqlite" in db_url:
        await page.locator("#comment").fill("")
        await _screenshots(page, "incident-actions")


async def test_the_list_follows_new_incidents_and_progress(app, chromium, monkeypatch):  # noqa: F811
    from bot.web import incident_list

    monkeypatch.setattr(incident_list, "PAGE_SIZE", 1)  # a new incident pushes the shown one off the first page
    await new_member(app, "alice")
    bob = await new_member(app, "bob")
    bob_token = (await app.post("/tokens", {"name": "bob", "member_id": bob, "role": "responder"}))["token"]
    first = await new_incident(app, "checkout latency p99 above 2 s")
    page = await (await chromium.new_context(viewport=DESKTOP)).new_page()
    await page.goto(f"{_base(app)}/incidents")
    await _sign_in(page, "alice@example.com")
    await page.wait_for_url("**/incidents")
    await page.evaluate("window.vigilNotReloaded = true")
    row = page.locator(f"#incident-row-{first}")
    assert await row.locator(".progress").inner_text() == "Triggered"
    news = page.get_by_role("status").filter(has_text="new incident")
    assert not await news.is_visible()

    second = await new_incident(app, "payments queue backing up", channel="payments")
    await news.filter(has_text="1 new incident — show").wait_for(timeout=15000)
    assert await page.locator(f"#incident-row-{second}").count() == 0  # offered, not pushed under the reader
    await app.post(f"/incidents/{first}/ack", token=bob_token)  # a progress change: the shown row follows
    await row.locator(".progress").filter(has_text="Processing").wait_for(timeout=15000)
    assert await page.evaluate("window.vigilNotReloaded") is True
    await news.get_by_role("link").click()
    await page.locator(f"#incident-row-{second}").wait_for()
    assert not await news.is_visible()
