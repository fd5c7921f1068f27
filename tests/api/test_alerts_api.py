"""The alerts API over HTTP: list with filters and keyset paging, info, raw events, close one alert, move
alerts between incidents; and the change event list."""

import pytest

from tests.kit import ApiError


def event(key, status="Critical", title=None, **labels):
    return {"event_status": status, "title_rule": title or f"alert {key}", "alert_key": key, "labels": labels}


async def alerts(app, query=""):
    return await app.get(f"/alerts{query}")


def actions(incident):
    """The timeline's alert and lifecycle entries, without what escalation and deliveries add meanwhile."""
    return [t for t in incident["timeline"] if t["kind"].startswith(("a_", "i_"))]


async def test_list_filters_and_pages_by_key(app):
    cid, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.service"]]})
    other, key2 = await app.channel_with_integration("other")
    for i in range(5):
        await app.push(key, event(f"a{i}", "Warning" if i % 2 else "Critical", service="db" if i < 3 else "api"))
    await app.push(key2, event("z", "Info", service="db"))
    await app.push(key, event("a0", "Ok"))  # a0 recovers

    everything = await alerts(app, "?limit=100")
    assert [a["alert_key"] for a in everything["items"]] == ["z", "a4", "a3", "a2", "a1", "a0"]
    assert everything["has_next_page"] is False and everything["search_after_ctx"] == ""
    keys = lambda page: [a["alert_key"] for a in page["items"]]  # noqa: E731
    assert keys(await alerts(app, f"?channel_id={other}")) == ["z"]
    assert keys(await alerts(app, f"?channel_id={cid}&labels=service=db")) == ["a2", "a1", "a0"]
    assert keys(await alerts(app, "?labels=service=db,nope=1")) == []
    assert keys(await alerts(app, "?alert_severity=Warning")) == ["a3", "a1"]
    assert keys(await alerts(app, "?alert_status=Ok")) == ["a0"]
    assert keys(await alerts(app, "?progress=Triggered&alert_severity=Critical")) == ["a4", "a2"]
    assert keys(await alerts(app, "?start_time=4102444800")) == []  # 2100: nothing started yet
    integration = everything["items"][0]["integration_id"]
    assert keys(await alerts(app, f"?integration_id={integration}")) == ["z"]

    seen, ctx = [], ""
    while True:
        page = await alerts(app, f"?limit=2{'&search_after_ctx=' + ctx if ctx else ''}")
        seen += keys(page)
        if not page["has_next_page"]:
            break
        ctx = page["search_after_ctx"]
    assert seen == keys(everything)

    with pytest.raises(ApiError) as exc:
        await alerts(app, "?alert_severity=Huge")
    assert exc.value.status == 400 and "unknown alert_severity 'Huge'" in exc.value.body["error"]["message"]
    with pytest.raises(ApiError) as exc:
        await alerts(app, "?labels=service")
    assert "'service' is not name=value" in exc.value.body["error"]["message"]


async def test_info_and_raw_events(app):
    _, key = await app.channel_with_integration()
    await app.push(key, event("k", "Warning", service="db"))
    await app.push(key, event("k", "Critical", title="worse", service="db", host="h1"))
    [a] = (await alerts(app))["items"]
    info = await app.get(f"/alerts/{a['alert_id']}")
    assert info["alert_severity"] == "Critical" and info["event_cnt"] == 2 and info["title"] == "worse"
    assert info["incident"]["incident_id"] == a["incident_id"] and info["incident"]["progress"] == "Triggered"
    evs = await app.get(f"/alerts/{a['alert_id']}/events")
    assert evs["total"] == 2
    assert [(e["event_status"], e["title"], e["labels"]) for e in evs["items"]] == [
        ("Critical", "worse", {"service": "db", "host": "h1"}), ("Warning", "alert k", {"service": "db"})]
    with pytest.raises(ApiError) as exc:
        await app.get("/alerts/999999")
    assert exc.value.status == 404


async def test_close_one_alert_then_the_last_closes_the_incident(app):
    _, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.service"]]})
    await app.push(key, event("a", service="db"))
    await app.push(key, event("b", service="db"))
    a, b = sorted((await alerts(app))["items"], key=lambda x: x["alert_key"])
    closed = await app.post(f"/alerts/{a['alert_id']}/close")
    assert closed["progress"] == "Closed" and closed["close_time"] > 0
    incident = await app.get(f"/incidents/{a['incident_id']}")
    assert incident["progress"] == "Triggered" and incident["active_alert_cnt"] == 1
    with pytest.raises(ApiError) as exc:
        await app.post(f"/alerts/{a['alert_id']}/close")
    assert exc.value.status == 409 and "already closed" in exc.value.body["error"]["message"]

    await app.post(f"/alerts/{b['alert_id']}/close")
    incident = await app.get(f"/incidents/{a['incident_id']}")
    assert incident["progress"] == "Closed"
    assert [t["kind"] for t in actions(incident)][-3:] == ["a_close", "a_close", "i_rslv"]
    assert actions(incident)[-1]["detail"]["resolution"] == "its last open alert (b) was closed"
    # a closed alert takes no more events: the key's next event opens a new alert
    await app.push(key, event("a", service="db"))
    assert len([x for x in (await alerts(app))["items"] if x["alert_key"] == "a"]) == 2


