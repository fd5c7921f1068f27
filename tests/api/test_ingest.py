"""Alerts in, incidents out, through the HTTP endpoints, on SQLite and PostgreSQL."""

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures"


def event(key="disk-db-1", status="Critical", title="disk full on db-1", **extra):
    return {"event_status": status, "title_rule": title, "alert_key": key, **extra}


async def incidents(api, **query):
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return (await api.get(f"/incidents?limit=100&{q}"))["items"]


async def test_standard_event_opens_incident(app):
    cid, key = await app.channel_with_integration()
    body = await app.push(key, event(labels={"service": "db", "host": "db-1"}, description="97% used"))
    assert body["data"] == {"alert_key": "disk-db-1"}
    assert len(body["request_id"]) >= 16
    [inc] = await incidents(app)
    assert inc["title"] == "disk full on db-1"
    assert inc["incident_severity"] == "Critical"
    assert inc["progress"] == "Triggered"
    assert inc["channel_id"] == cid
    assert inc["labels"] == {"service": "db", "host": "db-1"}
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    assert [a["alert_key"] for a in detail["alerts"]] == ["disk-db-1"]
    assert [t["kind"] for t in detail["timeline"]][0] == "i_new"
    integ = (await app.get(f"/channels/{cid}/integrations"))["items"][0]
    assert integ["last_event_at"] > 0


async def test_same_alert_key_dedups_into_one_alert(app):
    _, key = await app.channel_with_integration()
    for status in ("Warning", "Critical", "Warning"):
        await app.push(key, event(status=status))
    [inc] = await incidents(app)
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    [alert] = detail["alerts"]
    assert alert["event_cnt"] == 3
    assert alert["alert_status"] == "Warning"  # latest status
    assert alert["alert_severity"] == "Critical"  # max over its events
    assert detail["incident_severity"] == "Critical"
    assert detail["alert_event_cnt"] == 3


async def test_hundred_similar_alerts_become_one_incident(app):
    from webhooks.routes import LIMITER

    app.app[LIMITER].per_second = 10_000  # this test is about grouping; 101 quick pushes trip 100/s
    _, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.service"]]})
    for i in range(100):
        await app.push(key, event(key=f"cpu-{i}", title=f"cpu high on web-{i}", labels={"service": "web"}))
    await app.push(key, event(key="db-1", labels={"service": "db"}))
    items = await incidents(app)
    assert sorted(i["alert_cnt"] for i in items) == [1, 100]
    web = next(i for i in items if i["alert_cnt"] == 100)
    assert web["title"] == "cpu high on web-0"  # the first alert names the incident
    assert web["group_method"] == "p"


async def test_recovery_closes_incident_when_all_alerts_recover(app):
    _, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.service"]]})
    await app.push(key, event(key="a", labels={"service": "web"}))
    await app.push(key, event(key="b", labels={"service": "web"}))
    await app.push(key, event(key="a", status="Ok"))
    [inc] = await incidents(app)
    assert inc["progress"] == "Triggered" and inc["active_alert_cnt"] == 1
    await app.push(key, event(key="b", status="Ok"))
    [inc] = await incidents(app)
    assert inc["progress"] == "Closed"
    assert inc["incident_status"] == "Ok"
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    assert {a["alert_status"] for a in detail["alerts"]} == {"Ok"}
    [closed] = [t for t in detail["timeline"] if t["kind"] == "i_rslv"]
    assert closed["detail"]["reason"] == "all alerts recovered" and closed["source"] == "system"


async def test_recovery_without_auto_close_keeps_incident_open(app):
    _, key = await app.channel_with_integration(auto_close=False)
    await app.push(key, event())
    await app.push(key, event(status="Ok"))
    [inc] = await incidents(app)
    assert inc["progress"] == "Triggered"
    assert inc["incident_status"] == "Ok"
    assert inc["end_time"] > 0


async def test_alert_after_close_opens_a_new_incident(app):
    _, key = await app.channel_with_integration()
    await app.push(key, event())
    await app.push(key, event(status="Ok"))
    await app.push(key, event())
    items = await incidents(app)
    assert [i["progress"] for i in items] == ["Triggered", "Closed"]


async def test_ok_for_unknown_alert_changes_nothing(app):
    _, key = await app.channel_with_integration()
    body = await app.push(key, event(status="Ok"))
    assert body["data"]["alert_key"] == "disk-db-1"
    assert await incidents(app) == []


