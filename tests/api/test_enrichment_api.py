"""Label enrichment over HTTP: rule sets per channel and integration, mappings with CSV, and what ingest does."""

import pytest

from tests.kit import ApiError

HOST_RULE = {"type": "extract", "source": "title", "pattern": r"on (?P<host>[a-z]+-\d+)"}


def event(key, title, status="Critical", **labels):
    return {"event_status": status, "title_rule": title, "alert_key": key, "labels": labels}


async def incidents(app):
    return (await app.get("/incidents?limit=100"))["items"]


async def mapping(app, rows_csv=None):
    m = await app.post("/enrichment-mappings", {"name": "hosts", "key_label": "host",
                                                "result_labels": ["team", "owner"]})
    if rows_csv is not None:
        resp = await app.client.post(f"/api/v1/enrichment-mappings/{m['mapping_id']}/import", data=rows_csv,
                                     headers={**app.headers(), "Content-Type": "text/csv"})
        assert resp.status == 200, await resp.text()
    return m


async def test_channel_rules_enrich_alerts_before_grouping(app):
    # grouping by labels.team only works if team is there before grouping: both hosts of team web share an incident
    cid, key = await app.channel_with_integration(grouping={"method": "p", "equals": [["labels.team"]]})
    m = await mapping(app, "host,team,owner\nweb-1,web,ann\nweb-2,web,bob\ndb-1,dba,\n")
    rules = [HOST_RULE, {"type": "map", "mapping_id": m["mapping_id"]},
             {"type": "compose", "label": "summary", "template": "{team}/{host}"},
             {"type": "drop", "labels": ["secret"]}]
    saved = await app.call("PUT", f"/channels/{cid}/label-enrichment", {"rules": rules})
    assert saved["channel_id"] == cid and saved["version"]
    await app.push(key, event("a", "cpu high on web-1", secret="x"))
    await app.push(key, event("b", "disk full on web-2"))
    await app.push(key, event("c", "slow on db-1"))
    got = sorted((i["alert_cnt"], i["labels"].get("team")) for i in await incidents(app))
    assert got == [(1, "dba"), (2, "web")]
    [web] = [i for i in await incidents(app) if i["labels"]["team"] == "web"]
    assert web["labels"] == {"host": "web-1", "team": "web", "owner": "ann", "summary": "web/web-1"}
    detail = await app.get(f"/incidents/{web['incident_id']}")
    events = await app.get(f"/alerts/{detail['alerts'][0]['alert_id']}/events")
    assert events["items"][0]["labels"]["team"] == "web"  # the raw event is stored as enriched


async def test_integration_rules_run_before_routing(app):
    db = (await app.post("/channels", {"name": "db"}))["channel_id"]
    other = (await app.post("/channels", {"name": "other"}))["channel_id"]
    shared = await app.post("/integrations", {"type": "standard", "name": "shared", "routing": {
        "cases": [{"if": [[{"field": "labels.svc", "op": "equals", "values": ["db"]}]], "channel_id": db}],
        "default_channel_id": other}})
    await app.call("PUT", f"/integrations/{shared['integration_id']}/label-enrichment", {"rules": [
        {"type": "extract", "source": "labels.job", "pattern": r"^(?P<svc>[a-z]+)-exporter$"}]})
    await app.push(shared["integration_key"], event("a", "x", job="db-exporter"))
    [inc] = await incidents(app)
    assert inc["channel_id"] == db and inc["labels"]["svc"] == "db"


async def test_disabled_and_deleted_rule_sets_stop_enriching(app):
    cid, key = await app.channel_with_integration()
    await app.call("PUT", f"/channels/{cid}/label-enrichment", {"rules": [HOST_RULE], "status": "disabled"})
    await app.push(key, event("a", "cpu on web-1"))
    await app.call("PUT", f"/channels/{cid}/label-enrichment", {"rules": [HOST_RULE]})
    await app.push(key, event("b", "cpu on web-2"))
    await app.delete(f"/channels/{cid}/label-enrichment")
    await app.push(key, event("c", "cpu on web-3"))
    hosts = {i["dedup_key"]: i["labels"].get("host") for i in await incidents(app)}
    assert hosts == {"a": None, "b": "web-2", "c": None}
    assert (await app.get(f"/channels/{cid}/label-enrichment"))["rules"] == []