async def test_move_alerts_into_another_incident(app):
    _, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.service"]]})
    await app.push(key, event("d1", "Warning", service="db"))
    await app.push(key, event("d2", "Warning", service="db"))
    await app.push(key, event("w1", "Critical", service="web"))
    by_key = {a["alert_key"]: a for a in (await alerts(app))["items"]}
    db, web = by_key["d1"]["incident_id"], by_key["w1"]["incident_id"]

    target = await app.post("/alerts/merge", {"alert_ids": [by_key["w1"]["alert_id"]], "incident_id": db,
                                              "comment": "same outage"})
    assert target["alert_cnt"] == 3 and target["active_alert_cnt"] == 3
    assert target["incident_severity"] == "Critical"  # severity follows the alerts that came in
    source = await app.get(f"/incidents/{web}")
    assert source["progress"] == "Closed" and source["merged_into"] == db and source["alert_cnt"] == 0
    assert [t["kind"] for t in actions(source)][-2:] == ["a_merge", "i_merge"]
    assert actions(source)[-1]["detail"]["reason"] == "all its alerts were moved"
    tl = actions(await app.get(f"/incidents/{db}"))
    assert [t["kind"] for t in tl][-2:] == ["a_merge", "i_merge"]  # i_merge: the card shows the new count
    assert tl[-2]["detail"]["alert_ids"] == [by_key["w1"]["alert_id"]] and tl[-2]["detail"]["comment"] == "same outage"
    assert (await app.get(f"/alerts/{by_key['w1']['alert_id']}"))["incident_id"] == db

    # a second incident split off one alert by grouping: moving just d2 out leaves db with two alerts
    await app.push(key, event("x1", "Info", service="cache"))
    cache = next(a for a in (await alerts(app))["items"] if a["alert_key"] == "x1")["incident_id"]
    moved = await app.post("/alerts/merge", {"alert_ids": [by_key["d2"]["alert_id"]], "incident_id": cache})
    assert moved["alert_cnt"] == 2
    left = await app.get(f"/incidents/{db}")
    assert left["progress"] == "Triggered" and left["alert_cnt"] == 2 and left["active_alert_cnt"] == 2

    for body, status, text in [
        ({"alert_ids": [by_key["d2"]["alert_id"]], "incident_id": cache}, 400, "already in incident"),
        ({"alert_ids": [999999], "incident_id": cache}, 404, "alert 999999 not found"),
        ({"alert_ids": [by_key["d2"]["alert_id"]], "incident_id": web}, 409, "merged into another incident"),
    ]:
        with pytest.raises(ApiError) as exc:
            await app.post("/alerts/merge", body)
        assert exc.value.status == status and text in exc.value.body["error"]["message"]


async def test_observers_read_but_cannot_close_or_move(app):
    _, key = await app.channel_with_integration()
    await app.push(key, event("a"))
    [a] = (await alerts(app))["items"]
    observer = await app.post("/members", {"name": "obs", "role": "observer"})
    token = (await app.post("/tokens", {"name": "obs", "role": "observer", "member_id": observer["member_id"]}))["token"]
    assert (await app.get(f"/alerts/{a['alert_id']}", token=token))["alert_id"] == a["alert_id"]
    with pytest.raises(ApiError) as exc:
        await app.post(f"/alerts/{a['alert_id']}/close", token=token)
    assert exc.value.status == 403


async def test_change_events_are_listed(app):
    cid, key = await app.channel_with_integration()
    for status, ckey, at in (("Processing", "deploy-1", 1700000000), ("Done", "deploy-1", 1700000600),
                             ("Planned", "deploy-2", 1700001200)):
        resp = await app.client.post("/event/push/change/standard", params={"integration_key": key}, json={
            "change_status": status, "change_key": ckey, "title": f"{ckey} {status}", "event_time": at,
            "link": "https://ci.example/1", "labels": {"service": "db"}})
        assert resp.status == 200, await resp.text()
    listed = await app.get("/changes")
    assert [(c["change_key"], c["change_status"]) for c in listed["items"]] == [
        ("deploy-2", "Planned"), ("deploy-1", "Done"), ("deploy-1", "Processing")]
    assert listed["items"][0]["labels"] == {"service": "db"} and listed["items"][0]["link"] == "https://ci.example/1"
    assert (await app.get("/changes?change_key=deploy-1&change_status=Done"))["total"] == 1
    assert (await app.get(f"/changes?channel_id={cid}&start_time=1700000600"))["total"] == 2
    assert (await app.get("/changes?end_time=1700000600"))["total"] == 1
    other = (await app.post("/channels", {"name": "other"}))["channel_id"]
    assert (await app.get(f"/changes?channel_id={other}"))["total"] == 0
