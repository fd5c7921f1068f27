"""Lifecycle actions through the Open API: transitions, timeline, 409s, permissions."""

import pytest


async def open_incident(app, key_name="a", **channel):
    _, key = await app.channel_with_integration(**channel)
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": key_name})
    [inc] = (await app.get("/incidents"))["items"]
    return inc["incident_id"], key


async def member(app, name="alice", role="responder"):
    m = await app.post("/members", {"name": name, "email": f"{name}@example.com", "role": role})
    tok = await app.post("/tokens", {"name": f"{name}-token", "member_id": m["member_id"]})
    return m["member_id"], tok["token"]


def domain(timeline):
    """Domain events only (the timeline also records escalation and delivery notes)."""
    from core.events import EVENT_TYPES

    return [t for t in timeline if t["kind"] in EVENT_TYPES]


async def kinds(app, iid):
    return [t["kind"] for t in domain((await app.get(f"/incidents/{iid}"))["timeline"])]


async def test_full_lifecycle_writes_timeline(app):
    iid, _ = await open_incident(app)
    alice, tok = await member(app)
    inc = await app.post(f"/incidents/{iid}/ack", token=tok)
    assert inc["progress"] == "Processing" and inc["ack_time"] > 0
    assert inc["responders"][0]["person_id"] == alice and inc["responders"][0]["acknowledged_at"] > 0
    assert (await app.post(f"/incidents/{iid}/unack", token=tok))["progress"] == "Triggered"
    inc = await app.post(f"/incidents/{iid}/snooze", {"minutes": 30}, token=tok)
    assert inc["progress"] == "Processing" and inc["snoozed_before"] > inc["ack_time"]
    await app.post(f"/incidents/{iid}/comment", {"comment": "looking into it 👀"}, token=tok)
    await app.post(f"/incidents/{iid}/escalate", {"reason": "need DBA"}, token=tok)
    bob, _ = await member(app, "bob")
    inc = await app.post(f"/incidents/{iid}/reassign", {"member_ids": [bob]}, token=tok)
    assert [r["person_id"] for r in inc["responders"]] == [bob]
    inc = await app.post(f"/incidents/{iid}/close", {"resolution": "restarted"}, token=tok)
    assert inc["progress"] == "Closed" and inc["closer_id"] == alice
    inc = await app.post(f"/incidents/{iid}/reopen", {"reason": "came back"}, token=tok)
    assert inc["progress"] == "Triggered" and inc["close_time"] == 0
    detail = await app.get(f"/incidents/{iid}")
    timeline = domain(detail["timeline"])
    assert [t["kind"] for t in timeline] == [
        "i_new", "i_ack", "i_unack", "i_snooze", "i_comm", "i_assign", "i_assign", "i_rslv", "i_reopen"]
    entries = {t["kind"]: t for t in timeline}
    assert entries["i_comm"]["detail"]["comment"] == "looking into it 👀"
    assert entries["i_ack"]["actor_id"] == alice and entries["i_ack"]["source"] == "api"
    assert [t["detail"].get("type") for t in timeline if t["kind"] == "i_assign"] == ["escalate", "reassign"]


@pytest.mark.parametrize("first, second, message", [
    ("ack", "ack", "already acknowledged"),
    ("close", "ack", "Closed"),
    ("close", "close", "Closed"),
    (None, "unack", "not acknowledged"),
    (None, "reopen", "not closed"),
    (None, "wake", "not snoozed"),
])
async def test_illegal_transitions_are_409_and_change_nothing(app, first, second, message):
    iid, _ = await open_incident(app)
    if first:
        await app.post(f"/incidents/{iid}/{first}")
    await app.settle()
    before = await app.get(f"/incidents/{iid}")
    body = await app.call("POST", f"/incidents/{iid}/{second}", {}, expect=409)
    assert body["error"]["code"] == "Conflict" and message in body["error"]["message"]
    await app.settle()
    assert await app.get(f"/incidents/{iid}") == before


async def test_observer_cannot_act_but_can_read(app):
    iid, _ = await open_incident(app)
    _, tok = await member(app, "olga", role="observer")
    assert (await app.get(f"/incidents/{iid}", token=tok))["progress"] == "Triggered"
    body = await app.call("POST", f"/incidents/{iid}/ack", {}, expect=403, token=tok)
    assert body["error"]["code"] == "AccessDenied"
    # An admin acting on behalf of an observer is refused by core too (one permission rule).
    olga = (await app.get("/members"))["items"][0]["member_id"]
    body = await app.call("POST", f"/incidents/{iid}/ack", {"member_id": olga}, expect=403)
    assert "observer" in body["error"]["message"]
    assert await kinds(app, iid) == ["i_new"]


