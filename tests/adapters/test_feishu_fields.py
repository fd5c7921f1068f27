"""Custom fields on a Feishu card (issue 13 item 8): a single-select field is a select_static on the card; a
choice, signed as Feishu signs callbacks, goes through the click path to core.custom_fields.set_value, and
the answer and every posted card show the new value."""

from __future__ import annotations

import json
from typing import Any

from tests.adapters.test_feishu import ENCRYPT, SECRETS, USER, VERIFY, feishu, vigil  # noqa: F401  (fixtures)
from tests.fakes.feishu import card_action, signed
from tests.kit import until


def _selects(card: dict[str, Any]) -> list[dict[str, Any]]:
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "select_static" and str(node.get("placeholder", {}).get("content", "")) != "Snooze…":
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(card)
    return found


async def test_a_responder_sets_a_select_field_from_the_feishu_card(vigil, feishu) -> None:  # noqa: F811
    from core.clock import utcnow

    app = vigil
    await app.post("/im-apps", {"platform": "feishu", "name": "corp", "settings": {"base_url": feishu.url},
                                "secrets": SECRETS})
    ann = await app.post("/members", {"name": "Ann"})
    await app.post("/mapping-tables/feishu/rows", {"member_id": ann["member_id"], "im_user_id": USER})
    impact = await app.post("/custom-fields", {"name": "impact", "display_name": "Impact", "type": "single_select",
                                               "options": ["High", "Medium", "Low"]})
    await app.post("/custom-fields", {"name": "systems", "display_name": "Systems", "type": "multi_select",
                                      "options": ["db", "api"]})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(feishu.fake.sent()))
    await app.settle()
    message_id = next(iter(feishu.fake.messages))
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]
    [select] = _selects(feishu.fake.messages[message_id]["card"])  # the multi-select is set on the page
    assert [o["value"] for o in select["options"]] == [f"fld:{iid}:{impact['field_id']}:{i}" for i in range(3)]
    assert "initial_option" not in select

    body, headers = signed(card_action(VERIFY, USER, option=select["options"][1]["value"], tag="select_static",
                                       message_id=message_id), ENCRYPT, int(utcnow().timestamp()))
    resp = await app.client.post("/im/feishu/callback", data=body, headers=headers)
    answer = await resp.json()
    assert resp.status == 200 and answer["toast"]["type"] == "success", answer
    assert answer["toast"]["content"].startswith("Ann set a custom field")
    assert "**Impact:** Medium" in json.dumps(answer["card"]["data"], ensure_ascii=False).replace("\\n", "\n")
    detail = await app.get(f"/incidents/{iid}")
    assert detail["fields"] == {"impact": "Medium"}
    [entry] = [t for t in detail["timeline"] if t["kind"] == "i_r_field"]
    assert (entry["actor_id"], entry["source"], entry["detail"]["to"]) == (ann["member_id"], "feishu", "Medium")

    await app.settle()
    await until(lambda: bool(feishu.fake.updates()))
    [select] = _selects(feishu.fake.messages[message_id]["card"])
    assert select["initial_option"] == f"fld:{iid}:{impact['field_id']}:1"
