"""The personal center's other areas over HTTP, as a browser uses them: notification preferences (the same
data the Open API keeps), upcoming shifts and linked IM accounts, the calendar subscription URL and its
rotation, personal API tokens, and the devices that get push. Each also against another member's ids and a
form without its CSRF token."""

from __future__ import annotations

import re
from datetime import timedelta

from icalendar import Calendar

from bot.keys import SESSIONS
from core.clock import utcnow
from core.models import PushSubscription
from tests.web.conftest import Browser, new_member


async def _signed_in(app, name: str = "alice", role: str = "responder") -> tuple[Browser, int]:
    member_id = await new_member(app, name, role)
    browser = Browser(app.client)
    await browser.sign_in(f"{name}@example.com")
    return browser, member_id


async def test_notification_preferences_are_the_open_apis(app, browser):
    browser, alice = await _signed_in(app)
    body = (await browser.get("/account"))[2]
    assert 'name="Critical-1"' in body and 'name="fallback-5"' in body
    form = {"Critical-1": "voice", "Critical-2": "app", "Critical-3": "sms", "Warning-1": "im", "Warning-2": "",
            "Warning-3": "email", "Info-1": "email", "fallback-1": "app", "fallback-2": "email"}
    status, location, _ = await browser.post("/account/notifications", form, form_at="/account")
    assert (status, location) == (303, "/account?done=notifications#notifications")
    member = await app.get(f"/members/{alice}")
    assert member["preferences"] == {"Critical": ["voice", "app", "sms"], "Warning": ["im", "email"],
                                     "Info": ["email"]}
    assert member["fallback"] == ["app", "email"]
    body = (await browser.get("/account"))[2]
    assert re.search(r'name="Critical-2">.*?<option value="app" selected>', body, re.S)

    for bad, words in (({**form, "Info-2": "email"}, "Info: a medium is listed twice"),
                       ({**form, "Warning-1": "", "Warning-3": ""}, "Warning: choose at least one medium"),
                       ({**form, "fallback-1": "pigeon"}, "Fallback: unknown medium &#39;pigeon&#39;")):
        status, _, body = await browser.post("/account/notifications", bad, form_at="/account")
        assert status == 400 and words in body, words
    status, _, _ = await browser.post("/account/notifications", {**form, "Critical-1": "im"}, csrf=False)
    assert status == 403
    assert (await app.get(f"/members/{alice}"))["preferences"]["Critical"][0] == "voice"


async def test_upcoming_shifts_and_linked_im_accounts(app, browser):
    browser, alice = await _signed_in(app)
    bob = await new_member(app, "bob")
    team = await app.post("/teams", {"name": "dba", "member_ids": [alice]})
    start = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    await app.post("/schedules", {"name": "database primary", "definition": {"time_zone": "UTC", "layers": [{
        "name": "primary", "start": start.isoformat(), "members": [[{"team_id": team["team_id"]}],
                                                                   [{"member_id": bob}]],
        "rotation": {"unit": "days", "value": 1}}]}})
    await app.post("/schedules", {"name": "bob only", "definition": {"time_zone": "UTC", "layers": [{
        "start": start.isoformat(), "members": [[{"member_id": bob}]], "rotation": {"unit": "days", "value": 1}}]}})
    await app.post("/mapping-tables/slack/rows", {"member_id": alice, "im_user_id": "U024BE7LH"})
    await app.post("/mapping-tables/slack/rows", {"member_id": bob, "im_user_id": "U0BOB"})
    body = (await browser.get("/account"))[2]
    oncall = body[body.index('id="oncall"'):body.index('id="calendar"')]
    assert oncall.count("database primary") == 8 and "bob only" not in oncall  # every other day, now included
    assert "On call now" in oncall
    linked = body[body.index('id="im-accounts"'):]
    assert "Slack" in linked and "U024BE7LH" in linked and "U0BOB" not in linked


async def test_the_calendar_url_works_without_a_header_until_it_is_rotated(app, browser):
    browser, alice = await _signed_in(app)
    start = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    await app.post("/schedules", {"name": "web", "definition": {"time_zone": "UTC", "layers": [{
        "start": start.isoformat(), "members": [[{"member_id": alice}]], "rotation": {"unit": "days", "value": 1}}]}})
    assert (await app.client.get(f"/api/v1/members/{alice}/ical")).status == 401  # what a calendar app gets today
    assert "Make a calendar URL" in (await browser.get("/account"))[2]
    status, location, _ = await browser.post("/account/calendar", {}, form_at="/account")
    assert (status, location) == (303, "/account?done=calendar#calendar")
    first = re.search(r'id="calendar-url" class="copy" value="http://vigil.test(/calendar/[^"]+)"',
                      (await browser.get("/account"))[2]).group(1)
    browser.forget()  # a calendar app: no cookie, no header
    feed = await app.client.get(first)
    assert feed.status == 200 and feed.content_type == "text/calendar"
    assert feed.headers["Cache-Control"] == "private, no-cache"
    [event, *_] = Calendar.from_ical(await feed.read()).walk("VEVENT")
    assert str(event["SUMMARY"]) == "On call: alice"

    await browser.sign_in("alice@example.com")
    await browser.post("/account/calendar", {}, form_at="/account")
    second = re.search(r'value="http://vigil.test(/calendar/[^"]+)"', (await browser.get("/account"))[2]).group(1)
    assert second != first
    assert (await app.client.get(first)).status == 404  # the old URL stops at once
    assert (await app.client.get(second)).status == 200
    bob = await new_member(app, "bob")  # someone else's id with alice's secret, a made-up secret
    assert (await app.client.get(second.replace(f"/calendar/{alice}/", f"/calendar/{bob}/"))).status == 404
    assert (await app.client.get(f"/calendar/{alice}/AAAAAAAAAAAAAAAAAAAAAA.ics")).status == 404
    assert (await browser.post("/account/calendar/off", {}, csrf=False))[0] == 403
    assert (await app.client.get(second)).status == 200
    await browser.post("/account/calendar/off", {}, form_at="/account")
    assert (await app.client.get(second)).status == 404