async def test_alertmanager_webhook_creates_groups_and_recovers(app):
    _, key = await app.channel_with_integration(fmt="prometheus",
                                                grouping={"method": "p", "equals": [["labels.service"]]})
    firing = json.loads((FIXTURES / "alertmanager" / "firing.json").read_text())
    resolved = json.loads((FIXTURES / "alertmanager" / "partly_resolved.json").read_text())
    body = await app.push(key, firing, fmt="prometheus")
    assert body["data"]["alert_keys"] == ["0c23b563fcfce9e2", "0e67cd3fc5e94aa4"]
    [inc] = await incidents(app)
    assert inc["alert_cnt"] == 2 and inc["incident_severity"] == "Critical"
    await app.push(key, resolved, fmt="prometheus")
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    status = {a["alert_key"]: a["alert_status"] for a in detail["alerts"]}
    assert status == {"0c23b563fcfce9e2": "Ok", "0e67cd3fc5e94aa4": "Warning"}
    assert detail["progress"] == "Triggered" and detail["active_alert_cnt"] == 1
    for a in resolved["alerts"]:
        a["status"] = "resolved"
    await app.push(key, resolved, fmt="prometheus")
    assert (await app.get(f"/incidents/{inc['incident_id']}"))["progress"] == "Closed"


async def test_shared_integration_routes_by_conditions(app):
    db = await app.post("/channels", {"name": "db"})
    web = await app.post("/channels", {"name": "web"})
    other = await app.post("/channels", {"name": "other"})
    integ = await app.post("/integrations", {"type": "standard", "name": "shared", "routing": {
        "cases": [
            {"if": [[{"field": "labels.service", "op": "equals", "values": ["db"]}]], "channel_id": db["channel_id"]},
            {"if": [[{"field": "title", "op": "regex", "values": ["^web"]}]], "channel_id": web["channel_id"]},
        ],
        "default_channel_id": other["channel_id"],
    }})
    key = integ["integration_key"]
    assert integ["channel_id"] is None
    assert integ["push_url"].endswith(f"/event/push/alert/standard?integration_key={key}")
    await app.push(key, event(key="1", labels={"service": "db"}))
    await app.push(key, event(key="2", title="web is slow"))
    await app.push(key, event(key="3", title="something else"))
    by_channel = {i["channel_id"]: i["title"] for i in await incidents(app)}
    assert by_channel == {db["channel_id"]: "disk full on db-1", web["channel_id"]: "web is slow",
                          other["channel_id"]: "something else"}


async def test_shared_integration_without_match_refuses_event(app):
    ch = await app.post("/channels", {"name": "db"})
    integ = await app.post("/integrations", {"type": "standard", "name": "shared", "routing": {"cases": [
        {"if": [[{"field": "labels.service", "op": "equals", "values": ["db"]}]], "channel_id": ch["channel_id"]}]}})
    body = await app.push(integ["integration_key"], event(labels={"service": "web"}), expect=400)
    assert body["error"]["code"] == "ResourceNotFound"  # as Flashduty: the push is rejected (tests/api/test_unrouted.py)
    assert await incidents(app) == []


async def snapshot(app):
    items = await incidents(app)
    details = [await app.get(f"/incidents/{i['incident_id']}") for i in items]
    return json.dumps(details, sort_keys=True)


@pytest.mark.parametrize("kwargs, status, code, message", [
    ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "InvalidParameter", "JSON"),
    ({"data": b"a=b", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 400,
     "InvalidContentType", "Content-Type"),
    ({"json": {"event_status": "Critical"}}, 400, "InvalidParameter", "title_rule"),
    ({"json": {"event_status": "critical", "title_rule": "x"}}, 400, "InvalidParameter", "event_status"),
    ({"json": {"event_status": "Critical", "title_rule": "x", "labels": {"bad key": "v"}}}, 400,
     "InvalidParameter", "labels"),
    ({"json": {"event_status": "Critical", "title_rule": "x", "labels": {f"k{i}": "v" for i in range(51)}}},
     400, "InvalidParameter", "labels"),
    ({"json": [1, 2, 3]}, 400, "InvalidParameter", ""),
    ({"json": {"event_status": "Critical", "title_rule": "x", "alert_key": "k" * 256}}, 400,
     "InvalidParameter", "alert_key"),
    ({"data": b"{" + b" " * (2 * 1024 * 1024) + b"}", "headers": {"Content-Type": "application/json"}}, 413,
     "RequestEntityTooLarge", "large"),
])
async def test_bad_input_is_rejected_and_loses_nothing(app, kwargs, status, code, message):
    _, key = await app.channel_with_integration()
    await app.push(key, event())
    await app.settle()
    before = await snapshot(app)
    resp = await app.client.post("/event/push/alert/standard", params={"integration_key": key}, **kwargs)
    body = await resp.json()
    assert resp.status == status, body
    assert body["error"]["code"] == code
    assert message in body["error"]["message"]
    assert "request_id" in body
    await app.settle()
    assert await snapshot(app) == before


