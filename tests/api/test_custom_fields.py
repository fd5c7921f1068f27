"""Custom fields through a running Vigil (issue 13 item 8): admins define them, every member reads them,
responders set values on incidents (checked against the type and options, written to the timeline, shown
by incident reads), observers and members outside a team-scoped channel cannot, and a subscription rule
matches on `fields.<name>`."""

from __future__ import annotations

import pytest

from tests.kit import Api, ApiError, until

ADMIN = "test-admin-token-0123456789abcdef"
IMPACT = {"name": "impact", "display_name": "Impact", "description": "who is hurt", "type": "single_select",
          "options": ["High", "Medium", "Low"], "default_value": "Low"}


@pytest.fixture
def app(emailing_app):
    return emailing_app


async def _member(app: Api, name: str, role: str = "responder") -> tuple[int, str]:
    return await app.member_with_token(name, role=role, preferences={"Critical": ["email"], "Warning": ["email"]})


async def _incident(app: Api, key: str, title: str = "db down") -> int:
    await app.push(key, {"event_status": "Critical", "title_rule": title, "alert_key": title})
    items = (await app.get("/incidents"))["items"]
    return next(i["incident_id"] for i in items if i["title"] == title)


async def _refused(call, status: int, words: str) -> None:
    with pytest.raises(ApiError) as exc:
        await call
    assert exc.value.status == status, exc.value.body
    assert words in exc.value.body["error"]["message"], exc.value.body


async def test_definitions_admins_write_and_everyone_reads(app) -> None:
    _, ann = await _member(app, "ann")
    _, sue = await _member(app, "sue", role="observer")
    impact = await app.post("/custom-fields", IMPACT, expect=201)
    impact = impact["data"]
    assert {k: impact[k] for k in IMPACT} == IMPACT and impact["field_id"] > 0
    await _refused(app.post("/custom-fields", {**IMPACT, "name": "other"}, token=ann), 403, "cannot do this")
    await _refused(app.post("/custom-fields", IMPACT), 409, "name: a custom field named 'impact' exists already")
    await _refused(app.post("/custom-fields", {**IMPACT, "name": "x", "default_value": "Huge"}), 400,
                   "default_value: 'Huge' is not an option of x")
    await _refused(app.post("/custom-fields", {**IMPACT, "name": "Bad Name"}), 400, "body.name")
    listed = await app.get("/custom-fields", token=sue)
    assert listed["total"] == 1 and listed["items"][0]["name"] == "impact"
    assert (await app.get(f"/custom-fields/{impact['field_id']}", token=ann))["display_name"] == "Impact"

    fid = impact["field_id"]
    await _refused(app.patch(f"/custom-fields/{fid}", {"display_name": "Blast radius"}, token=ann), 403, "cannot")
    await _refused(app.patch(f"/custom-fields/{fid}", {"type": "text"}), 400, "body.type")
    await _refused(app.patch(f"/custom-fields/{fid}", {"options": ["High", "Medium"]}), 400,
                   "default_value: 'Low' is not an option of impact")
    changed = await app.patch(f"/custom-fields/{fid}", {"display_name": "Blast radius", "options": ["High", "Medium"],
                                                        "default_value": None})
    assert (changed["display_name"], changed["options"], changed["default_value"]) == (
        "Blast radius", ["High", "Medium"], None)
    await _refused(app.delete(f"/custom-fields/{fid}", token=ann), 403, "cannot")
    await app.delete(f"/custom-fields/{fid}")
    await _refused(app.get(f"/custom-fields/{fid}"), 404, f"custom field {fid} not found")


