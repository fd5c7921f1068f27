"""Manual paging over the Open API: open an incident by hand (paging members or an escalation rule), edit it,
add responders; permissions as for every other action."""

from tests.kit import until


async def member(app, name, role="responder"):
    m = await app.post("/members", {"name": name, "email": f"{name}@example.com", "role": role,
                                    "preferences": {"Critical": ["email"], "Warning": ["email"], "Info": ["email"]}})
    tok = await app.post("/tokens", {"name": f"{name}-token", "member_id": m["member_id"]})
    return m["member_id"], tok["token"]


async def create(app, body, token=None):
    return (await app.call("POST", "/incidents", body, token=token, expect=201))["data"]


async def paged(app, iid):
    """The members the incident paged (no medium is set up here, so each page falls back through them all)."""
    return {d["person_id"] for d in (await app.get(f"/incidents/{iid}/deliveries"))["items"]}


async def test_open_by_hand_pages_the_named_responders_with_no_alerts(app):
    cid, _ = await app.channel_with_integration()
    ann, ann_token = await member(app, "ann")
    bob, _ = await member(app, "bob")
    inc = await create(app, {
        "title": "checkout is slow for EU users", "description": "reported by support", "incident_severity": "Critical",
        "channel_id": cid, "responder_ids": [bob]}, ann_token)
    iid = inc["incident_id"]
    assert inc["progress"] == "Triggered" and inc["alert_cnt"] == 0 and inc["num"] == str(iid)
    assert [r["person_id"] for r in inc["responders"]] == [bob]
    await app.settle()
    await until(lambda: _has_pages(app, iid))
    assert await paged(app, iid) == {bob}
    detail = await app.get(f"/incidents/{iid}")
    assert detail["alerts"] == []
    [new] = [t for t in detail["timeline"] if t["kind"] == "i_new"]
    assert new["actor_id"] == ann and new["source"] == "api" and new["detail"]["manual"] is True
    assert new["detail"]["assigned_to"]["person_ids"] == [bob]
    # an ingested alert of the channel never joins a manual incident
    assert detail["group_method"] == "m"


async def _has_pages(app, iid):
    return bool((await app.get(f"/incidents/{iid}/deliveries"))["items"])


async def test_open_through_a_chosen_escalation_rule_or_the_channels_rule(app):
    cid, _ = await app.channel_with_integration()
    ann, _ = await member(app, "ann")
    cat, _ = await member(app, "cat")
    # The channel's own rule only takes Info incidents; a rule chosen by hand applies whatever its filters say.
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "info only", "levels": [
        {"targets": {"member_ids": [ann]}}], "filters": [[{"field": "severity", "op": "in", "values": ["Info"]}]]})
    chosen = await app.post(f"/channels/{cid}/escalation-rules", {"name": "by hand", "status": "enabled",
                                                                  "filters": [[{"field": "severity", "op": "in",
                                                                                "values": ["Info"]}]],
                                                                  "levels": [{"targets": {"member_ids": [cat]}}]})
    rule_id = chosen["rule_id"]
    by_rule = await create(app, {"title": "rotate the certs", "incident_severity": "Critical", "channel_id": cid,
                                 "escalation_rule_id": rule_id})
    by_channel = await create(app, {"title": "fyi", "incident_severity": "Info", "channel_id": cid})
    await app.settle()
    await until(lambda: _has_pages(app, by_rule["incident_id"]))
    await until(lambda: _has_pages(app, by_channel["incident_id"]))
    assert await paged(app, by_rule["incident_id"]) == {cat}
    assert await paged(app, by_channel["incident_id"]) == {ann}


