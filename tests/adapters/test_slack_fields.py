"""Custom fields on a Slack card (issue 13 item 8): the card shows the values and a select per field, and a
choice in a select, signed as Slack signs it, goes through the click path to core.custom_fields.set_value,
writes the timeline and updates the card; a forged one changes nothing, an observer's choice is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.adapters.slack import field_choice, to_event
from tests.adapters.test_slack import ANN, BOB, SECRETS, SIGNING, slack, vigil  # noqa: F401  (fixtures)
from tests.fakes.slack import block_actions, signed_headers
from tests.kit import until


def test_a_field_choice_is_the_block_s_payload_and_the_chosen_positions() -> None:
    assert field_choice({"block_id": "vigil.field:fld:12:3:", "selected_option": {"value": "2"}}) == (
        "fld:12:3:", {"options": "2"})
    assert field_choice({"block_id": "vigil.field:fld:12:3:", "selected_options": [{"value": "0"}, {"value": "2"}]}) \
        == ("fld:12:3:", {"options": "0,2"})
    assert field_choice({"block_id": "vigil.field:fld:12:3:", "selected_options": []}) == ("fld:12:3:", {"options": ""})
    assert field_choice({"block_id": "vigil.actions", "selected_option": {"value": "2"}}) == ("", {"options": "2"})
    body = {"type": "block_actions", "user": {"id": ANN}, "actions": [
        {"action_id": "vigil.set_field", "block_id": "vigil.field:fld:12:3:", "type": "checkboxes",
         "selected_options": []}]}
    event = to_event(body)
    assert event is not None and (event.payload, dict(event.inputs)) == ("fld:12:3:", {"options": ""})
    body["actions"][0]["block_id"] = "vigil.actions"
    assert to_event(body) is None  # a field select outside its block names nothing


async def test_a_responder_sets_fields_from_the_slack_card(vigil, slack) -> None:  # noqa: F811
    app = vigil
    await app.post("/im-apps", {"platform": "slack", "name": "corp", "settings": {"base_url": slack.url},
                                "secrets": SECRETS})
    ann = await app.post("/members", {"name": "Ann", "email": "ann@example.com"})
    bob = await app.post("/members", {"name": "Bob", "email": "bob@example.com", "role": "observer"})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN})
    await app.post("/mapping-tables/slack/rows", {"member_id": bob["member_id"], "im_user_id": BOB})
    impact = await app.post("/custom-fields", {"name": "impact", "display_name": "Impact", "type": "single_select",
                                               "options": ["High", "Medium", "Low"], "default_value": "Low"})
    systems = await app.post("/custom-fields", {"name": "systems", "display_name": "Systems", "type": "multi_select",
                                                "options": ["db", "api", "web"]})
    await app.post("/custom-fields", {"name": "customer", "display_name": "Customer facing", "type": "checkbox"})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(slack.fake.calls("chat.postMessage")))
    await app.settle()
    [posted] = slack.fake.calls("chat.postMessage")
    channel = posted.args["channel"]
    [ts] = [t for (c, t) in slack.fake.messages if c == channel]
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]
    blocks = posted.args["attachments"][0]["blocks"]
    shown = next(b for b in blocks if b["type"] == "section" and "*Impact*\nLow" in json.dumps(b["fields"]).replace(
        "\\n", "\n"))
    assert len(shown["fields"]) == 1  # Impact (its default); the others are unset
    selects = {b["block_id"]: b["elements"][0] for b in blocks if b.get("block_id", "").startswith("vigil.field:")}
    impact_block = f"vigil.field:fld:{iid}:{impact['field_id']}:"
    systems_block = f"vigil.field:fld:{iid}:{systems['field_id']}:"
    assert selects[impact_block]["type"] == "static_select"
    assert selects[impact_block]["initial_option"]["text"]["text"] == "Low"
    assert selects[systems_block]["type"] == "multi_static_select" and "initial_options" not in selects[systems_block]

    async def choose(user: str, block: str, element: dict, secret: str = SIGNING):  # type: ignore[no-untyped-def]
        body = block_actions(user, {"block_id": block, "action_id": "vigil.set_field", **element}, channel=channel,
                             ts=ts, response_url=f"{slack.url}/response/{user}")
        return await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
            secret, body, int(datetime.now(UTC).timestamp())))

    high = {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "High"}, "value": "0"}}
    forged = await choose(ANN, impact_block, high, "not-the-signing-secret")
    assert forged.status == 401
    refused = await choose(BOB, impact_block, high)
    assert refused.status == 200
    await until(lambda: any("observer" in r.get("text", "") for r in slack.fake.responses))
    assert (await app.get(f"/incidents/{iid}"))["fields"]["impact"] == "Low"

    chosen = await choose(ANN, impact_block, high)
    assert chosen.status == 200 and await chosen.read() == b""
    await until(lambda: any(r.get("text", "").startswith("Ann set a custom field") for r in slack.fake.responses))
    picked = {"type": "multi_static_select", "selected_options": [
        {"text": {"type": "plain_text", "text": "web"}, "value": "2"},
        {"text": {"type": "plain_text", "text": "db"}, "value": "0"}]}
    await choose(ANN, systems_block, picked)
    customer_block = next(b for b in selects if selects[b]["type"] == "checkboxes")
    await choose(ANN, customer_block, {"type": "checkboxes", "selected_options": [
        {"text": {"type": "plain_text", "text": "Customer facing"}, "value": "0"}]})
    await until(lambda: len([r for r in slack.fake.responses if r.get("text", "").startswith("Ann set")]) == 3)
    detail = await app.get(f"/incidents/{iid}")
    assert detail["fields"] == {"impact": "High", "systems": ["db", "web"], "customer": True}
    entries = [t for t in detail["timeline"] if t["kind"] == "i_r_field"]
    assert [(t["detail"]["field"], t["detail"]["to"], t["actor_id"], t["source"]) for t in entries] == [
        ("impact", "High", ann["member_id"], "slack"), ("systems", ["db", "web"], ann["member_id"], "slack"),
        ("customer", True, ann["member_id"], "slack")]

    # every posted card follows (card_sync), its selects showing the new choices
    await app.settle()
    await until(lambda: bool(slack.fake.calls("chat.update")))
    card = slack.fake.messages[(channel, ts)]["attachments"][0]["blocks"]
    now = {b["block_id"]: b["elements"][0] for b in card if b.get("block_id", "").startswith("vigil.field:")}
    assert now[impact_block]["initial_option"]["text"]["text"] == "High"
    assert [o["text"]["text"] for o in now[systems_block]["initial_options"]] == ["db", "web"]
    assert "*Systems*\ndb, web" in json.dumps(card).replace("\\n", "\n")

    # clearing every option of the multi-select clears the field
    await choose(ANN, systems_block, {"type": "multi_static_select", "selected_options": []})

    async def cleared() -> bool:
        return "systems" not in (await app.get(f"/incidents/{iid}"))["fields"]

    await until(cleared)
    await app.settle()