async def test_responders_set_values_that_incident_reads_show(app) -> None:
    ann_id, ann = await _member(app, "ann")
    _, sue = await _member(app, "sue", role="observer")
    await app.post("/custom-fields", IMPACT)
    await app.post("/custom-fields", {"name": "systems", "display_name": "Systems", "type": "multi_select",
                                      "options": ["db", "api", "web"]})
    await app.post("/custom-fields", {"name": "customer_facing", "display_name": "Customer facing",
                                      "type": "checkbox"})
    cid, key = await app.channel_with_integration()
    iid = await _incident(app, key)
    # unset fields read as their defaults (none: absent)
    assert (await app.get(f"/incidents/{iid}"))["fields"] == {"impact": "Low"}

    out = await app.post(f"/incidents/{iid}/fields", {"name": "impact", "value": "High"}, token=ann)
    assert out["fields"] == {"impact": "High"}
    await app.post(f"/incidents/{iid}/fields", {"name": "systems", "value": ["web", "db"]}, token=ann)
    await app.post(f"/incidents/{iid}/fields", {"name": "customer_facing", "value": True, "member_id": ann_id})
    detail = await app.get(f"/incidents/{iid}")
    assert detail["fields"] == {"impact": "High", "systems": ["db", "web"], "customer_facing": True}
    [listed] = [i for i in (await app.get("/incidents"))["items"] if i["incident_id"] == iid]
    assert listed["fields"] == detail["fields"]
    preview = await app.post("/templates/preview", {
        "medium": "sms", "incident_id": iid,
        "source": "{{ fields.impact }} / {{ fields.systems | join('+') }} / {{ fields.customer_facing }}"})
    assert (preview["used_fallback"], preview["text"]) == (False, "High / db+web / True")
    entries = [t for t in detail["timeline"] if t["kind"] == "i_r_field"]
    assert [(t["detail"]["field"], t["detail"]["from"], t["detail"]["to"], t["actor_id"], t["source"])
            for t in entries] == [("impact", None, "High", ann_id, "api"), ("systems", None, ["db", "web"], ann_id, "api"),
                                  ("customer_facing", None, True, ann_id, "api")]

    # the same value again changes nothing; null clears it (back to the default)
    await app.post(f"/incidents/{iid}/fields", {"name": "impact", "value": "High"}, token=ann)
    await app.post(f"/incidents/{iid}/fields", {"name": "impact", "value": None}, token=ann)
    detail = await app.get(f"/incidents/{iid}")
    assert detail["fields"]["impact"] == "Low"
    assert [t["detail"]["to"] for t in detail["timeline"] if t["kind"] == "i_r_field"][-2:] == [True, None]

    # bad values: 400 naming the field and the problem, nothing changed
    before = await app.get(f"/incidents/{iid}")
    for body, words in [
        ({"name": "impact", "value": "Huge"}, "value: 'Huge' is not an option of impact (options: High, Medium, Low)"),
        ({"name": "impact", "value": 3}, "value: impact is a single select"),
        ({"name": "systems", "value": ["db", "cache"]}, "value: 'cache' is not an option of systems"),
        ({"name": "customer_facing", "value": "yes"}, "value: customer_facing is a checkbox; give true or false"),
        ({"name": "nope", "value": "x"}, "name: no custom field is named 'nope'"),
        ({"name": "impact"}, "body.value"),
        ({"name": "impact", "value": "High", "extra": 1}, "body.extra"),
    ]:
        await _refused(app.post(f"/incidents/{iid}/fields", body, token=ann), 400, words)
    after = await app.get(f"/incidents/{iid}")
    assert (after["fields"], len(after["timeline"])) == (before["fields"], len(before["timeline"]))

    # an observer reads the values but cannot set them; nor can a member outside a team-scoped channel
    await _refused(app.post(f"/incidents/{iid}/fields", {"name": "impact", "value": "High"}, token=sue), 403,
                   "cannot do this")
    team = await app.post("/teams", {"name": "dba", "member_ids": []})
    await app.patch(f"/channels/{cid}", {"team_ids": [team["team_id"]], "team_scoped": True})
    await _refused(app.post(f"/incidents/{iid}/fields", {"name": "impact", "value": "High"}, token=ann), 403,
                   "team-scoped")
    await _refused(app.post("/incidents/999999/fields", {"name": "impact", "value": "High"}), 404, "not found")


async def test_a_subscription_rule_matches_on_a_custom_field(app, inbox) -> None:
    box, _ = inbox
    ann, _ = await _member(app, "ann")
    sue, _ = await _member(app, "sue")
    await app.post("/custom-fields", IMPACT)
    _, key = await app.channel_with_integration()
    await app.post("/subscription-rules", {
        "name": "high impact", "member_id": sue, "events": ["i_new", "i_ack"], "media": ["email"],
        "filters": [[{"key": "fields.impact", "oper": "IN", "vals": ["High"]}]]})
    await app.post("/subscription-rules", {
        "name": "default impact", "member_id": ann, "events": ["i_new"], "media": ["email"],
        "filters": [[{"field": "fields.impact", "op": "equals", "values": ["Low"]}]]})
    iid = await _incident(app, key)
    await app.settle()
    await until(lambda: [m for m in box.messages if "ann@example.com" in str(m["To"])])
    assert not [m for m in box.messages if "sue@example.com" in str(m["To"])], "not High yet"

    await app.post(f"/incidents/{iid}/fields", {"name": "impact", "value": "High", "member_id": ann})
    await app.post(f"/incidents/{iid}/ack", {"member_id": ann})
    await until(lambda: [m for m in box.messages if "sue@example.com" in str(m["To"])])
    [notice] = [m for m in box.messages if "sue@example.com" in str(m["To"])]
    assert notice["Subject"].startswith("[Subscription]")