async def test_bad_create_requests_name_the_field(app):
    cid, _ = await app.channel_with_integration()
    other, _ = await app.channel_with_integration("other")
    rule = await app.post(f"/channels/{other}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [(await member(app, "ann"))[0]]}}]})
    rule_id = rule["rule_id"]
    base = {"title": "x", "incident_severity": "Critical", "channel_id": cid}
    cases = [
        ({**base, "incident_severity": "Major"}, 400, "incident_severity"),
        ({**base, "title": ""}, 400, "title"),
        ({**base, "responder_ids": [999999]}, 400, "unknown member 999999"),
        ({**base, "escalation_rule_id": rule_id}, 400, f"has no escalation rule {rule_id}"),
        ({**base, "responder_ids": [1], "escalation_rule_id": rule_id}, 400, "not both"),
        ({**base, "channel_id": 999999}, 404, "channel 999999"),
    ]
    for body, status, words in cases:
        err = await app.call("POST", "/incidents", body, expect=status)
        assert words in err["error"]["message"], (body, err)
    assert (await app.get("/incidents"))["total"] == 0


async def test_edit_and_add_responders_write_the_timeline_and_page(app):
    cid, _ = await app.channel_with_integration()
    ann, ann_token = await member(app, "ann")
    bob, _ = await member(app, "bob")
    iid = (await create(app, {"title": "slow", "incident_severity": "Warning", "channel_id": cid,
                              "responder_ids": [ann]}, ann_token))["incident_id"]
    inc = await app.patch(f"/incidents/{iid}", {"title": "checkout slow", "incident_severity": "Critical",
                                                "description": "p99 at 4 s"}, token=ann_token)
    assert (inc["title"], inc["incident_severity"], inc["description"]) == ("checkout slow", "Critical", "p99 at 4 s")
    inc = await app.post(f"/incidents/{iid}/responders", {"member_ids": [bob, ann]}, token=ann_token)
    assert [r["person_id"] for r in inc["responders"]] == [ann, bob]
    await app.settle()
    await until(lambda: _pages_for(app, iid, bob))
    timeline = (await app.get(f"/incidents/{iid}"))["timeline"]
    edits = {t["kind"]: t["detail"] for t in timeline if t["kind"].startswith("i_r_") or t["kind"] == "i_a_rspd"}
    assert edits == {"i_r_title": {"from": "slow", "to": "checkout slow"},
                     "i_r_severity": {"from": "Warning", "to": "Critical"},
                     "i_r_desc": {"from": "", "to": "p99 at 4 s"}, "i_a_rspd": {"person_ids": [bob]}}
    err = await app.call("POST", f"/incidents/{iid}/responders", {"member_ids": [bob]}, expect=400)
    assert "already a responder" in err["error"]["message"]
    assert "at least one of" in (await app.call("PATCH", f"/incidents/{iid}", {}, expect=400))["error"]["message"]
    await app.post(f"/incidents/{iid}/close")
    err = await app.call("POST", f"/incidents/{iid}/responders", {"member_ids": [ann]}, expect=409)
    assert "Closed" in err["error"]["message"]
    # a closed incident's record may still be corrected
    assert (await app.patch(f"/incidents/{iid}", {"title": "checkout slow (db lock)"}))["title"].endswith("lock)")


async def _pages_for(app, iid, member_id):
    return any(d["person_id"] == member_id for d in (await app.get(f"/incidents/{iid}/deliveries"))["items"])


async def test_observers_are_refused_and_team_scope_is_enforced(app):
    cid, _ = await app.channel_with_integration()
    _, olga_token = await member(app, "olga", role="observer")
    err = await app.call("POST", "/incidents", {"title": "x", "incident_severity": "Info", "channel_id": cid},
                         token=olga_token, expect=403)
    assert err["error"]["code"] == "AccessDenied"
    ann, ann_token = await member(app, "ann")
    bob, bob_token = await member(app, "bob")
    team = (await app.post("/teams", {"name": "payments", "member_ids": [bob]}))["team_id"]
    scoped = (await app.post("/channels", {"name": "payments", "team_ids": [team], "team_scoped": True}))
    scoped_id = scoped["channel_id"]
    body = {"title": "refunds stuck", "incident_severity": "Critical", "channel_id": scoped_id}
    err = await app.call("POST", "/incidents", body, token=ann_token, expect=403)
    assert "team-scoped" in err["error"]["message"]
    iid = (await create(app, body, bob_token))["incident_id"]
    assert (await app.call("PATCH", f"/incidents/{iid}", {"title": "mine now"}, token=ann_token, expect=403))
    assert (await app.call("POST", f"/incidents/{iid}/responders", {"member_ids": [ann]}, token=ann_token,
                           expect=403))
    memberless = (await app.post("/tokens", {"name": "script", "role": "responder"}))["token"]
    await app.call("POST", "/incidents", body, token=memberless, expect=403)
    assert (await app.get("/incidents"))["total"] == 1
