"""Template overrides through the Open API: validation, preview, and the attacks of issue 11 point 1."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.kit import until


async def test_template_override_preview_and_validation(app):
    body = await app.call("POST", "/templates", {"medium": "sms", "source": "{% if %}"}, expect=400)
    assert "line 1" in body["error"]["message"]
    await app.post("/templates", {"medium": "sms", "event_type": "i_new", "source": "PAGE {{ title }}"})
    again = await app.post("/templates", {"medium": "sms", "event_type": "i_new", "source": "PAGE2 {{ title }}"})
    assert (await app.get("/templates"))["total"] == 1 and again["source"].startswith("PAGE2")
    preview = await app.post("/templates/preview", {"medium": "sms", "event_type": "i_new"})
    assert preview["text"] == "PAGE2 Sample: disk full on db-1" and not preview["used_fallback"]
    broken = await app.post("/templates/preview", {"medium": "sms", "source": "{{ 1/0 }}"})
    assert broken["used_fallback"] and "ZeroDivisionError" in broken["error"]
    await app.delete(f"/templates/{again['template_id']}")
    assert (await app.post("/templates/preview", {"medium": "sms"}))["text"].startswith("[Critical]")


# ---- attacks (issue 11, point 1): a template cannot stall or bloat the server --------------------------

SUM = "{{ ([[0]*1500]*1500)|sum(start=[])|length }}"  # one C call: ~15 s of CPU in-process
JOIN = '{{ (["x"*199999]*5000)|join }}'  # one C call: a 1 GB string in-process


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


async def while_watching(app, request):
    """Send `request` while /healthz is polled; the answer, the slowest /healthz and the RSS growth (MB)."""
    base, slowest, peak = rss_mb(), 0.0, 0.0
    task = asyncio.create_task(request)
    polls = 0
    while not task.done() or polls < 3:
        start = time.monotonic()
        resp = await app.client.get("/healthz")
        assert resp.status == 200
        slowest = max(slowest, time.monotonic() - start)
        peak = max(peak, rss_mb() - base)
        polls += 1
        await asyncio.sleep(0.05)
    return await task, slowest, peak


@pytest.mark.parametrize("source, limit", [
    (SUM, "TemplateLimitError: rendering took longer than the 2 s time limit"),
    (JOIN, "TemplateLimitError: rendering needed more than the 256 MB memory limit"),
])
async def test_a_preview_that_would_stall_or_bloat_the_server_is_cut_at_its_limit(app, source, limit):
    body, slowest, grown = await while_watching(
        app, app.call("POST", "/templates/preview", {"medium": "sms", "source": source}, expect=400))
    assert body["error"] == {"code": "InvalidParameter", "message": f"source: {limit}"}
    assert slowest < 1.0, f"/healthz took {slowest:.2f} s during the attack"
    assert grown < 64, f"the server grew by {grown:.0f} MB"
    ok = await app.post("/templates/preview", {"medium": "sms", "source": "still {{ num }}"})
    assert ok["text"] == "still 000000"


async def test_a_stored_template_over_a_limit_answers_400_naming_it(app):
    await app.post("/templates", {"medium": "sms", "event_type": "i_new", "source": SUM})
    body = await app.call("POST", "/templates/preview", {"medium": "sms", "event_type": "i_new"}, expect=400)
    assert body["error"]["message"] == \
        "template sms/i_new: TemplateLimitError: rendering took longer than the 2 s time limit"


async def test_previewing_a_custom_source_needs_the_admin_role(app):
    await app.post("/templates", {"medium": "sms", "event_type": "i_new", "source": "STORED {{ num }}"})
    for role in ("observer", "responder"):
        m = await app.post("/members", {"name": role, "email": f"{role}@example.com", "role": role})
        token = (await app.post("/tokens", {"name": role, "member_id": m["member_id"]}))["token"]
        body = await app.call("POST", "/templates/preview", {"medium": "sms", "source": SUM}, expect=403,
                              token=token)
        assert body["error"]["code"] == "AccessDenied" and "needs the admin role" in body["error"]["message"]
        stored = await app.call("POST", "/templates/preview", {"medium": "sms"}, token=token)
        assert stored["text"] == "STORED 000000"  # the stored templates stay readable to every role


# ---- a stored override over a limit still pages, with the shipped default ------------------------------

@pytest.mark.parametrize("source, limit", [
    (SUM, "rendering took longer than the 2 s time limit"),
    (JOIN, "rendering needed more than the 256 MB memory limit"),
])
async def test_a_page_whose_override_hits_a_limit_goes_out_with_the_default(paging_by_sms, source, limit):
    app, twilio = paging_by_sms
    await app.post("/templates", {"medium": "sms", "event_type": "default", "source": source})
    ann = await app.post("/members", {"name": "ann", "phone": "+15550001111", "preferences": {"Critical": ["sms"]}})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(twilio.requests), timeout=30)
    [sms] = twilio.requests
    assert sms.form["To"] == "+15550001111" and sms.form["Body"].startswith("[Critical]")
    assert "db-1 is down" in sms.form["Body"]
    [inc] = (await app.get("/incidents"))["items"]
    timeline = (await app.get(f"/incidents/{inc['incident_id']}"))["timeline"]
    [fallback] = [t for t in timeline if t["kind"] == "template_fallback"]
    assert limit in str(fallback)
    assert "delivery_sent" in [t["kind"] for t in timeline]


# ---- templates per channel and escalation rule (issue 13 item 16) --------------------------------------


async def test_scoped_templates_are_checked_listed_and_previewed_in_their_scope(app):
    cid, _key = await app.channel_with_integration()
    other, _ = await app.channel_with_integration("staging")
    rule = await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [(await app.post("/members", {"name": "ann"}))["member_id"]]}}]})
    await app.post("/templates", {"medium": "sms", "source": "GLOBAL {{ title }}"})
    chan = await app.post("/templates", {"medium": "sms", "channel_id": cid, "source": "CHANNEL {{ title }}"})
    ruled = await app.post("/templates", {"medium": "sms", "escalation_rule_id": rule["rule_id"],
                                          "source": "RULE {{ title }}"})
    assert (chan["channel_id"], chan["escalation_rule_id"]) == (cid, None)
    assert (ruled["channel_id"], ruled["escalation_rule_id"]) == (cid, rule["rule_id"])  # a rule implies its channel
    # Setting a scope's template again replaces it; other scopes keep theirs.
    await app.post("/templates", {"medium": "sms", "channel_id": cid, "source": "CHANNEL2 {{ title }}"})
    assert (await app.get("/templates"))["total"] == 3
    assert [t["source"] for t in (await app.get("/templates", params={"channel_id": cid}))["items"]] == [
        "CHANNEL2 {{ title }}", "RULE {{ title }}"]
    assert [t["source"] for t in (await app.get("/templates", params={"channel_id": 0}))["items"]] == ["GLOBAL {{ title }}"]

    async def text(**scope) -> str:
        return (await app.post("/templates/preview", {"medium": "sms", **scope}))["text"]
    assert await text() == "GLOBAL Sample: disk full on db-1"
    assert await text(channel_id=cid) == "CHANNEL2 Sample: disk full on db-1"
    assert await text(channel_id=other) == "GLOBAL Sample: disk full on db-1"
    assert await text(escalation_rule_id=rule["rule_id"]) == "RULE Sample: disk full on db-1"
    tried = await app.post("/templates/preview", {"medium": "sms", "channel_id": other, "source": "TRY {{ title }}"})
    assert tried["text"] == "TRY Sample: disk full on db-1"

    # Bad scopes are named and store nothing.
    for body, status, words in [
            ({"channel_id": 999_999}, 404, "channel_id: no channel with id 999999"),
            ({"escalation_rule_id": 999_999}, 404, "escalation_rule_id: no escalation rule with id 999999"),
            ({"channel_id": other, "escalation_rule_id": rule["rule_id"]}, 400,
             f"escalation rule {rule['rule_id']} belongs to channel {cid}")]:
        err = await app.call("POST", "/templates", {"medium": "sms", "source": "X", **body}, expect=status)
        assert words in err["error"]["message"]
    assert (await app.get("/templates"))["total"] == 3

    # Deleting the rule deletes its templates (its incidents fall back to the channel's).
    await app.delete(f"/escalation-rules/{rule['rule_id']}")
    assert [t["source"] for t in (await app.get("/templates"))["items"]] == ["GLOBAL {{ title }}",
                                                                            "CHANNEL2 {{ title }}"]


async def test_each_page_is_worded_by_the_templates_of_its_channel_and_rule(paging_by_sms):
    app, twilio = paging_by_sms
    ann = await app.post("/members", {"name": "ann", "phone": "+15550001111", "preferences": {"Critical": ["sms"]}})
    plain, plain_key = await app.channel_with_integration("plain")
    worded, worded_key = await app.channel_with_integration("worded")
    ruled, ruled_key = await app.channel_with_integration("ruled")
    rules = {}
    for cid in (plain, worded, ruled):
        rules[cid] = await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
            {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.post("/templates", {"medium": "sms", "source": "GLOBAL {{ title }}"})
    await app.post("/templates", {"medium": "sms", "channel_id": worded, "source": "CHANNEL {{ title }}"})
    await app.post("/templates", {"medium": "sms", "channel_id": ruled, "source": "CHANNEL {{ title }}"})
    await app.post("/templates", {"medium": "sms", "escalation_rule_id": rules[ruled]["rule_id"],
                                  "source": "RULE {{ title }} #{{ num }}"})
    for key, title in [(plain_key, "plain"), (worded_key, "worded"), (ruled_key, "ruled")]:
        await app.push(key, {"event_status": "Critical", "title_rule": title, "alert_key": title})
    await until(lambda: len(twilio.requests) == 3, timeout=30)
    bodies = sorted(r.form["Body"] for r in twilio.requests)
    assert bodies[0] == "CHANNEL worded" and bodies[1] == "GLOBAL plain"
    assert bodies[2].startswith("RULE ruled #")
