"""Drop, silence, inhibit, flapping and storm through the Event API and Open API."""

from datetime import datetime, timedelta

SVC = lambda v: [[{"field": "labels.service", "op": "equals", "values": [v]}]]  # noqa: E731


def event(key, service="db", status="Critical", **labels):
    return {"event_status": status, "title_rule": f"{service} {key}", "alert_key": key,
            "labels": {"service": service, **labels}}


async def incidents(app):
    return (await app.get("/incidents?limit=100"))["items"]


async def test_drop_rule_discards_before_alerts(app):
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/drop-rules", {"name": "no tests", "filters": SVC("test")})
    await app.push(key, event("a", service="test"))
    await app.push(key, event("b", service="db"))
    assert [i["labels"]["service"] for i in await incidents(app)] == ["db"]
    text = await (await app.client.get("/metrics")).text()
    assert 'vigil_events_received_total{format="standard",outcome="dropped"}' in text


async def test_silence_stores_and_marks_but_does_not_open_incidents(app):
    cid, key = await app.channel_with_integration()
    rule = await app.post(f"/channels/{cid}/silence-rules", {
        "name": "maintenance", "filters": SVC("db"),
        "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"})
    await app.push(key, event("a"))
    assert await incidents(app) == []
    await app.patch(f"/silence-rules/{rule['rule_id']}", {"status": "disabled"})
    await app.push(key, event("b"))
    assert len(await incidents(app)) == 1


async def test_quick_silence_from_an_incident(app):
    cid, key = await app.channel_with_integration()
    await app.push(key, event("a", host="h1"))
    [inc] = await incidents(app)
    created = await app.post(f"/incidents/{inc['incident_id']}/silence", {"minutes": 60})
    rule = await app.get(f"/silence-rules/{created['rule_id']}")
    assert rule["filters"] == [[{"field": "labels.host", "op": "equals", "values": ["h1"]},
                                {"field": "labels.service", "op": "equals", "values": ["db"]}]]
    await app.post(f"/incidents/{inc['incident_id']}/close")
    await app.push(key, event("b", host="h1"))
    await app.push(key, event("c", host="h2"))
    assert sorted(i["labels"].get("host") for i in await incidents(app)) == ["h1", "h2"]  # b silenced


async def test_inhibit_suppresses_targets_while_source_is_active(app):
    cid, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.service"]]})
    await app.post(f"/channels/{cid}/inhibit-rules", {
        "name": "db down mutes api", "source_filters": SVC("db"), "target_filters": SVC("api"),
        "equals": ["labels.cluster"]})
    await app.push(key, event("db1", service="db", cluster="a"))
    await app.push(key, event("api1", service="api", cluster="a"))  # inhibited
    await app.push(key, event("api2", service="api", cluster="b"))  # other cluster: pages
    services = sorted((i["labels"]["service"], i["labels"]["cluster"]) for i in await incidents(app))
    assert services == [("api", "b"), ("db", "a")]
    [db] = [i for i in await incidents(app) if i["labels"]["service"] == "db"]
    await app.post(f"/incidents/{db['incident_id']}/ack")  # an acknowledged source no longer inhibits
    await app.push(key, event("api3", service="api", cluster="a"))
    [api] = [i for i in await incidents(app) if i["labels"]["service"] == "api"]
    assert api["alert_cnt"] == 2  # api3 paged (joined the api incident); api1 stayed inhibited


async def test_flapping_mutes_paging_and_is_recorded(app):
    cid, key = await app.channel_with_integration(
        flapping={"enabled": True, "max_changes": 4, "in_mins": 60, "mute_mins": 120})
    for _ in range(3):
        await app.push(key, event("f"))
        await app.push(key, event("f", status="Ok"))
    items = await incidents(app)
    assert len(items) == 2  # the third firing is muted
    detail = await app.get(f"/incidents/{max(i['incident_id'] for i in items)}")
    assert any(t["kind"] == "i_m_flapping" for t in detail["timeline"])


async def test_storm_thresholds_emit_i_storm(app):
    cid, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.service"]]},
                                                  storm_thresholds=[3, 5])
    for i in range(6):
        await app.push(key, event(f"k{i}"))
    [inc] = await incidents(app)
    storms = [t["detail"] for t in (await app.get(f"/incidents/{inc['incident_id']}"))["timeline"]
              if t["kind"] == "i_storm"]
    assert storms == [{"threshold": 3, "alert_cnt": 3}, {"threshold": 5, "alert_cnt": 5}]


