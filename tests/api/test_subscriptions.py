"""Subscription rules end to end through a running Vigil (issue 13 item 9): a subscribed member is e-mailed
(real SMTP, aiosmtpd) about matching incidents while the escalation target is paged as before; a
non-matching incident tells nobody; an observer subscribes themself but nobody else; a removed member's
subscriptions end, and so do a team's for a member who left it."""

from __future__ import annotations

import asyncio

import pytest

from tests.kit import Api, until

ADMIN = "test-admin-token-0123456789abcdef"
PAYMENTS = [[{"field": "severity", "op": "equals", "values": ["Critical"]},
             {"field": "labels.service", "op": "equals", "values": ["payments"]}]]


@pytest.fixture
def app(emailing_app):
    return emailing_app


async def _member(app: Api, name: str, role: str = "responder") -> tuple[int, str]:
    return await app.member_with_token(name, role=role, preferences={"Critical": ["email"], "Warning": ["email"]})


def _to(box, name: str) -> list:
    return [m for m in box.messages if f"{name}@example.com" in str(m["To"])]


async def test_a_subscriber_is_told_and_the_escalation_target_paged_as_before(app, inbox):
    box, _ = inbox
    ann, _ = await _member(app, "ann")
    sue, sue_token = await _member(app, "sue", role="observer")
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "repeat": 2, "repeat_interval_minutes": 30,
                                                         "levels": [{"targets": {"member_ids": [ann]}}]})
    rule = await app.post("/subscription-rules", {"name": "payments critical", "member_id": sue, "filters": PAYMENTS,
                                                  "events": ["i_new", "i_ack"], "media": ["email"]}, token=sue_token)
    assert rule["created_by"] == sue and rule["channel_ids"] == [] and rule["status"] == "enabled"

    await app.push(key, {"event_status": "Critical", "title_rule": "card payments fail", "alert_key": "p",
                         "labels": {"service": "payments"}})
    await until(lambda: _to(box, "ann") and _to(box, "sue"))
    [page], [notice] = _to(box, "ann"), _to(box, "sue")
    assert "[Subscription]" not in page["Subject"] and "card payments fail" in page["Subject"]
    assert notice["Subject"].startswith("[Subscription]") and "card payments fail" in notice["Subject"]
    assert "you are not paged for it" in notice.get_body(("plain",)).get_content()

    [inc] = (await app.get("/incidents"))["items"]
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    assert [r["person_id"] for r in detail["responders"]] == [ann], "a subscriber is not a responder"
    [told] = [t["detail"] for t in detail["timeline"] if t["kind"] == "subscription_notify"]
    assert (told["event"], [p["person_id"] for p in told["persons"]]) == ("i_new", [sue])
    [notify] = [t["detail"] for t in detail["timeline"] if t["kind"] == "i_notify"]
    assert [p["person_id"] for p in notify["persons"]] == [ann]

    # an incident the rule does not match tells nobody; its target is still paged
    await app.push(key, {"event_status": "Critical", "title_rule": "search slow", "alert_key": "s",
                         "labels": {"service": "search"}})
    await until(lambda: len(_to(box, "ann")) == 2)
    await app.settle()
    assert len(_to(box, "sue")) == 1

    # the ack stops escalation but is itself a notice; a second ack after an unack tells nobody again
    iid = inc["incident_id"]
    await app.post(f"/incidents/{iid}/ack", {"member_id": ann})
    await until(lambda: len(_to(box, "sue")) == 2)
    await app.post(f"/incidents/{iid}/unack", {"member_id": ann})
    await app.post(f"/incidents/{iid}/ack", {"member_id": ann})
    await app.settle()
    await asyncio.sleep(0.3)
    await app.settle()
    assert len(_to(box, "sue")) == 2
    deliveries = (await app.get(f"/incidents/{iid}/deliveries"))["items"]
    sue_notices = [(d["event_type"], d["state"]) for d in deliveries if d["person_id"] == sue]
    assert sue_notices == [("sub_i_new", "sent"), ("sub_i_ack", "sent")]
    assert "escalation_stopped" in [t["kind"] for t in (await app.get(f"/incidents/{iid}"))["timeline"]]


async def test_an_observer_subscribes_themself_and_nobody_else(app):
    sue, sue_token = await _member(app, "sue", role="observer")
    bob, _ = await _member(app, "bob")
    team = await app.post("/teams", {"name": "dba", "member_ids": [bob]})

    async def refused(method, path, body, status):
        return (await app.call(method, path, body, expect=status, token=sue_token))["error"]["message"]

    assert "may subscribe only themself" in await refused(
        "POST", "/subscription-rules", {"name": "x", "member_id": bob}, 403)
    assert "only an admin subscribes a team" in await refused(
        "POST", "/subscription-rules", {"name": "x", "team_id": team["team_id"]}, 403)
    bad = await refused("POST", "/subscription-rules", {"name": "x", "member_id": sue, "filters": [[
        {"field": "sevrity", "op": "equals", "values": ["Critical"]}]]}, 400)
    assert "filters[0][0].field" in bad
    assert "channel_ids: no channel with id 999" in await refused(
        "POST", "/subscription-rules", {"name": "x", "member_id": sue, "channel_ids": [999]}, 404)

    bobs = await app.post("/subscription-rules", {"name": "bob's", "member_id": bob})  # an admin may
    mine = await app.post("/subscription-rules", {"name": "mine", "member_id": sue}, token=sue_token)
    assert "is not yours" in await refused("DELETE", f"/subscription-rules/{bobs['rule_id']}", None, 403)
    assert "may subscribe only themself" in await refused(
        "PATCH", f"/subscription-rules/{mine['rule_id']}", {"member_id": bob}, 403)
    changed = await app.patch(f"/subscription-rules/{mine['rule_id']}", {"status": "disabled", "events": [
        "i_new", "i_rslv"]}, token=sue_token)
    assert (changed["status"], changed["events"], changed["member_id"]) == ("disabled", ["i_new", "i_rslv"], sue)
    listed = await app.get(f"/subscription-rules?member_id={sue}", token=sue_token)
    assert [r["rule_id"] for r in listed["items"]] == [mine["rule_id"]]
    await app.delete(f"/subscription-rules/{mine['rule_id']}", token=sue_token)
    assert (await app.get("/subscription-rules"))["total"] == 1


async def test_a_removed_members_subscriptions_end(app, inbox):
    box, _ = inbox
    bob, _ = await _member(app, "bob")
    carl, _ = await _member(app, "carl")
    dora = (await app.post("/members", {"name": "dora", "email": "dora@example.com"}))["member_id"]
    team = await app.post("/teams", {"name": "payments", "member_ids": [bob, carl]})
    cid, key = await app.channel_with_integration()
    await app.post("/subscription-rules", {"name": "team", "team_id": team["team_id"], "channel_ids": [cid]})
    own = await app.post("/subscription-rules", {"name": "dora's", "member_id": dora})

    await app.delete(f"/members/{dora}")  # her rules go with her
    assert (await app.call("GET", f"/subscription-rules/{own['rule_id']}", expect=404))["error"]["message"] == \
        f"subscription rule {own['rule_id']} not found"
    await app.patch(f"/teams/{team['team_id']}", {"member_ids": [bob]})  # carl leaves the team

    await app.push(key, {"event_status": "Warning", "title_rule": "queue backlog", "alert_key": "q"})
    await until(lambda: _to(box, "bob"))
    await app.settle()
    assert not _to(box, "carl") and not _to(box, "dora")
    assert [r["name"] for r in (await app.get("/subscription-rules"))["items"]] == ["team"]
