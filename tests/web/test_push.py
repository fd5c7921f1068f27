"""The app medium end to end through a running Vigil and a local push service (tests/fakes/push_service.py):
a page arrives at the push service encrypted for the subscription and signed with Vigil's VAPID key, and
decrypts to the payload the service worker shows; a subscription the push service says is gone is dropped and
the page falls back to the next medium; the push's action token acknowledges through /push/ack (a forged one
changes nothing); the VAPID key is made once, stored sealed, and the same after a restart."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from bot.keys import SESSIONS
from bot.media.web_push import payload
from core.crypto import unseal
from core.db import make_engine, make_sessionmaker
from core.models import PushSubscription, VapidKey
from core.paging import Page
from tests.fakes.push_service import FakePushService
from tests.fakes.twilio import FakeTwilio
from tests.kit import Api, until

ADMIN = "test-admin-token-0123456789abcdef"
SECRET = "push-test-secret-key-0123456789abcdef"
SID, TOKEN, FROM = "AC" + "cd" * 16, "twilio-token-push", "+15005550006"


async def start(settings, aiohttp_client, pages=None, **update):
    """A running Vigil with the push routes, and any extra `pages` (path -> handler) a test serves."""
    from bot.server import create_app
    from bot.web import push

    app = create_app(settings.model_copy(update={"secret_key": SECRET, **update}))
    if not any(r.resource.canonical == "/push/ack" for r in app.router.routes()):
        push.setup(app)  # the web pages mount it; mounted here when they do not (yet)
    for path, handler in (pages or {}).items():
        app.router.add_get(path, handler)
    return Api(await aiohttp_client(app), ADMIN)


@pytest.fixture
async def fakes(aiohttp_server):
    service = FakePushService()
    server = await aiohttp_server(service.app())
    service.url = str(server.make_url("")).rstrip("/")
    twilio = FakeTwilio(account_sid=SID, auth_token=TOKEN, numbers={FROM})
    twilio_server = await aiohttp_server(twilio.app())
    return service, twilio, str(twilio_server.make_url("")).rstrip("/")


@pytest.fixture
async def vigil(settings, aiohttp_client, fakes):
    service, _twilio, twilio_url = fakes
    api = await start(settings, aiohttp_client, sms={"provider": "twilio_sms", "account_sid": SID,
                                                     "auth_token": TOKEN, "from_number": FROM, "base_url": twilio_url})
    resp = await api.client.get("/push/vapid-public-key")
    service.server_key = (await resp.json())["data"]["public_key"]  # the key browsers subscribe with
    return api


async def member_with_app(api: Api, service: FakePushService, **member):
    ann = await api.post("/members", {"name": "ann", "phone": "+15550001111",
                                      "preferences": {"Critical": ["app"]}, "fallback": ["app", "sms"], **member})
    sub = service.subscribe()
    created = await api.post(f"/members/{ann['member_id']}/push-subscriptions", sub)
    assert created["push_service"] == service.url and sub["endpoint"] not in str(created)
    return ann, sub


async def page_ann(api: Api, ann) -> int:
    cid, key = await api.channel_with_integration(name="payments")
    await api.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await api.push(key, {"event_status": "Critical", "title_rule": "checkout p99 > 2s", "alert_key": "p99"})
    [inc] = (await api.get("/incidents"))["items"]
    return inc["incident_id"]


async def test_a_page_arrives_at_the_push_service_decrypted_to_the_payload(vigil, fakes):
    service, twilio, _ = fakes
    ann, _sub = await member_with_app(vigil, service)
    iid = await page_ann(vigil, ann)
    await until(lambda: service.received)
    [got] = service.received
    token, url = got.payload["ack_token"], got.payload["url"]
    assert got.payload == {"v": 1, "incident_id": iid, "title": "checkout p99 > 2s", "severity": "Critical",
                           "channel": "payments", "url": url, "event": "escalation", "ack_token": token}
    # Open signs the phone in as Ann, like every page sent to one member (core/links.py).
    assert url.startswith(f"http://vigil.test/incidents/{iid}?t={ann['member_id']}.{iid}.")
    assert got.headers["Urgency"] == "high" and int(got.headers["TTL"]) > 0
    assert got.claims["aud"] == service.url and service.refused == []
    await vigil.settle()
    [d] = (await vigil.get(f"/incidents/{iid}/deliveries"))["items"]
    assert (d["medium"], d["state"]) == ("app", "sent")
    assert twilio.requests == []  # delivered: no fallback


async def test_a_gone_subscription_is_dropped_and_the_page_falls_back(vigil, fakes):
    service, twilio, _ = fakes
    ann, sub = await member_with_app(vigil, service)
    service.expire(sub)
    iid = await page_ann(vigil, ann)
    await until(lambda: twilio.requests)  # the next medium of ann's chain: SMS
    await vigil.settle()
    assert service.refused == [(410, "subscription expired")]
    assert (await vigil.get(f"/members/{ann['member_id']}/push-subscriptions"))["items"] == []
    pages = [(d["medium"], d["state"]) for d in (await vigil.get(f"/incidents/{iid}/deliveries"))["items"]]
    assert pages == [("app", "failed"), ("sms", "sent")]
    timeline = (await vigil.get(f"/incidents/{iid}"))["timeline"]
    [failed] = [t for t in timeline if t["kind"] == "delivery_failed"]
    assert "gone" in failed["detail"]["error"] and failed["detail"]["retryable"] is False
    assert any(t["kind"] == "fallback" for t in timeline)


async def test_a_transient_push_service_error_is_retried(vigil, fakes):
    service, twilio, _ = fakes
    ann, _sub = await member_with_app(vigil, service)
    service.fail_next(503, {"Retry-After": "1"})
    iid = await page_ann(vigil, ann)
    await until(lambda: service.received)
    await vigil.settle()
    [d] = (await vigil.get(f"/incidents/{iid}/deliveries"))["items"]
    assert (d["medium"], d["state"], d["attempts"]) == ("app", "sent", 2)
    assert twilio.requests == []


async def test_the_push_action_token_acknowledges_and_a_forged_one_changes_nothing(vigil, fakes):
    service, _twilio, _ = fakes
    ann, _sub = await member_with_app(vigil, service)
    iid = await page_ann(vigil, ann)
    await until(lambda: service.received)
    token = service.received[0].payload["ack_token"]
    body_incident, member, mac = token.split(".")
    for forged in (f"{body_incident}.{member}.{'A' * len(mac)}", f"{body_incident}.{int(member) + 1}.{mac}", "", 42):
        resp = await vigil.client.post("/push/ack", json={"token": forged})
        assert resp.status == 401, forged
    assert (await vigil.get(f"/incidents/{iid}"))["progress"] == "Triggered"

    resp = await vigil.client.post("/push/ack", json={"token": token})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["data"]["ok"] is True and "acknowledged" in body["data"]["text"]
    detail = await vigil.get(f"/incidents/{iid}")
    assert detail["progress"] == "Processing"
    [ack] = [t for t in detail["timeline"] if t["kind"] == "i_ack"]
    assert ack["actor_id"] == ann["member_id"] and ack["source"] == "web"
    again = await (await vigil.client.post("/push/ack", json={"token": token})).json()
    assert again["data"]["ok"] is False  # already acknowledged: said so, nothing else changes


async def test_vapid_keys_are_made_once_stored_sealed_and_reused_after_a_restart(settings, aiohttp_client):
    first = await start(settings, aiohttp_client)
    key = (await (await first.client.get("/push/vapid-public-key")).json())["data"]["public_key"]
    await first.client.close()
    again = await start(settings, aiohttp_client)  # a restart on the same database
    assert (await (await again.client.get("/push/vapid-public-key")).json())["data"]["public_key"] == key
    engine = make_engine(settings.resolved_database_url())
    try:
        async with make_sessionmaker(engine)() as session:
            [row] = (await session.execute(select(VapidKey))).scalars().all()
    finally:
        await engine.dispose()
    assert row.public_key == key
    private = unseal(SECRET, row.private_key)["d"]
    assert private not in row.private_key  # sealed, not stored as is
    with pytest.raises(ValueError):
        unseal("another-secret-key", row.private_key)


async def test_browsers_subscribe_and_unsubscribe_as_their_member(vigil, fakes):
    service, _twilio, _ = fakes
    ann = await vigil.post("/members", {"name": "ann"})
    bob = await vigil.post("/members", {"name": "bob"})
    ann_token = (await vigil.post("/tokens", {"name": "ann's phone", "role": "responder",
                                               "member_id": ann["member_id"]}))["token"]
    sub = service.subscribe()
    headers = {"Authorization": f"Bearer {ann_token}"}
    assert (await vigil.client.post("/push/subscriptions", json=sub)).status == 401
    assert (await vigil.client.post("/push/subscriptions", data="endpoint=x", headers={
        **headers, "Content-Type": "application/x-www-form-urlencoded"})).status == 400
    bad = {**sub, "keys": {**sub["keys"], "auth": "c2hvcnQ"}}
    resp = await vigil.client.post("/push/subscriptions", json=bad, headers=headers)
    assert resp.status == 400 and "keys.auth" in (await resp.json())["error"]["message"]
    resp = await vigil.client.post("/push/subscriptions", json=sub, headers=headers)
    assert resp.status == 201 and (await resp.json())["data"]["member_id"] == ann["member_id"]
    # ann's token cannot see or add bob's subscriptions on the Open API
    await vigil.call("GET", f"/members/{bob['member_id']}/push-subscriptions", token=ann_token, expect=403)
    await vigil.call("POST", f"/members/{bob['member_id']}/push-subscriptions", service.subscribe(),
                     token=ann_token, expect=403)
    [listed] = (await vigil.get(f"/members/{ann['member_id']}/push-subscriptions", token=ann_token))["items"]
    assert listed["push_service"] == service.url
    resp = await vigil.client.delete("/push/subscriptions", json={"endpoint": sub["endpoint"]}, headers=headers)
    assert (await resp.json())["data"]["removed"] is True
    assert (await vigil.get(f"/members/{ann['member_id']}/push-subscriptions"))["items"] == []
    # the Open API removes one by id
    created = await vigil.post(f"/members/{ann['member_id']}/push-subscriptions", service.subscribe())
    await vigil.delete(f"/members/{ann['member_id']}/push-subscriptions/{created['subscription_id']}")
    await vigil.call("DELETE", f"/members/{bob['member_id']}/push-subscriptions/{created['subscription_id']}",
                     expect=404)


async def test_deleting_a_member_deletes_their_subscriptions(vigil, fakes):
    service, _twilio, _ = fakes
    ann, _sub = await member_with_app(vigil, service)
    await vigil.delete(f"/members/{ann['member_id']}")
    async with vigil.app[SESSIONS]() as session:
        assert (await session.execute(select(PushSubscription))).scalars().all() == []


def test_the_payload_is_small_even_for_a_long_title():
    page = Page(7, 1, "escalation", "Warning", "x" * 5000, "", None, "https://vigil.example/incidents/7")
    body = payload(page, "c" * 500, "7.3.abcdefghijklmnop")
    assert len(body["title"]) == 200 and len(body["channel"]) == 100
    assert len(orjson.dumps(body)) < 1024
