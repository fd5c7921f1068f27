"""The incident page's actions, posted as its forms are (CSRF token from the page, then back to the page):
each changes the incident through the same path as a card click, and the timeline says it came from the web."""

from __future__ import annotations

import html
import re

import pytest
from aiohttp import web

from bot.web.incident_actions import offered
from core.types import Progress
from tests.web.conftest import Browser, new_incident, new_member


async def _incident(app, iid: int) -> dict:  # type: ignore[no-untyped-def]
    return await app.get(f"/incidents/{iid}")


def _from_web(incident: dict, kind: str) -> list[dict]:
    return [t for t in incident["timeline"] if t["kind"] == kind and t["source"] == "web"]


def _flash(body: str) -> str:
    found = re.search(r'<p class="(?:notice|error)" role="(?:status|alert)">([^<]*)</p>', body)
    return html.unescape(found.group(1)) if found else ""


async def _act(browser: Browser, iid: int, action: str, data: dict[str, str] | None = None) -> str:
    """Post the page's form for `action`, follow the redirect back, and return the message shown."""
    status, location, _ = await browser.post(f"/incidents/{iid}/{action}", data or {}, form_at=f"/incidents/{iid}")
    assert (status, location) == (303, f"/incidents/{iid}")
    status, _, body = await browser.get(location)
    assert status == 200
    return _flash(body)