@pytest.mark.parametrize("params, message", [
    ({}, "integration_key is required"),
    ({"integration_key": "0" * 32}, "not a valid one"),
])
async def test_unknown_or_missing_key_is_401(app, params, message):
    resp = await app.client.post("/event/push/alert/standard", params=params, json=event())
    body = await resp.json()
    assert resp.status == 401 and body["error"]["code"] == "Unauthorized"
    assert message in body["error"]["message"]


async def test_unknown_route_is_404_envelope(app):
    resp = await app.client.post("/event/push/alert/nope", params={"integration_key": "x"}, json={})
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "RouteNotFound"


async def test_wrong_format_for_integration_is_rejected(app):
    _, key = await app.channel_with_integration(fmt="prometheus")
    body = await app.push(key, event(), expect=400)
    assert "/event/push/alert/prometheus" in body["error"]["message"]


async def test_disabled_integration_stops_accepting(app):
    cid, key = await app.channel_with_integration()
    integ = (await app.get(f"/channels/{cid}/integrations"))["items"][0]
    await app.patch(f"/integrations/{integ['integration_id']}", {"status": "disabled"})
    await app.push(key, event(), expect=401)


async def test_unicode_and_truncation(app):
    _, key = await app.channel_with_integration()
    await app.push(key, event(title="磁盘已满 🔥 " + "x" * 600, labels={"svc": "数据库"},
                              description="d" * 5000))
    [inc] = await incidents(app)
    assert inc["title"].startswith("磁盘已满 🔥") and len(inc["title"]) == 512
    assert inc["labels"] == {"svc": "数据库"}
    assert len(inc["description"]) == 2048


async def test_rate_limit_returns_429(settings, aiohttp_client):
    from bot.server import create_app
    from tests.kit import Api

    app = Api(await aiohttp_client(create_app(settings.model_copy(update={"ingest_rate_per_minute": 3}))),
              "test-admin-token-0123456789abcdef")
    _, key = await app.channel_with_integration()
    statuses = []
    for i in range(5):
        resp = await app.client.post("/event/push/alert/standard", params={"integration_key": key},
                                     json=event(key=str(i)))
        statuses.append(resp.status)
        if resp.status == 429:
            body = await resp.json()
            assert body["error"]["code"] == "RequestTooFrequently"
            assert int(resp.headers["Retry-After"]) >= 1
    assert statuses.count(429) >= 1 and statuses[:3] == [200, 200, 200]
    assert len((await app.get("/incidents"))["items"]) == 3


async def test_metrics_count_events(app):
    _, key = await app.channel_with_integration()
    await app.push(key, event())
    text = await (await app.client.get("/metrics")).text()
    assert 'vigil_events_received_total{format="standard",outcome="new_alert"}' in text
    assert "vigil_ingest_latency_seconds_bucket" in text
    assert "vigil_incidents_opened_total" in text


async def test_nul_characters_become_replacement_characters_in_every_text_field(app):
    """PostgreSQL text cannot hold U+0000: it is stored as U+FFFD, on both databases alike."""
    _, key = await app.channel_with_integration()
    await app.push(key, event(key="k\x00", title="disk\x00 full", description="d\x00",
                              labels={"host": "db\x001"}))
    await app.push(key, event(key="k\x00", title="disk\x00 full", status="Warning"))  # the same alert
    [inc] = await incidents(app)
    assert inc["title"] == "disk\ufffd full" and inc["description"] == "d\ufffd"
    assert inc["labels"] == {"host": "db\ufffd1"}
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    assert [(a["alert_key"], a["event_cnt"]) for a in detail["alerts"]] == [("k\ufffd", 2)]


async def test_nul_characters_in_changes_and_the_open_api_are_stored_as_replacement_characters(app):
    cid, key = await app.channel_with_integration()
    resp = await app.client.post("/event/push/change/standard", params={"integration_key": key},
                                 json={"title": "dep\x00loy", "change_status": "Done", "change_key": "c\x001"})
    assert resp.status == 200 and (await resp.json())["data"]["change_key"] == "c\ufffd1"
    ch = await app.post("/channels", {"name": "a\x00b"})
    assert ch["name"] == "a\ufffdb"
    await app.push(key, event())
    # query overrides too: ?title_rule= renders the title
    resp = await app.client.post("/event/push/alert/standard", json=event(key="q"),
                                 params={"integration_key": key, "title_rule": "over\x00ride"})
    assert resp.status == 200
    titles = sorted(i["title"] for i in await incidents(app))
    assert titles == ["disk full on db-1", "over\ufffdride"]
