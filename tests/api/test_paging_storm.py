"""Storms stay orderly (issue 10 point 5): when many incidents open at once, first pages go out by
severity, then arrival: a Critical incident opened behind a pile of Info ones is paged first."""

from __future__ import annotations

import pytest

from bot.keys import RUNNER
from tests.fakes.twilio import FakeTwilio
from tests.kit import Api, until

SID, TOKEN, FROM = "AC" + "ef" * 16, "twilio-token-storm", "+15005550006"
INFO, CRITICAL = 200, 8


@pytest.fixture
async def paging_by_sms(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    twilio = FakeTwilio(account_sid=SID, auth_token=TOKEN, numbers={FROM})
    server = await aiohttp_server(twilio.app())
    conf = settings.model_copy(update={"sms": {
        "provider": "twilio_sms", "account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
        "base_url": str(server.make_url("")).rstrip("/")}})
    return Api(await aiohttp_client(create_app(conf)), conf.admin_token), twilio


def alert(n: int, severity: str) -> dict:
    return {"status": "firing", "labels": {"alertname": f"storm-{n}", "severity": severity},
            "annotations": {"summary": f"{severity} {n}"}, "startsAt": "2026-12-05T03:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"{n:016x}"}


async def test_critical_incidents_opened_behind_a_pile_of_info_ones_are_paged_first(paging_by_sms):
    app, twilio = paging_by_sms
    ann = await app.post("/members", {"name": "ann", "phone": "+15550001111",
                                      "preferences": {s: ["sms"] for s in ("Critical", "Warning", "Info")}})
    cid, key = await app.channel_with_integration(fmt="prometheus")
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    # A backlog, as when the incidents open faster than pages go out (or the job runner restarts mid-storm):
    # the Info incidents open first, the Critical ones last, and only then does the runner look at them.
    runner = app.app[RUNNER]
    await runner.stop()
    await app.push(key, {"receiver": "vigil", "status": "firing", "alerts": [alert(n, "info") for n in range(INFO)]},
                   fmt="prometheus")
    await app.push(key, {"receiver": "vigil", "status": "firing",
                         "alerts": [alert(INFO + n, "critical") for n in range(CRITICAL)]}, fmt="prometheus")
    await runner.start()
    await until(lambda: len(twilio.requests) == INFO + CRITICAL, timeout=60)
    order = [r.form["Body"].startswith("[Critical]") for r in twilio.requests]
    assert sum(order) == CRITICAL
    # The Critical pages go out with the first sends (Info ones in flight beside them may land in between);
    # first come first served, they would be the last eight.
    critical = [i for i, c in enumerate(order) if c]
    assert critical[-1] < runner.batch, critical