async def test_bad_rules_get_400_naming_the_problem(app):
    cid, _ = await app.channel_with_integration()
    body = await app.call("POST", f"/channels/{cid}/drop-rules",
                          {"name": "x", "filters": [[{"field": "title", "op": "regex", "values": ["(x"]}]]},
                          expect=400)
    assert "regex" in body["error"]["message"] and "filters[0][0].values[0]" in body["error"]["message"]


async def test_a_rule_written_by_another_process_applies_to_the_next_event(app, settings):
    """Ingest caches a channel's rules under its rules_token; a write from anywhere changes the token."""
    from datetime import UTC, datetime

    from core.db import make_engine, make_sessionmaker
    from core.models import SilenceRule

    cid, key = await app.channel_with_integration()
    await app.push(key, event("a"))  # the channel's (empty) rules are now cached
    other = make_engine(settings.database_url)  # another process: its own engine, no shared state
    try:
        async with make_sessionmaker(other)() as s:
            rule = SilenceRule(channel_id=cid, name="from elsewhere", filters=SVC("db"),
                               starts_at=datetime(2020, 1, 1, tzinfo=UTC), ends_at=datetime(2099, 1, 1, tzinfo=UTC))
            s.add(rule)
            await s.commit()
        await app.push(key, event("b"))
        assert len(await incidents(app)) == 1  # b silenced
        async with make_sessionmaker(other)() as s:
            await s.delete(await s.get(SilenceRule, rule.id))
            await s.commit()
        await app.push(key, event("c"))
        assert len(await incidents(app)) == 2  # c pages again
    finally:
        await other.dispose()


async def test_silence_similar_keeps_to_the_team_scope_and_says_who(app):
    ops = await app.post("/teams", {"name": "ops"})
    cid, key = await app.channel_with_integration("scoped", team_ids=[ops["team_id"]], team_scoped=True)
    await app.push(key, {"event_status": "Critical", "title_rule": "disk full", "alert_key": "d1",
                         "labels": {"host": "db-1"}})
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]
    outsider = await app.post("/members", {"name": "Out", "role": "responder"})
    token = (await app.post("/tokens", {"name": "out", "member_id": outsider["member_id"]}))["token"]
    refused = await app.call("POST", f"/incidents/{iid}/silence", {"minutes": 30}, token=token, expect=403)
    assert "team" in refused["error"]["message"]
    memberless = (await app.post("/tokens", {"name": "script", "role": "responder"}))["token"]
    await app.call("POST", f"/incidents/{iid}/silence", {"minutes": 30}, token=memberless, expect=403)
    assert (await app.get(f"/channels/{cid}/silence-rules"))["total"] == 0
    created = await app.post(f"/incidents/{iid}/silence", {"minutes": 30})  # the admin token
    [entry] = [t for t in (await app.get(f"/incidents/{iid}"))["timeline"] if t["kind"] == "silence_similar"]
    assert entry["source"] == "api" and entry["detail"]["rule_id"] == created["rule_id"]


async def test_silence_similar_from_a_card_click_goes_through_the_click_path(app):
    from bot.adapters.base import ActionEvent
    from bot.chat import clicks
    from bot.keys import SESSIONS
    from core.clock import utcnow
    from core.types import Platform

    cid, key = await app.channel_with_integration()
    await app.push(key, event("a", host="h1"))
    [inc] = await incidents(app)
    ann = await app.post("/members", {"name": "Ann"})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": "U0SILENCE1"})
    outcome = await clicks.apply(ActionEvent(Platform.SLACK, "U0SILENCE1", f"sil:{inc['incident_id']}"),
                                 app.app[SESSIONS], "http://vigil.test", utcnow())
    assert outcome.ok, outcome
    [rule] = (await app.get(f"/channels/{cid}/silence-rules"))["items"]
    span = datetime.fromisoformat(rule["ends_at"]) - datetime.fromisoformat(rule["starts_at"])
    assert span == timedelta(days=1)  # the card has no place to ask how long
    [entry] = [t for t in (await app.get(f"/incidents/{inc['incident_id']}"))["timeline"]
               if t["kind"] == "silence_similar"]
    assert (entry["source"], entry["actor_id"], entry["detail"]["rule_id"]) == ("slack", ann["member_id"],
                                                                                 rule["rule_id"])
