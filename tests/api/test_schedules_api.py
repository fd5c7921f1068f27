"""Schedules through the Open API, and an escalation level that pages whoever is on call."""

import asyncio

from icalendar import Calendar


def definition(ann, bob):
    return {"time_zone": "Europe/Berlin", "layers": [{
        "name": "primary", "start": "2026-01-05T09:00:00+01:00",
        "members": [[{"member_id": ann}], [{"member_id": bob}]],
        "rotation": {"unit": "weeks", "value": 1, "handoff_time": "09:00", "handoff_weekday": 0}}]}


async def test_schedule_crud_oncall_preview_and_feeds(app):
    ann = (await app.post("/members", {"name": "ann"}))["member_id"]
    bob = (await app.post("/members", {"name": "bob"}))["member_id"]
    s = await app.post("/schedules", {"name": "db", "definition": definition(ann, bob)})
    sid = s["schedule_id"]
    who = await app.get(f"/schedules/{sid}/oncall?at=2026-01-06T12:00:00Z")
    assert who["participants"] == [{"member_id": ann}]
    who = await app.get(f"/schedules/{sid}/oncall?at=2026-01-13T12:00:00%2B00:00")
    assert who["participants"] == [{"member_id": bob}]
    shifts = (await app.get(f"/schedules/{sid}/preview?start=2026-01-05T08:00:00Z&end=2026-01-26T08:00:00Z"))["shifts"]
    assert [sh["participants"] for sh in shifts] == [[{"member_id": ann}], [{"member_id": bob}], [{"member_id": ann}]]
    body = await app.call("GET", f"/schedules/{sid}/preview?start=2026-01-01T00:00:00Z&end=2026-06-01T00:00:00Z",
                          expect=400)
    assert "45 days" in body["error"]["message"]
    feed = await app.client.get(f"/api/v1/schedules/{sid}/ical", headers=app.headers())
    assert feed.content_type == "text/calendar"
    events = [e for e in Calendar.from_ical(await feed.read()).walk("VEVENT")]
    assert events and all(str(e["SUMMARY"]).endswith(("ann", "bob")) for e in events)
    mine = await app.client.get(f"/api/v1/members/{ann}/ical", headers=app.headers())
    assert all("ann" in str(e["SUMMARY"]) for e in Calendar.from_ical(await mine.read()).walk("VEVENT"))


async def test_bad_schedules_are_refused(app):
    body = await app.call("POST", "/schedules", {"name": "x", "definition": {"layers": [{
        "start": "2026-01-05T09:00:00Z", "members": [[{"member_id": 1}]], "rotation": {"unit": "days", "value": 0}}]}},
        expect=400)
    assert "rotation" in body["error"]["message"]
    body = await app.call("POST", "/schedules", {"name": "x", "definition": {"layers": [{
        "start": "2026-01-05T09:00:00Z", "members": [[{"member_id": 999}]], "rotation": {"unit": "days", "value": 1}}]}},
        expect=404)
    assert "999" in body["error"]["message"]


async def test_level_pages_whoever_is_on_call_now(app):
    ann = (await app.post("/members", {"name": "ann", "email": "a@x.io"}))["member_id"]
    bob = (await app.post("/members", {"name": "bob", "email": "b@x.io"}))["member_id"]
    s = await app.post("/schedules", {"name": "now", "definition": {"layers": [{
        "start": "2020-01-01T00:00:00Z", "members": [[{"member_id": bob}]],
        "rotation": {"unit": "days", "value": 1}}]}})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"schedule_ids": [s["schedule_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "x", "alert_key": "x"})
    [inc] = (await app.get("/incidents"))["items"]
    for _ in range(100):
        deliveries = (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"]
        if deliveries:
            break
        await asyncio.sleep(0.05)
    assert {d["person_id"] for d in deliveries} == {bob} and ann != bob