async def test_personal_api_tokens_act_as_the_member_and_are_shown_once(app, browser):
    browser, alice = await _signed_in(app)
    body = (await browser.get("/account"))[2]
    assert '<option value="admin"' not in body  # a responder offers observer and responder only
    status, _, body = await browser.post("/account/tokens", {"name": "laptop script", "role": "observer"},
                                         form_at="/account")
    assert status == 201
    token = re.search(r'id="new-token-value" class="copy" value="(vgl_[^"]+)"', body).group(1)
    assert token not in (await browser.get("/account"))[2]  # never shown again
    assert (await app.get(f"/members/{alice}", token=token))["name"] == "alice"
    await app.call("POST", "/incidents/1/ack", {}, token=token, expect=403)  # an observer token reads only
    listed = (await app.get("/tokens"))["items"]
    [mine] = [t for t in listed if t["member_id"] == alice]
    assert (mine["name"], mine["role"]) == ("laptop script", "observer")

    status, _, body = await browser.post("/account/tokens", {"name": "root", "role": "admin"}, form_at="/account")
    assert status == 400 and "your role (responder) or a lower one" in body
    bob = await new_member(app, "bob")
    bobs = await app.post("/tokens", {"name": "bob's", "member_id": bob})
    status, _, body = await browser.post(f"/account/tokens/{bobs['token_id']}/revoke", {}, form_at="/account")
    assert status == 404 and "No such token of yours" in body
    assert (await app.get(f"/members/{bob}", token=bobs["token"]))["name"] == "bob"
    assert (await browser.post(f"/account/tokens/{mine['token_id']}/revoke", {}, csrf=False))[0] == 403
    status, location, _ = await browser.post(f"/account/tokens/{mine['token_id']}/revoke", {}, form_at="/account")
    assert location == "/account?done=token-revoked#tokens"
    await app.call("GET", f"/members/{alice}", token=token, expect=401)


async def test_devices_that_get_push_are_listed_and_removed(app, browser):
    browser, alice = await _signed_in(app)
    bob = await new_member(app, "bob")
    now = utcnow()
    async with app.app[SESSIONS]() as db:
        for member, endpoint, agent in (
                (alice, "https://fcm.googleapis.com/fcm/send/alice-phone",
                 "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"),
                (bob, "https://updates.push.services.mozilla.com/wpush/v2/bob", "Mozilla/5.0 (X11; Linux x86_64; "
                 "rv:128.0) Gecko/20100101 Firefox/128.0")):
            db.add(PushSubscription(member_id=member, endpoint=endpoint, p256dh="k", auth="a", user_agent=agent,
                                    created_at=now, updated_at=now))
        await db.commit()
    body = (await browser.get("/account"))[2]
    devices = body[body.index('id="devices"'):body.index('id="tokens"')]
    assert "Chrome on Android" in devices and "https://fcm.googleapis.com" in devices and "Firefox" not in devices
    assert 'id="enable-push" hidden' in devices  # account.js shows it where push works
    [mine] = (await app.get(f"/members/{alice}/push-subscriptions"))["items"]
    [bobs] = (await app.get(f"/members/{bob}/push-subscriptions"))["items"]
    status, _, body = await browser.post(f"/account/devices/{bobs['subscription_id']}/remove", {}, form_at="/account")
    assert status == 404 and "No such device of yours" in body
    assert (await browser.post(f"/account/devices/{mine['subscription_id']}/remove", {}, csrf=False))[0] == 403
    status, location, _ = await browser.post(f"/account/devices/{mine['subscription_id']}/remove", {},
                                             form_at="/account")
    assert location == "/account?done=device-removed#devices"
    assert (await app.get(f"/members/{alice}/push-subscriptions"))["items"] == []
    assert len((await app.get(f"/members/{bob}/push-subscriptions"))["items"]) == 1


async def test_upcoming_shifts_name_the_role_and_leave_disabled_schedules_out(app, browser):
    browser, alice = await _signed_in(app)
    role = await app.post("/oncall-roles", {"name": "secondary"})
    start = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    layer = {"start": start.isoformat(), "members": [[{"member_id": alice}]], "rotation": {"unit": "days", "value": 1}}
    await app.post("/schedules", {"name": "payments", "definition": {"layers": [{**layer, "role_id": role["role_id"]}]}})
    off = await app.post("/schedules", {"name": "paused", "definition": {"layers": [layer]}})
    await app.post(f"/schedules/{off['schedule_id']}/disable")
    body = (await browser.get("/account"))[2]
    oncall = body[body.index('id="oncall"'):body.index('id="calendar"')]
    assert "<strong>payments</strong> <span class=\"muted\">as secondary</span>" in oncall
    assert "paused" not in oncall
