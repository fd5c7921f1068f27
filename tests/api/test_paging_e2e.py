"""Issue 3 end to end through a running Vigil: a two-level rule pages, escalates after the wait, stops at
the ack, and falls back from a failing IM send to SMS (Twilio fake) and then email (real SMTP, aiosmtpd);
all of it visible in the timeline and the deliveries API. Also the voice keypad acknowledging a page."""

from __future__ import annotations

import asyncio

import pytest

from bot.media.twilio import twilio_signature
from tests.fakes.twilio import FakeTwilio
from tests.kit import Api, until

SID, TOKEN, FROM = "AC" + "ab" * 16, "twilio-token-e2e", "+15005550006"


@pytest.fixture
async def vigil(settings, aiohttp_client, aiohttp_server, inbox):
    from bot.server import create_app

    twilio = FakeTwilio(account_sid=SID, auth_token=TOKEN, numbers={FROM})
    server = await aiohttp_server(twilio.app())
    base = str(server.make_url("")).rstrip("/")
    _, port = inbox
    conf = settings.model_copy(update={
        "secret_key": "e2e-secret",
        "email": {"host": "127.0.0.1", "port": port, "from_addr": "vigil@example.com", "start_tls": False},
        "sms": {"provider": "twilio_sms", "account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
                "base_url": base},
        "voice": {"provider": "twilio_voice", "account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
                  "base_url": base},
    })
    return Api(await aiohttp_client(create_app(conf)), "test-admin-token-0123456789abcdef"), twilio


async def test_escalation_with_fallback_to_sms_then_email(vigil, inbox):
    app, twilio = vigil
    box, _ = inbox
    ann = await app.post("/members", {"name": "ann", "email": "ann@example.com", "phone": "+15550001111",
                                      "preferences": {"Critical": ["im"]}})
    bob = await app.post("/members", {"name": "bob", "email": "bob@example.com", "phone": "+15550002222",
                                      "preferences": {"Critical": ["email"]}})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "db", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "wait_minutes": 0.05},
        {"targets": {"member_ids": [bob["member_id"]]}}], "repeat": 5, "repeat_interval_minutes": 1})
    twilio.fail_next(400, 21211, "Invalid 'To' Phone Number")  # SMS fails for good: fall back to email
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    async def mail_to(addr):
        return any(addr in str(m["To"]) for m in box.messages)

    await until(lambda: mail_to("ann@example.com"))
    mail = next(m for m in box.messages if "ann@example.com" in str(m["To"]))
    assert "db-1 is down" in mail["Subject"] + mail.get_body(("plain",)).get_content()
    await until(lambda: mail_to("bob@example.com"))  # level 2 after 3 s, nobody acknowledged
    await app.post(f"/incidents/{iid}/ack", {"member_id": bob["member_id"]})
    await app.settle()
    sent = len(box.messages)
    await asyncio.sleep(1.5)
    await app.settle()
    assert len(box.messages) == sent, "no page after the ack"

    deliveries = (await app.get(f"/incidents/{iid}/deliveries"))["items"]
    ann_pages = [(d["medium"], d["state"]) for d in deliveries if d["person_id"] == ann["member_id"]]
    assert ann_pages == [("im", "failed"), ("sms", "failed"), ("email", "sent")]
    assert "no linked account" in deliveries[0]["last_error"]
    timeline = [t["kind"] for t in (await app.get(f"/incidents/{iid}"))["timeline"]]
    for kind in ("i_new", "i_notify", "delivery_failed", "fallback", "delivery_sent", "i_ack",
                 "escalation_stopped"):
        assert kind in timeline, kind
    assert timeline.count("fallback") == 2