async def _custom_action_receiver(aiohttp_server) -> tuple[list[dict], str]:  # type: ignore[no-untyped-def]
    got: list[dict] = []

    async def receive(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({})

    server = web.Application()
    server.router.add_post("/hook", receive)
    return got, str((await aiohttp_server(server)).make_url("/hook"))


@pytest.mark.parametrize("before, action, data, kind, check", [
    (None, "ack", {}, "i_ack", lambda i: i["progress"] == "Processing"),
    ("ack", "unack", {}, "i_unack", lambda i: i["progress"] == "Triggered"),
    (None, "snooze", {"minutes": "60"}, "i_snooze", lambda i: i["snoozed_before"] > 0),
    ("snooze", "wake", {}, "i_wake", lambda i: i["snoozed_before"] == 0),
    (None, "close", {}, "i_rslv", lambda i: i["progress"] == "Closed"),
    ("close", "reopen", {}, "i_reopen", lambda i: i["progress"] == "Triggered"),
    (None, "escalate", {}, "i_assign", lambda i: _from_web(i, "i_assign")[0]["detail"]["type"] == "escalate"),
    (None, "comment", {"comment": "rolling back <now>"}, "i_comm",
     lambda i: _from_web(i, "i_comm")[0]["detail"]["comment"] == "rolling back <now>"),
])
async def test_each_card_action_works_from_the_page(app, browser: Browser, before, action, data, kind, check):
    await new_member(app, "alice")
    iid = await new_incident(app)
    if before:
        await app.post(f"/incidents/{iid}/{before}", {"minutes": 30} if before == "snooze" else {})
    await browser.sign_in("alice@example.com")
    message = await _act(browser, iid, action, data)
    incident = await _incident(app, iid)
    assert check(incident), incident
    [entry] = _from_web(incident, kind)
    assert entry["actor_id"] is not None
    assert message.startswith("alice ") and message.endswith(f"incident #{incident['num']}.")


async def test_reassign_to_a_member_picked_from_the_list(app, browser: Browser):
    await new_member(app, "alice")
    bob = await new_member(app, "bob")
    await new_member(app, "olive", role="observer")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    body = (await browser.get(f"/incidents/{iid}"))[2]
    offered_ids = re.findall(r'<option value="(\d+)"', body.split('id="reassign-member"')[1].split("</select>")[0])
    assert str(bob) in offered_ids and "olive" not in body.split('id="reassign-member"')[1].split("</select>")[0]
    await _act(browser, iid, "reassign", {"member_id": str(bob)})
    incident = await _incident(app, iid)
    assert [r["person_id"] for r in incident["responders"]] == [bob]
    assert _from_web(incident, "i_assign")[0]["detail"]["person_ids"] == [bob]


async def test_merge_into_another_incident_by_number(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app, "db down")
    target = await new_incident(app, "db cluster degraded", channel="prod-2")
    await browser.sign_in("alice@example.com")
    assert await _act(browser, iid, "merge", {"into": "#oops"}) == \
        "Nothing changed: merge: give the number of the incident to merge into, e.g. 42."
    message = await _act(browser, iid, "merge", {"into": f"#{target}"})
    assert message == f"Merged into incident #{target}: act on that one from now on."
    source = await _incident(app, iid)
    assert source["merged_into"] == target and _from_web(source, "i_merge")
    assert (await _incident(app, target))["alert_cnt"] == 2


async def test_silence_similar_makes_a_silence_rule_and_says_so(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    message = await _act(browser, iid, "silence-similar", {"minutes": "240"})
    incident = await _incident(app, iid)
    [rule] = (await app.get(f"/channels/{incident['channel_id']}/silence-rules"))["items"]
    assert message == f"Alerts like these are silenced for 4 hours (silence rule {rule['rule_id']})."
    assert rule["filters"] == [[{"field": "labels.host", "op": "equals", "values": ["db-1"]},
                                {"field": "labels.service", "op": "equals", "values": ["orders"]}]]
    [entry] = _from_web(incident, "silence_similar")
    assert entry["detail"] == {"rule_id": rule["rule_id"], "minutes": 240}
    body = (await browser.get(f"/incidents/{iid}"))[2]
    assert "Similar alerts silenced for 240 min by alice via the web" in body


async def test_custom_action_runs_from_the_page(app, browser: Browser, aiohttp_server):
    got, url = await _custom_action_receiver(aiohttp_server)
    await new_member(app, "alice")
    iid = await new_incident(app)
    cid = (await _incident(app, iid))["channel_id"]
    action = await app.post(f"/channels/{cid}/custom-actions", {"name": "Restart orders", "url": url})
    await browser.sign_in("alice@example.com")
    body = (await browser.get(f"/incidents/{iid}"))[2]
    assert f'action="/incidents/{iid}/custom-actions/{action["action_id"]}"' in body and "Restart orders" in body
    assert await _act(browser, iid, f"custom-actions/{action['action_id']}") == "Restart orders: done (HTTP 200)."
    assert str(got[0]["incident"]["incident_id"]) == str(iid) and got[0]["person"]["person_name"] == "alice"
    assert _from_web(await _incident(app, iid), "i_custom")[0]["detail"]["ok"] is True


async def test_a_refused_action_says_why_and_changes_nothing(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app)
    await app.post(f"/incidents/{iid}/ack")
    await browser.sign_in("alice@example.com")
    body = (await browser.get(f"/incidents/{iid}"))[2]
    assert f'action="/incidents/{iid}/ack"' not in body  # not offered now ...
    before = await _incident(app, iid)
    # ... and refused when posted all the same (a page left open while someone else acknowledged)
    assert await _act(browser, iid, "ack") == "Nothing changed: cannot ack: incident is already acknowledged."
    assert await _act(browser, iid, "snooze", {"minutes": "5000"}) == \
        "Nothing changed: Snooze minutes must be a whole number from 1 to 1440."
    assert await _act(browser, iid, "comment", {"comment": "  "}) == "Nothing changed: comment must not be empty."
    assert (await _incident(app, iid))["timeline"] == before["timeline"]


@pytest.mark.parametrize("data", [{}, {"csrf": "forged"}])
async def test_without_the_pages_csrf_token_nothing_changes(app, browser: Browser, data):
    await new_member(app, "alice")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    for action in ("ack", "close", "comment", "merge", "silence-similar"):
        status, _, body = await browser.post(f"/incidents/{iid}/{action}", {**data, "comment": "x", "into": "1",
                                                                              "minutes": "60"}, csrf=False)
        assert status == 403 and "Nothing was changed" in body, action
    incident = await _incident(app, iid)
    assert incident["progress"] == "Triggered"
    assert [t["kind"] for t in incident["timeline"] if t["source"] == "web"] == []


async def test_an_observer_sees_no_action_and_is_refused(app, browser: Browser):
    await new_member(app, "olive", role="observer")
    iid = await new_incident(app)
    await browser.sign_in("olive@example.com")
    body = (await browser.get(f"/incidents/{iid}"))[2]
    assert "You can read this incident but not act on it: olive is an observer" in body
    assert f'action="/incidents/{iid}/' not in body
    for action, data in (("ack", {}), ("comment", {"comment": "hi"}), ("silence-similar", {"minutes": "60"})):
        message = await _act(browser, iid, action, data)
        assert message == "Nothing changed: olive is an observer and cannot act on incidents.", action
    incident = await _incident(app, iid)
    assert incident["progress"] == "Triggered" and not [t for t in incident["timeline"] if t["source"] == "web"]
    assert (await app.get(f"/channels/{incident['channel_id']}/silence-rules"))["items"] == []


async def test_a_team_scoped_channel_refuses_members_outside_its_teams(app, browser: Browser):
    ann = await new_member(app, "ann")
    await new_member(app, "bob")
    team = await app.post("/teams", {"name": "db", "member_ids": [ann]})
    _, key = await app.channel_with_integration(name="prod", team_ids=[team["team_id"]], team_scoped=True)
    await app.push(key, {"event_status": "Critical", "title_rule": "db down", "alert_key": "db"})
    [item] = (await app.get("/incidents"))["items"]
    iid = item["incident_id"]
    await browser.sign_in("bob@example.com")
    refusal = ("bob cannot act on incidents of channel 'prod': it is team-scoped, so only admins and members of "
               "its teams ('db') can")
    assert refusal in html.unescape((await browser.get(f"/incidents/{iid}"))[2])
    assert await _act(browser, iid, "ack") == f"Nothing changed: {refusal}."
    assert (await _incident(app, iid))["progress"] == "Triggered"
    browser.forget()
    await browser.sign_in("ann@example.com")
    assert (await _act(browser, iid, "ack")).startswith("ann acknowledged")


async def test_the_page_offers_what_is_allowed_now(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")

    def forms(body: str) -> set[str]:
        return set(re.findall(rf'<form method="post" action="/incidents/{iid}/([a-z_-]+)"', body))

    assert forms((await browser.get(f"/incidents/{iid}"))[2]) == {
        "ack", "close", "escalate", "snooze", "reassign", "silence-similar", "merge", "comment"}
    await app.post(f"/incidents/{iid}/snooze", {"minutes": 30})
    assert forms((await browser.get(f"/incidents/{iid}"))[2]) == {
        "unack", "wake", "close", "escalate", "snooze", "reassign", "silence-similar", "merge", "comment"}
    await app.post(f"/incidents/{iid}/close")
    assert forms((await browser.get(f"/incidents/{iid}"))[2]) == {"reopen", "silence-similar", "comment"}


@pytest.mark.parametrize("progress, merged, snoozed, may_act, expected", [
    (Progress.TRIGGERED, False, False, True,
     ("ack", "snooze", "close", "reassign", "escalate", "comment", "merge", "silence_similar")),
    (Progress.PROCESSING, False, True, True,
     ("unack", "snooze", "wake", "close", "reassign", "escalate", "comment", "merge", "silence_similar")),
    (Progress.CLOSED, False, False, True, ("reopen", "comment", "silence_similar")),
    (Progress.CLOSED, True, False, True, ("comment",)),  # merged away: only a comment
    (Progress.TRIGGERED, False, False, False, ()),  # an observer, or outside a team-scoped channel
])
def test_offered(progress, merged, snoozed, may_act, expected):
    assert offered(progress, merged=merged, snoozed=snoozed, may_act=may_act) == expected