async def test_snooze_wakes_by_itself(app):
    import asyncio
    from datetime import timedelta

    from bot.keys import JOBS

    iid, _ = await open_incident(app)
    ctx = app.app[JOBS]
    real_now = ctx.now
    await app.post(f"/incidents/{iid}/snooze", {"minutes": 1})
    ctx.now = lambda: real_now() + timedelta(minutes=2)  # the runner's clock jumps past the snooze
    for _ in range(100):
        if "i_wake" in await kinds(app, iid):
            break
        await asyncio.sleep(0.05)
    ctx.now = real_now
    inc = await app.get(f"/incidents/{iid}")
    assert inc["snoozed_before"] == 0 and inc["progress"] == "Processing"
    assert domain(inc["timeline"])[-1]["kind"] == "i_wake" and domain(inc["timeline"])[-1]["source"] == "system"


@pytest.mark.parametrize("path, body, message", [
    ("snooze", {"minutes": 0}, "minutes"),
    ("snooze", {"minutes": 1441}, "minutes"),
    ("snooze", {}, "minutes"),
    ("comment", {"comment": ""}, "comment"),
    ("comment", {"comment": "x" * 1025}, "comment"),
    ("reassign", {"member_ids": []}, "member_ids"),
    ("reassign", {"member_ids": [999]}, "unknown member 999"),
    # Found by the Open API fuzzer: an integer past 64 bits reached the database as a 500.
    ("unack", {"member_id": 16925694658703282176}, "body.member_id is out of range"),
    ("reassign", {"member_ids": [1, 2**63]}, "body.member_ids[1] is out of range"),
])
async def test_bad_action_bodies(app, path, body, message):
    iid, _ = await open_incident(app)
    resp = await app.call("POST", f"/incidents/{iid}/{path}", body, expect=400)
    assert resp["error"]["code"] == "InvalidParameter" and message in resp["error"]["message"]


async def test_unknown_incident_is_404(app):
    body = await app.call("POST", "/incidents/424242/ack", {}, expect=404)
    assert "424242" in body["error"]["message"]


async def test_merge_moves_alerts_and_closes_sources(app):
    _, key = await app.channel_with_integration()
    for k in ("a", "b", "c"):
        await app.push(key, {"event_status": "Warning" if k != "c" else "Critical", "title_rule": k, "alert_key": k})
    ids = sorted(i["incident_id"] for i in (await app.get("/incidents"))["items"])
    target = await app.post(f"/incidents/{ids[0]}/merge", {"source_incident_ids": ids[1:]})
    assert target["alert_cnt"] == 3 and target["incident_severity"] == "Critical"
    for sid in ids[1:]:
        src = await app.get(f"/incidents/{sid}")
        assert src["progress"] == "Closed" and src["merged_into"] == ids[0] and src["alerts"] == []
        body = await app.call("POST", f"/incidents/{sid}/reopen", {}, expect=409)
        assert "merged" in body["error"]["message"]
    # a new event for a merged alert lands in the target incident
    await app.push(key, {"event_status": "Critical", "title_rule": "b", "alert_key": "b"})
    assert (await app.get(f"/incidents/{ids[0]}"))["alert_event_cnt"] == 4


async def test_list_filters_and_paging(app):
    _, key = await app.channel_with_integration()
    for i in range(5):
        await app.push(key, {"event_status": "Critical" if i % 2 else "Info", "title_rule": str(i), "alert_key": str(i)})
    page = await app.get("/incidents?limit=2&p=1")
    assert page["total"] == 5 and page["has_next_page"] and len(page["items"]) == 2
    last = await app.get("/incidents?limit=2&p=3")
    assert len(last["items"]) == 1 and not last["has_next_page"]
    crit = await app.get("/incidents?severity=Critical")
    assert crit["total"] == 2
    first = crit["items"][0]["incident_id"]
    await app.post(f"/incidents/{first}/ack")
    assert (await app.get("/incidents?progress=Processing"))["total"] == 1
    assert (await app.get("/incidents?progress=Triggered,Processing"))["total"] == 5
    body = await app.call("GET", "/incidents?progress=Open", expect=400)
    assert "progress" in body["error"]["message"]
