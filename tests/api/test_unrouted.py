"""Events no channel takes are refused where the pusher sees it, counted, and kept for the admin (issue 13, item 1),
over HTTP on SQLite and PostgreSQL."""

import re

from core.unrouted import KEEP


def event(key="disk-db-1", title="disk full on db-1", status="Critical", **extra):
    return {"event_status": status, "title_rule": title, "alert_key": key, **extra}


def alertmanager(*alerts):
    return {"version": "4", "status": "firing", "receiver": "vigil", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am", "alerts": [
                {"status": "firing", "labels": {"alertname": name, "severity": "critical", **labels},
                 "annotations": {"summary": name}, "startsAt": "2026-01-01T00:00:00Z",
                 "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"{i:016x}"}
                for i, (name, labels) in enumerate(alerts)]}


async def shared(app, fmt="standard", default=None):
    db = await app.post("/channels", {"name": "db"})
    integ = await app.post("/integrations", {"type": fmt, "name": "shared", "routing": {
        "cases": [{"if": [[{"field": "labels.service", "op": "equals", "values": ["db"]}]],
                   "channel_id": db["channel_id"]}],
        "default_channel_id": default}})
    return db["channel_id"], integ


async def unrouted_count(app, reason):
    text = await (await app.client.get("/metrics")).text()
    found = re.search(rf'^vigil_events_unrouted_total{{reason="{reason}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_no_matching_route_is_refused_counted_and_listed(app):
    _, integ = await shared(app)
    before = await unrouted_count(app, "no_route")
    body = await app.push(integ["integration_key"], event(labels={"service": "web", "host": "web-1"}), expect=400)
    assert body["error"]["code"] == "ResourceNotFound"
    message = body["error"]["message"]
    assert "1 of 1 events went to no channel" in message and "no routing case" in message
    assert f"/api/v1/integrations/{integ['integration_id']}/unrouted-events" in message
    assert (await app.get("/incidents"))["items"] == []
    assert await unrouted_count(app, "no_route") == before + 1

    listed = await app.get(f"/integrations/{integ['integration_id']}/unrouted-events")
    assert listed["total"] == 1
    [item] = listed["items"]
    assert item["received_at"] > 0
    assert {k: item[k] for k in ("alert_key", "event_status", "title", "labels", "channel_id")} == {
        "alert_key": "disk-db-1", "event_status": "Critical", "title": "disk full on db-1",
        "labels": {"service": "web", "host": "web-1"}, "channel_id": None}
    assert "no routing case" in item["reason"]


async def test_routed_events_of_a_refused_request_are_kept(app):
    """An Alertmanager group with one routed and one unrouted alert: the pusher hears 400 and will not retry,
    so the routed alert must already be stored, and the other recorded."""
    db, integ = await shared(app, fmt="prometheus")
    body = await app.push(integ["integration_key"], alertmanager(("DiskFull", {"service": "db"}),
                                                                 ("SlowPage", {"service": "web"})),
                          fmt="prometheus", expect=400)
    assert "1 of 2 events went to no channel" in body["error"]["message"]
    assert "the other 1 were accepted" in body["error"]["message"]
    [inc] = (await app.get("/incidents"))["items"]
    assert inc["channel_id"] == db and inc["title"] == "DiskFull"
    [item] = (await app.get(f"/integrations/{integ['integration_id']}/unrouted-events"))["items"]
    assert item["title"] == "SlowPage" and item["labels"]["service"] == "web"


async def test_disabled_and_deleted_channels_refuse_too(app):
    cid, key = await app.channel_with_integration("ops")
    integ = (await app.get(f"/channels/{cid}/integrations"))["items"][0]
    await app.patch(f"/channels/{cid}", {"status": "disabled"})
    body = await app.push(key, event(), expect=400)
    assert f"channel {cid}, which is disabled" in body["error"]["message"]

    gone = await app.post("/channels", {"name": "gone"})
    _, shared_integ = await shared(app, default=gone["channel_id"])
    await app.delete(f"/channels/{gone['channel_id']}")
    body = await app.push(shared_integ["integration_key"], event(labels={"service": "web"}), expect=400)
    assert f"channel {gone['channel_id']}, which does not exist" in body["error"]["message"]
    [item] = (await app.get(f"/integrations/{shared_integ['integration_id']}/unrouted-events"))["items"]
    assert item["channel_id"] == gone["channel_id"] and "does not exist" in item["reason"]
    [item] = (await app.get(f"/integrations/{integ['integration_id']}/unrouted-events"))["items"]
    assert item["channel_id"] == cid and "disabled" in item["reason"]


async def test_the_record_keeps_only_the_latest_per_integration(app):
    _, integ = await shared(app, fmt="prometheus")
    _, other = await shared_named(app)
    key, path = integ["integration_key"], f"/integrations/{integ['integration_id']}/unrouted-events"
    await app.push(other["integration_key"], event(labels={"service": "web"}), expect=400)
    await app.push(key, alertmanager(*[(f"old-{i}", {}) for i in range(KEEP + 5)]), fmt="prometheus", expect=400)
    await app.push(key, alertmanager(*[(f"new-{i}", {}) for i in range(3)]), fmt="prometheus", expect=400)
    first = await app.get(f"{path}?limit=100")
    assert first["total"] == KEEP
    titles = [i["title"] for i in first["items"]]
    assert titles[:3] == ["new-2", "new-1", "new-0"]  # newest first
    assert titles[-1] == "old-8"  # old-0..old-7 pruned: 105 + 3 arrived, the latest 100 are kept
    # another integration's record is its own
    assert (await app.get(f"/integrations/{other['integration_id']}/unrouted-events"))["total"] == 1
    # and goes with its integration (the foreign key cascades: the delete is not refused)
    await app.delete(f"/integrations/{other['integration_id']}")
    await app.call("GET", f"/integrations/{other['integration_id']}/unrouted-events", expect=404)


async def shared_named(app):
    ch = await app.post("/channels", {"name": "db2"})
    integ = await app.post("/integrations", {"type": "standard", "name": "shared2", "routing": {"cases": [
        {"if": [[{"field": "labels.service", "op": "equals", "values": ["db"]}]], "channel_id": ch["channel_id"]}]}})
    return ch["channel_id"], integ