async def test_voice_keypad_acknowledges_through_the_action_path(vigil):
    app, twilio = vigil
    ann = await app.post("/members", {"name": "ann", "phone": "+15550001111", "preferences": {"Critical": ["voice"]}})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "disk full", "alert_key": "d"})
    await until(lambda: _async(bool(twilio.requests)))
    call = twilio.requests[0]
    assert call.resource == "Calls" and "press 1" in call.form["Twiml"].lower()
    action = call.form["Twiml"].split('action="')[1].split('"')[0].replace("&amp;", "&")
    path = action[len("http://vigil.test"):]
    form = {"Digits": "1", "CallSid": "CA1"}
    forged = await app.client.post(path, data=form, headers={"X-Twilio-Signature": "bogus"})
    assert forged.status == 401
    signed = await app.client.post(path, data=form, headers={"X-Twilio-Signature": twilio_signature(TOKEN, action, form)})
    assert signed.status == 200 and "acknowledged" in await signed.text()
    [inc] = (await app.get("/incidents"))["items"]
    assert inc["progress"] == "Processing"
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    [ack] = [t for t in detail["timeline"] if t["kind"] == "i_ack"]
    assert ack["source"] == "voice" and ack["actor_id"] == ann["member_id"]


async def _async(value):
    return value


@pytest.fixture
async def vigil_arq(settings, aiohttp_client, aiohttp_server, inbox, redis_url):
    """Vigil with jobs on arq (Redis) and a separate arq worker composed as `vigil worker` does, as in production."""
    from redis.asyncio import Redis

    from bot.cli import run_worker
    from bot.server import create_app

    await Redis.from_url(redis_url).flushdb()
    _, port = inbox
    conf = settings.model_copy(update={
        "secret_key": "e2e-secret", "redis_url": redis_url,
        "email": {"host": "127.0.0.1", "port": port, "from_addr": "vigil@example.com", "start_tls": False}})
    api = Api(await aiohttp_client(create_app(conf)), "test-admin-token-0123456789abcdef")
    task = asyncio.create_task(run_worker(conf, handle_signals=False))  # its own engine, adapters and senders
    yield api
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_two_level_rule_over_a_schedule_on_arq(vigil_arq, inbox):
    """Level 1 pages whoever the schedule has on call, level 2 follows after the wait, the ack stops it;
    with every job going through Redis and an arq worker."""
    app = vigil_arq
    box, _ = inbox
    ann = await app.post("/members", {"name": "ann", "email": "ann@example.com", "preferences": {"Critical": ["im"]}})
    bob = await app.post("/members", {"name": "bob", "email": "bob@example.com", "preferences": {"Critical": ["email"]}})
    schedule = await app.post("/schedules", {"name": "primary", "definition": {"layers": [{
        "start": "2020-01-01T00:00:00Z", "members": [[{"member_id": ann["member_id"]}]],
        "rotation": {"unit": "days", "value": 1}}]}})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "db", "levels": [
        {"targets": {"schedule_ids": [schedule["schedule_id"]]}, "wait_minutes": 0.05},
        {"targets": {"member_ids": [bob["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]
    # ann is on call: her IM fails (no linked account), no SMS provider, so email it is
    await until(lambda: any("ann@example.com" in str(m["To"]) for m in box.messages), timeout=30)
    await until(lambda: any("bob@example.com" in str(m["To"]) for m in box.messages), timeout=30)
    await app.post(f"/incidents/{iid}/ack", {"member_id": bob["member_id"]})
    sent = len(box.messages)
    await asyncio.sleep(2)
    assert len(box.messages) == sent
    ann_pages = [(d["medium"], d["state"]) for d in (await app.get(f"/incidents/{iid}/deliveries"))["items"]
                 if d["person_id"] == ann["member_id"]]
    assert ann_pages == [("im", "failed"), ("sms", "failed"), ("email", "sent")]
    kinds = [t["kind"] for t in (await app.get(f"/incidents/{iid}"))["timeline"]]
    assert kinds.count("i_notify") == 2 and "fallback" in kinds and "i_ack" in kinds


async def test_an_emailed_page_links_to_the_incident_signed_in_as_its_recipient(vigil, inbox):
    """E-mail and SMS go to one member: their link carries that member's token (no sign-in wall at 3 a.m.)."""
    import re

    from tests.web.conftest import Browser

    app, _twilio = vigil
    box, _ = inbox
    ann = await app.post("/members", {"name": "Ann", "email": "ann@example.com",
                                      "preferences": {"Critical": ["email"]}})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: box.messages)
    text = box.messages[0].get_body(("plain",)).get_content()
    link = re.search(r"http://vigil\.test/incidents/\d+\?t=\S+", text).group(0)
    body = await Browser(app.client).open_link(link)
    assert "db-1 is down" in body and ">Ann<" in body
