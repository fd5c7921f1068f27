"""Voice and SMS vendor failover: the pure decisions (table-tested), then pages through a running Vigil
whose VIGIL_SMS lists two providers, Twilio first and an HTTP gateway second, both local fakes."""

from __future__ import annotations

import pytest

from bot.media.failover import Step, combined, next_step
from core.errors import DeliveryError
from tests.fakes.sms_gateway import FakeSmsGateway
from tests.fakes.twilio import FakeTwilio
from tests.kit import Api, until

TIMEOUT = DeliveryError("twilio: timed out after 2s", retryable=True, reason="timed out")
OUTAGE = DeliveryError("twilio: HTTP 503", retryable=True, reason="HTTP 503")
LIMITED = DeliveryError("twilio: HTTP 429", retryable=True, retry_after=30, reason="HTTP 429")
AUTH = DeliveryError("twilio: HTTP 401", retryable=False, reason="HTTP 401")
BAD_NUMBER = DeliveryError("twilio: Twilio error 21211: Invalid 'To' Phone Number", retryable=False, recipient=True)


@pytest.mark.parametrize(("error", "step"), [
    (TIMEOUT, Step.NEXT), (OUTAGE, Step.NEXT), (LIMITED, Step.NEXT),
    (AUTH, Step.NEXT),  # our credentials at that vendor: the next vendor has its own
    (BAD_NUMBER, Step.STOP),  # every vendor refuses a bad number
])
def test_next_step(error, step):
    assert next_step(error) is step


@pytest.mark.parametrize(("failures", "retryable", "retry_after", "recipient"), [
    ([("a", OUTAGE)], True, None, False),
    ([("a", AUTH), ("b", AUTH)], False, None, False),  # hand over to the member's next medium
    ([("a", OUTAGE), ("b", AUTH)], True, None, False),  # a's outage may pass: retry the chain
    ([("a", LIMITED), ("b", AUTH)], True, 30, False),
    ([("a", LIMITED), ("b", OUTAGE)], True, None, False),  # b asked for no wait: the normal backoff
    ([("a", OUTAGE), ("b", BAD_NUMBER)], False, None, True),
])
def test_combined(failures, retryable, retry_after, recipient):
    error = combined(failures)
    assert (error.retryable, error.retry_after, error.recipient) == (retryable, retry_after, recipient)
    assert str(error) == "; ".join(f"{name}: {e}" for name, e in failures)


SID, TOKEN, FROM, KEY = "AC" + "cd" * 16, "twilio-token-failover", "+15005550006", "gw-key-failover"


@pytest.fixture
async def vigil(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    twilio, gateway = FakeTwilio(account_sid=SID, auth_token=TOKEN, numbers={FROM}), FakeSmsGateway(api_key=KEY)
    twilio_url = str((await aiohttp_server(twilio.app())).make_url("")).rstrip("/")
    gateway_url = str((await aiohttp_server(gateway.app())).make_url("")).rstrip("/")
    conf = settings.model_copy(update={"secret_key": "failover-secret", "sms": [
        {"provider": "twilio_sms", "account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
         "base_url": twilio_url, "timeout": 0.5},
        {"provider": "http_sms", "url": gateway_url + "/v1/sms", "headers": {"X-Api-Key": "{{ secret.key }}"},
         "secrets": {"key": KEY}, "body": '{"to": {{ to.phone|tojson }}, "text": {{ message.text|tojson }}}',
         "message_id_path": "data.id"}]})
    return Api(await aiohttp_client(create_app(conf)), "test-admin-token-0123456789abcdef"), twilio, gateway


async def _page_by_sms(app, phone="+15550001111"):
    ann = await app.post("/members", {"name": "ann", "phone": phone, "preferences": {"Critical": ["sms"]},
                                      "fallback": []})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [inc] = (await app.get("/incidents"))["items"]

    async def sms_delivery():
        found = [d for d in (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"]
                 if d["medium"] == "sms" and d["state"] != "pending"]
        return found[0] if found else None

    await until(sms_delivery)
    return await sms_delivery(), inc["incident_id"]


@pytest.mark.parametrize("outage", ["error", "timeout"])
async def test_a_failing_first_provider_is_skipped_to_the_next_in_the_same_attempt(vigil, outage):
    app, twilio, gateway = vigil
    if outage == "error":
        twilio.fail_next(503, 20500, "Internal Server Error")
    else:
        twilio.delay = 1.0  # over the provider's 0.5 s timeout
    delivery, iid = await _page_by_sms(app)
    assert (delivery["state"], delivery["attempts"], delivery["provider"]) == ("sent", 1, "http_sms")
    assert delivery["provider_message_id"].startswith("gw-")
    assert delivery["last_error"].startswith("twilio_sms: twilio: ")
    assert ("503" if outage == "error" else "timed out") in delivery["last_error"]
    assert len(gateway.requests) == 1 and b"db-1 is down" in gateway.requests[0].body
    sent = [t for t in (await app.get(f"/incidents/{iid}"))["timeline"] if t["kind"] == "delivery_sent"]
    assert sent[0]["detail"]["provider"] == "http_sms" and "twilio_sms" in sent[0]["detail"]["skipped"]


async def test_the_first_provider_sends_when_it_works(vigil):
    app, twilio, gateway = vigil
    delivery, _ = await _page_by_sms(app)
    assert (delivery["state"], delivery["provider"], delivery["last_error"]) == ("sent", "twilio_sms", "")
    assert delivery["provider_message_id"].startswith("SM") and not gateway.requests and len(twilio.requests) == 1


async def test_a_bad_number_is_not_tried_at_the_other_vendors(vigil):
    app, twilio, gateway = vigil
    twilio.fail_next(400, 21211, "Invalid 'To' Phone Number: +15550009999")
    delivery, _ = await _page_by_sms(app, phone="+15550009999")
    assert delivery["state"] == "failed" and delivery["attempts"] == 1
    assert "21211" in delivery["last_error"] and not gateway.requests
