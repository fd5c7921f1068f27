"""On-call roles, schedule enable/disable and batch get through a running Vigil (issue 13 item 10): a level
targeting a schedule's secondary role e-mails only the secondary (real SMTP, aiosmtpd), a disabled schedule
pages nobody and says so on the timeline, and several schedules come back in one call."""

from __future__ import annotations

import pytest

from tests.kit import Api, until

ADMIN = "test-admin-token-0123456789abcdef"
START = "2020-01-06T00:00:00Z"


@pytest.fixture
def app(emailing_app):
    return emailing_app


async def _member(app: Api, name: str) -> int:
    return (await app.post("/members", {"name": name, "email": f"{name}@example.com",
                                        "preferences": {"Critical": ["email"]}}))["member_id"]


def _layer(member: int, role: int | None) -> dict:
    return {"start": START, "members": [{"member_id": member}], "rotation": {"unit": "days", "value": 1},
            "role_id": role}


async def _roles_schedule(app: Api, name: str = "db") -> tuple[int, int, int, int, int]:
    primary = (await app.post("/oncall-roles", {"name": "primary"}))["role_id"]
    secondary = (await app.post("/oncall-roles", {"name": "secondary", "description": "backs up"}))["role_id"]
    ann, bob = await _member(app, "ann"), await _member(app, "bob")
    s = await app.post("/schedules", {"name": name, "definition": {
        "layers": [_layer(ann, primary), _layer(bob, secondary)]}})
    return s["schedule_id"], primary, secondary, ann, bob


def _to(box, name: str) -> list:
    return [m for m in box.messages if f"{name}@example.com" in str(m["To"])]


async def test_a_level_targeting_the_secondary_role_pages_only_the_secondary(app, inbox):
    box, _ = inbox
    sid, primary, secondary, ann, bob = await _roles_schedule(app)
    who = await app.get(f"/schedules/{sid}/oncall")
    assert who["participants"] == [{"member_id": ann}, {"member_id": bob}]
    assert [(r["role_id"], r["participants"]) for r in who["roles"]] == [
        (primary, [{"member_id": ann}]), (secondary, [{"member_id": bob}])]
    assert (await app.get(f"/schedules/{sid}/oncall?role_id={secondary}"))["participants"] == [{"member_id": bob}]

    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"schedule_roles": [{"schedule_id": sid, "role_id": secondary}]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "replica lag", "alert_key": "lag"})
    await until(lambda: _to(box, "bob"))
    await app.settle()
    assert "replica lag" in _to(box, "bob")[0]["Subject"] and not _to(box, "ann")
    [inc] = (await app.get("/incidents"))["items"]
    deliveries = (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"]
    assert {(d["person_id"], d["state"]) for d in deliveries} == {(bob, "sent")}


async def test_roles_are_checked_and_a_role_in_use_stays(app):
    sid, primary, secondary, ann, _ = await _roles_schedule(app)
    body = await app.call("POST", "/oncall-roles", {"name": "primary"}, expect=409)
    assert "primary" in body["error"]["message"]
    renamed = await app.patch(f"/oncall-roles/{primary}", {"name": "first"})
    assert renamed["name"] == "first" and (await app.get(f"/oncall-roles/{primary}"))["name"] == "first"
    assert [r["name"] for r in (await app.get("/oncall-roles"))["items"]] == ["first", "secondary"]

    body = await app.call("POST", "/schedules", {"name": "x", "definition": {"layers": [_layer(ann, 999)]}},
                          expect=404)
    assert "definition.layers[0].role_id: no oncallrole with id 999" in body["error"]["message"]
    cid, _ = await app.channel_with_integration()
    body = await app.call("POST", f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"schedule_roles": [{"schedule_id": sid, "role_id": 999}]}}]}, expect=404)
    assert "levels[0].targets.schedule_roles[0].role_id" in body["error"]["message"]
    body = await app.call("POST", f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"schedule_roles": [{"schedule_id": 0, "role_id": secondary}]}}]}, expect=400)
    assert "schedule_id" in body["error"]["message"]
    rule = await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"schedule_roles": [{"schedule_id": sid, "role_id": secondary}]}}]})

    body = await app.call("DELETE", f"/oncall-roles/{secondary}", expect=409)
    assert f"schedule {sid}" in body["error"]["message"] and f"escalation rule {rule['rule_id']}" in \
        body["error"]["message"]
    unused = (await app.post("/oncall-roles", {"name": "shadow"}))["role_id"]
    await app.delete(f"/oncall-roles/{unused}")
    await app.call("GET", f"/oncall-roles/{unused}", expect=404)
    observer = (await app.post("/members", {"name": "olga", "role": "observer"}))["member_id"]
    token = (await app.post("/tokens", {"name": "olga", "member_id": observer}))["token"]
    await app.call("POST", "/oncall-roles", {"name": "third"}, expect=403, token=token)


async def test_a_disabled_schedule_pages_nobody_and_says_so(app, inbox):
    box, _ = inbox
    sid, _primary, _secondary, ann, bob = await _roles_schedule(app)
    off = await app.post(f"/schedules/{sid}/disable")
    assert off["status"] == "disabled"
    assert (await app.get(f"/schedules/{sid}"))["status"] == "disabled"
    assert (await app.get(f"/schedules/{sid}/oncall"))["participants"] == []
    carl = await _member(app, "carl")
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"schedule_ids": [sid]}, "wait_minutes": 30}, {"targets": {"member_ids": [carl]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "disk full", "alert_key": "disk"})
    # nobody at the first level: escalation moves on at once, as for any empty level
    await until(lambda: _to(box, "carl"))
    assert not _to(box, "ann") and not _to(box, "bob")
    [inc] = (await app.get("/incidents"))["items"]
    timeline = (await app.get(f"/incidents/{inc['incident_id']}"))["timeline"]
    [disabled] = [t["detail"] for t in timeline if t["kind"] == "schedule_disabled"]
    assert disabled["schedule_ids"] == [sid] and disabled["layer_idx"] == 0
    assert [t["detail"]["layer_idx"] for t in timeline if t["kind"] == "escalation_empty"] == [0]

    on = await app.post(f"/schedules/{sid}/enable")
    assert on["status"] == "enabled"
    assert (await app.get(f"/schedules/{sid}/oncall"))["participants"] == [{"member_id": ann}, {"member_id": bob}]


async def test_several_schedules_by_id_in_one_call(app):
    ids = []
    for name in ("a", "b", "c"):
        ids.append((await app.post("/schedules", {"name": name, "definition": {"layers": []}}))["schedule_id"])
    await app.post(f"/schedules/{ids[1]}/disable")
    got = await app.get(f"/schedules?ids={ids[2]},{ids[0]},999")
    assert [s["schedule_id"] for s in got["items"]] == [ids[0], ids[2]] and got["total"] == 2
    assert [s["name"] for s in (await app.get("/schedules?status=disabled"))["items"]] == ["b"]
    for bad in ("1,x", "0", ",", str(2**53), ",".join(["1"] * 101)):
        body = await app.call("GET", f"/schedules?ids={bad}", expect=400)
        assert "ids" in body["error"]["message"]