async def test_the_incident_list_filters_on_custom_fields(app) -> None:
    await app.post("/custom-fields", IMPACT)  # default Low
    await app.post("/custom-fields", {"name": "systems", "display_name": "Systems", "type": "multi_select",
                                      "options": ["db", "api", "web"]})
    await app.post("/custom-fields", {"name": "customer", "display_name": "Customer", "type": "checkbox"})
    _, key = await app.channel_with_integration()
    a, b, c = [await _incident(app, key, title) for title in ("a", "b", "c")]
    await app.post(f"/incidents/{a}/fields", {"name": "impact", "value": "High"})
    await app.post(f"/incidents/{a}/fields", {"name": "systems", "value": ["db", "web"]})
    await app.post(f"/incidents/{b}/fields", {"name": "systems", "value": ["api"]})
    await app.post(f"/incidents/{b}/fields", {"name": "customer", "value": True})
    await app.post(f"/incidents/{c}/fields", {"name": "impact", "value": "Low"})

    async def ids(fields: str) -> set[int]:
        return {i["incident_id"] for i in (await app.get("/incidents", params={"fields": fields}))["items"]}

    assert await ids("impact=High") == {a}
    assert await ids("impact=Low") == {b, c}, "b never set impact: its default, Low, counts"
    assert await ids("systems=db") == {a}
    assert await ids("systems=web,impact=High") == {a}
    assert await ids("systems=api,impact=High") == set()
    assert await ids("customer=true") == {b}
    assert await ids("customer=false") == set(), "no default: an unchecked box was never set"
    for fields, words in [("nope=x", "fields: no custom field is named 'nope'"),
                          ("impact=Huge", "fields: impact: 'Huge' is not one of its options"),
                          ("customer=yes", "fields: customer is a checkbox"), ("impact", "is not name=value")]:
        with pytest.raises(ApiError) as exc:
            await app.get("/incidents", params={"fields": fields})
        assert exc.value.status == 400 and words in exc.value.body["error"]["message"], exc.value.body


async def test_an_escalation_rule_filter_reads_a_custom_field(app, inbox) -> None:
    ann, _ = await _member(app, "ann")
    bob, _ = await _member(app, "bob")
    await app.post("/custom-fields", IMPACT)  # default Low: a new incident is Low until someone says otherwise
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {
        "name": "high impact", "priority": 1, "levels": [{"targets": {"member_ids": [bob]}}],
        "filters": [[{"key": "fields.impact", "oper": "IN", "vals": ["High"]}]]})
    await app.post(f"/channels/{cid}/escalation-rules", {
        "name": "the rest", "priority": 2, "levels": [{"targets": {"member_ids": [ann]}}],
        "filters": [[{"field": "fields.impact", "op": "equals", "values": ["Low"]}]]})
    iid = await _incident(app, key)
    await app.settle()

    async def notified() -> list:
        timeline = (await app.get(f"/incidents/{iid}"))["timeline"]
        return [p["person_id"] for t in timeline if t["kind"] == "i_notify" for p in t["detail"]["persons"]]

    await until(notified)
    assert await notified() == [ann]


async def test_incident_webhooks_carry_the_fields_and_the_i_r_field_event(app, aiohttp_server) -> None:
    from tests.api.test_outgoing import Receiver

    receiver = Receiver()
    url = str((await aiohttp_server(receiver.app())).make_url("/hook"))
    await app.post("/custom-fields", IMPACT)
    _, key = await app.channel_with_integration()
    await app.post("/webhooks", {"name": "w", "url": url, "event_types": ["i_new", "i_r_field"]})
    iid = await _incident(app, key)
    await app.post(f"/incidents/{iid}/fields", {"name": "impact", "value": "High"})
    await until(lambda: len(receiver.got) >= 2)
    await app.settle()
    by_type = {body["event_type"]: body for body, _ in receiver.got}
    assert set(by_type) == {"i_new", "i_r_field"}
    assert by_type["i_r_field"]["incident"]["fields"] == {"impact": "High"}
    assert by_type["i_new"]["incident"]["fields"] in ({"impact": "Low"}, {"impact": "High"})  # its state when sent