async def test_a_mapping_edit_reaches_ingest(app):
    cid, key = await app.channel_with_integration()
    m = await mapping(app)
    await app.call("PUT", f"/channels/{cid}/label-enrichment", {"rules": [{"type": "map", "mapping_id": m["mapping_id"]}]})
    await app.push(key, event("a", "x", host="web-1"))
    await app.call("PUT", f"/enrichment-mappings/{m['mapping_id']}/rows", {"key": "web-1", "labels": {"team": "web"}})
    await app.push(key, event("b", "x", host="web-1"))
    teams = {i["dedup_key"]: i["labels"].get("team") for i in await incidents(app)}
    assert teams == {"a": None, "b": "web"}


@pytest.mark.parametrize(("rules", "message"), [
    ([{"type": "drop", "labels": ["a"]}, {"type": "extract", "source": "title", "pattern": "(?P<h>x"}],
     "rules[1] (extract): invalid regex '(?P<h>x': missing )"),
    ([{"type": "extract", "source": "title", "pattern": "(x)"}], "rules[0] (extract): the regex '(x)' has no named group"),
    ([{"type": "map", "mapping_id": 999}], "rules[0] (map): no enrichment mapping with id 999"),
    ([{"type": "compose", "label": "x", "template": "{a"}], "rules[0] (compose): unmatched '{'"),
])
async def test_bad_rules_are_refused_naming_the_rule(app, rules, message):
    cid, _ = await app.channel_with_integration()
    with pytest.raises(ApiError) as exc:
        await app.call("PUT", f"/channels/{cid}/label-enrichment", {"rules": rules})
    assert exc.value.status == 400 and message in exc.value.body["error"]["message"]


async def test_preview_shows_what_rules_make_of_an_event(app):
    m = await mapping(app, "host,team,owner\nweb-1,web,ann\n")
    out = await app.post("/label-enrichment/preview", {
        "rules": [HOST_RULE, {"type": "map", "mapping_id": m["mapping_id"]}],
        "event": {"title": "cpu on web-1", "labels": {"env": "prod"}}})
    assert out == {"labels": {"env": "prod", "host": "web-1", "team": "web", "owner": "ann"}}


async def test_mapping_csv_round_trip_replace_and_errors(app):
    m = await mapping(app, "host,team,owner\nweb-1,web,ann\ndb-1,dba,\n")
    mid = m["mapping_id"]
    assert (await app.get(f"/enrichment-mappings/{mid}"))["row_count"] == 2
    resp = await app.client.get(f"/api/v1/enrichment-mappings/{mid}/export", headers=app.headers())
    assert await resp.text() == "host,team,owner\ndb-1,dba,\nweb-1,web,ann\n"

    async def imp(body, replace="false"):
        r = await app.client.post(f"/api/v1/enrichment-mappings/{mid}/import?replace={replace}", data=body,
                                  headers={**app.headers(), "Content-Type": "text/csv"})
        return r.status, await r.json()

    status, body = await imp("host,team\nweb-2,web\n", replace="true")
    assert status == 200 and body["data"] == {"added": 1, "changed": 0, "unchanged": 0, "removed": 2}
    rows = await app.get(f"/enrichment-mappings/{mid}/rows")
    assert [(r["key"], r["labels"]) for r in rows["items"]] == [("web-2", {"team": "web"})]
    status, body = await imp("host,colour\nx,red\n")
    assert status == 400 and "column 'colour' is not a result label of mapping 'hosts'" in body["error"]["message"]
    status, body = await imp("name,team\nx,red\n")
    assert status == 400 and "the first column must be the key label 'host'" in body["error"]["message"]
    status, body = await imp("host,team\nx\n")
    assert status == 400 and "line 2 has 1 cells" in body["error"]["message"]
    await app.delete(f"/enrichment-mapping-rows/{rows['items'][0]['row_id']}")
    assert (await app.get(f"/enrichment-mappings/{mid}"))["row_count"] == 0


async def test_a_mapping_in_use_cannot_be_deleted(app):
    cid, _ = await app.channel_with_integration()
    m = await mapping(app)
    await app.call("PUT", f"/channels/{cid}/label-enrichment", {"rules": [{"type": "map", "mapping_id": m["mapping_id"]}]})
    with pytest.raises(ApiError) as exc:
        await app.delete(f"/enrichment-mappings/{m['mapping_id']}")
    assert exc.value.status == 409 and f"channel {cid}" in exc.value.body["error"]["message"]
    await app.delete(f"/channels/{cid}/label-enrichment")
    await app.delete(f"/enrichment-mappings/{m['mapping_id']}")
    with pytest.raises(ApiError) as exc:
        await app.post("/enrichment-mappings", {"name": "m", "key_label": "host", "result_labels": ["host"]})
    assert "'host' is the key label" in exc.value.body["error"]["message"]
