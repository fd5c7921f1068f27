"""Storms stay orderly (issue 10 point 5): when many incidents open at once, first pages go out by
severity, then arrival: a Critical incident opened behind a pile of Info ones is paged first."""

from __future__ import annotations

from bot.keys import RUNNER
from tests.kit import until

INFO, CRITICAL = 200, 8


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
