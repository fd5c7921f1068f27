"""Interactive app cards in group chats (issue 13 item 13): an escalation level names group chats of an IM app,
the app posts the incident card there, any mapped member acts from it with their own role, and the card is
updated in place in the chat and in every direct message."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.feishu import FakeFeishu, card_action, signed
from tests.fakes.slack import FakeSlack, block_actions, button, signed_headers
from tests.kit import Api, ApiError, until

SLACK_TOKEN, SIGNING = "xoxb-group-cards", "group-cards-signing-secret"
ANN_SLACK, CARL_SLACK, STRANGER_SLACK = "U0ANN1234", "U0CARL567", "U0STRANGE"
FS_APP, FS_SECRET, FS_VERIFY, FS_ENCRYPT = "cli_group", "group-app-secret", "fs-verify-group", "fs-encrypt-group"
BOB_FS, DAN_FS, STRANGER_FS = "ou_" + "b" * 32, "ou_" + "d" * 32, "ou_" + "e" * 32
OPS_CHANNEL, OPS_CHAT = "C0OPS1234", "oc_ops0123456789"
ADMIN = "test-admin-token-0123456789abcdef"


@pytest.fixture
async def env(settings, aiohttp_client, aiohttp_server):  # type: ignore[no-untyped-def]
    from bot.server import create_app

    slack = FakeSlack(bot_token=SLACK_TOKEN, users={ANN_SLACK: "ann@example.com", CARL_SLACK: "carl@example.com",
                                                    STRANGER_SLACK: "x@example.com"}, channels={OPS_CHANNEL})
    feishu = FakeFeishu(app_id=FS_APP, app_secret=FS_SECRET, users={BOB_FS, DAN_FS}, chats={OPS_CHAT})
    slack_url = str((await aiohttp_server(slack.app())).make_url("")).rstrip("/")
    feishu_url = str((await aiohttp_server(feishu.app())).make_url("")).rstrip("/")
    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), ADMIN)
    s = await api.post("/im-apps", {"platform": "slack", "name": "s", "settings": {"base_url": slack_url},
                                    "secrets": {"bot_token": SLACK_TOKEN, "signing_secret": SIGNING}})
    f = await api.post("/im-apps", {"platform": "feishu", "name": "f", "settings": {"base_url": feishu_url},
                                    "secrets": {"app_id": FS_APP, "app_secret": FS_SECRET,
                                                "verification_token": FS_VERIFY, "encrypt_key": FS_ENCRYPT}})
    return api, slack, slack_url, feishu, s["im_app_id"], f["im_app_id"]


async def _people(app: Api) -> dict[str, int]:
    ids = {}
    for name, role, platform, im in (("Ann", "responder", "slack", ANN_SLACK), ("Bob", "responder", "feishu", BOB_FS),
                                     ("Carl", "observer", "slack", CARL_SLACK), ("Dan", "responder", "feishu", DAN_FS)):
        m = await app.post("/members", {"name": name, "role": role, "preferences": {"Critical": ["im"]}})
        await app.post(f"/mapping-tables/{platform}/rows", {"member_id": m["member_id"], "im_user_id": im})
        ids[name] = m["member_id"]
    return ids


async def _progress(app: Api, iid: int) -> str:
    return (await app.get(f"/incidents/{iid}"))["progress"]


async def test_group_cards_on_slack_and_feishu_act_with_the_clickers_own_role(env) -> None:
    app, slack, slack_url, feishu, slack_app, feishu_app = env
    ids = await _people(app)
    # Only Ann and Bob's team may act on the channel's incidents: Dan is a responder, but not in it.
    team = await app.post("/teams", {"name": "db", "member_ids": [ids["Ann"], ids["Bob"]]})
    cid, key = await app.channel_with_integration(team_ids=[team["team_id"]], team_scoped=True)
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ids["Ann"]]},
         "im_chats": [{"im_app_id": slack_app, "chat_id": OPS_CHANNEL},
                      {"im_app_id": feishu_app, "chat_id": OPS_CHAT}]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: len(slack.calls("chat.postMessage")) == 2 and feishu.messages)
    await app.settle()
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    # The card went into the Slack channel and the Feishu group chat, and Ann's DM; its group copies link to the
    # incident page without signing anyone in.
    posts = {p.args["channel"]: p.args for p in slack.calls("chat.postMessage")}
    assert set(posts) == {OPS_CHANNEL, "D" + ANN_SLACK[1:]}
    group = json.dumps(posts[OPS_CHANNEL])
    assert "db-1 is down" in group and f"ack:{iid}" in group and f"/incidents/{iid}|" in group
    [(fs_message, fs_sent)] = feishu.messages.items()
    assert fs_sent["chat_id"] == OPS_CHAT and [r.query for r in feishu.sent()] == [{"receive_id_type": "chat_id"}]
    assert f"ack:{iid}" in json.dumps(fs_sent["card"])
    deliveries = (await app.get(f"/incidents/{iid}/deliveries"))["items"]
    chats = sorted((d["im_app_id"], d["chat_id"], d["state"], d["person_id"]) for d in deliveries
                   if d["medium"] == "im_chat")
    assert chats == sorted([(slack_app, OPS_CHANNEL, "sent", None), (feishu_app, OPS_CHAT, "sent", None)])
    [slack_ts] = [t for (c, t) in slack.messages if c == OPS_CHANNEL]
    # Ann's own card signs her in; the incident page lists the group posts with the other deliveries.
    link = re.search(r'<(https?://[^|>]+\?[^|>]+)\|Open incident', json.dumps(posts["D" + ANN_SLACK[1:]])).group(1)
    signed_in = await app.client.get(urlsplit(link).path + "?" + urlsplit(link).query, allow_redirects=False)
    assert signed_in.status == 303
    page = await (await app.client.get(f"/incidents/{iid}")).text()
    assert page.count("IM app card in a group chat") == 2 and f"chat {OPS_CHANNEL}" in page and f"chat {OPS_CHAT}" in page

    async def slack_click(user: str, secret: str = SIGNING) -> int:
        body = block_actions(user, button("vigil.ack", f"ack:{iid}"), channel=OPS_CHANNEL, ts=slack_ts,
                             response_url=f"{slack_url}/response/{user}")
        resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
            secret, body, int(datetime.now(UTC).timestamp())))
        return resp.status

    async def feishu_click(user: str) -> dict[str, Any]:
        payload = card_action(FS_VERIFY, user, value={"action": f"ack:{iid}"}, message_id=fs_message,
                              chat_id=OPS_CHAT)
        body, headers = signed(payload, FS_ENCRYPT, int(datetime.now(UTC).timestamp()))
        resp = await app.client.post("/im/feishu/callback", data=body, headers=headers)
        assert resp.status == 200
        return await resp.json()

    # Forged, unlinked, observer, out of the team's scope: each is answered and changes nothing.
    assert await slack_click(ANN_SLACK, "forged-secret") == 401
    assert await slack_click(STRANGER_SLACK) == 200
    await until(lambda: len(slack.responses) == 1)
    assert "not linked" in slack.responses[0]["text"] and slack.responses[0]["response_type"] == "ephemeral"
    assert await slack_click(CARL_SLACK) == 200
    await until(lambda: any("Nothing changed" in r.get("text", "") for r in slack.responses[1:]))
    answer = await feishu_click(STRANGER_FS)
    assert answer["toast"]["type"] == "error" and "not linked" in answer["toast"]["content"]
    answer = await feishu_click(DAN_FS)
    assert answer["toast"]["type"] == "error" and answer["toast"]["content"].startswith("Nothing changed")
    assert await _progress(app, iid) == "Triggered"
    await app.settle()
    assert slack.calls("chat.update") == [] and feishu.updates() == []

    # Bob, linked on Feishu and in the team, acknowledges from the group card.
    answer = await feishu_click(BOB_FS)
    assert answer["toast"] == {"type": "success", "content": f"Bob acknowledged incident #{inc['num']}."}
    assert "Acknowledged by Bob via Feishu" in json.dumps(answer["card"]["data"], ensure_ascii=False)
    assert await _progress(app, iid) == "Processing"
    [ack] = [t for t in (await app.get(f"/incidents/{iid}"))["timeline"] if t["kind"] == "i_ack"]
    assert ack["actor_id"] == ids["Bob"] and ack["source"] == "feishu"

    # Card sync updates the card in place everywhere: the Slack channel, Ann's DM and the Feishu group chat.
    await app.settle()
    await until(lambda: {u.args["channel"] for u in slack.calls("chat.update")} == set(posts) and feishu.updates())
    for channel, ts in slack.messages:
        text = json.dumps(slack.messages[(channel, ts)]["attachments"])
        assert "Acknowledged by Bob via Feishu" in text and "vigil.ack" not in text
    assert "Acknowledged by Bob via Feishu" in json.dumps(feishu.messages[fs_message]["card"], ensure_ascii=False)

    # Ann, linked on Slack, closes it from the channel's card.
    close = re.search(r'"(cls:\d+)"', json.dumps(slack.messages[(OPS_CHANNEL, slack_ts)])).group(1)
    body = block_actions(ANN_SLACK, button("vigil.close", close), channel=OPS_CHANNEL, ts=slack_ts,
                         response_url=f"{slack_url}/response/ann-close")
    resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
        SIGNING, body, int(datetime.now(UTC).timestamp())))
    assert resp.status == 200
    await until(lambda: _closed(app, iid))
    await app.settle()
    await until(lambda: "Closed by Ann via Slack" in json.dumps(feishu.messages[fs_message]["card"],
                                                               ensure_ascii=False))
    # A group card is no member's page: nothing was reported undeliverable, nobody was handed over.
    kinds = {t["kind"] for t in (await app.get(f"/incidents/{iid}"))["timeline"]}
    assert not kinds & {"page_undeliverable", "fallback", "delivery_failed"}


async def _closed(app: Api, iid: int) -> bool:
    return await _progress(app, iid) == "Closed"


async def test_a_chat_the_app_cannot_post_to_fails_its_delivery_only(env) -> None:
    app, slack, _url, feishu, slack_app, feishu_app = env
    ids = await _people(app)
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ids["Ann"]]},
         "im_chats": [{"im_app_id": slack_app, "chat_id": "C0NOTIN99"}, {"im_app_id": feishu_app, "chat_id": OPS_CHAT}]}]})
    feishu.fail_next(503, 1, "service unavailable")  # once: the group post is retried, then sent
    await app.push(key, {"event_status": "Critical", "title_rule": "db-2 is down", "alert_key": "db-2"})
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    async def settled() -> bool:
        states = {d["chat_id"]: d["state"] for d in (await app.get(f"/incidents/{iid}/deliveries"))["items"]
                  if d["medium"] == "im_chat"}
        return states == {"C0NOTIN99": "failed", OPS_CHAT: "sent"}

    await until(settled, timeout=30)
    deliveries = (await app.get(f"/incidents/{iid}/deliveries"))["items"]
    [bad] = [d for d in deliveries if d["chat_id"] == "C0NOTIN99"]
    assert "channel_not_found" in bad["last_error"] and bad["attempts"] == 1
    [good] = [d for d in deliveries if d["chat_id"] == OPS_CHAT]
    assert good["attempts"] == 2
    timeline = (await app.get(f"/incidents/{iid}"))["timeline"]
    assert any(t["kind"] == "delivery_failed" and t["detail"]["delivery_id"] == bad["delivery_id"]
               and t["detail"]["chat_id"] == "C0NOTIN99" for t in timeline)
    assert any(t["kind"] == "delivery_retry" and t["detail"].get("chat_id") == OPS_CHAT for t in timeline)
    # A failed group post is no member's page: no fallback, no "undeliverable", no early escalation.
    assert not {t["kind"] for t in timeline} & {"page_undeliverable", "fallback"}
    assert [d["person_id"] for d in deliveries if d["medium"] == "im"] == [ids["Ann"]]


@pytest.mark.parametrize(("chat", "field", "says"), [
    ({"im_app_id": 999, "chat_id": OPS_CHANNEL}, "levels[0].im_chats[0].im_app_id", "no im app with id 999"),
    ({"im_app_id": "slack", "chat_id": "U0ANN1234"}, "levels[0].im_chats[0].chat_id", "names a user"),
    ({"im_app_id": "slack", "chat_id": "ops"}, "levels[0].im_chats[0].chat_id", "is not a Slack channel id"),
    ({"im_app_id": "feishu", "chat_id": BOB_FS}, "levels[0].im_chats[0].chat_id", "names a user"),
    ({"im_app_id": "feishu", "chat_id": OPS_CHANNEL}, "levels[0].im_chats[0].chat_id", "is not a Feishu"),
])
async def test_a_level_naming_a_bad_group_chat_is_refused(env, chat, field, says) -> None:
    app, _slack, _url, _feishu, slack_app, feishu_app = env
    chat = {**chat, "im_app_id": {"slack": slack_app, "feishu": feishu_app}.get(chat["im_app_id"], chat["im_app_id"])}
    cid, _key = await app.channel_with_integration()
    with pytest.raises(ApiError) as err:
        await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [{"im_chats": [chat]}]})
    assert err.value.status == 400 and field in json.dumps(err.value.body) and says in json.dumps(err.value.body)
    assert (await app.get(f"/channels/{cid}/escalation-rules"))["items"] == []


@pytest.mark.parametrize("level", [
    {"im_chats": [{"im_app_id": 1, "chat_id": "C0OPS1234"}, {"im_app_id": 1, "chat_id": "C0OPS1234"}]},
    {"im_chats": [{"im_app_id": 1, "chat_id": "C0 OPS"}]},
    {"im_chats": [{"im_app_id": 1, "chat_id": ""}]},
    {"im_chats": [{"chat_id": "C0OPS1234"}]},
])
async def test_a_malformed_im_chats_list_is_refused(env, level) -> None:
    app = env[0]
    cid, _key = await app.channel_with_integration()
    with pytest.raises(ApiError) as err:
        await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [level]})
    assert err.value.status == 400 and "im_chats" in json.dumps(err.value.body)


async def test_a_level_of_group_chats_only_pages_nobody_and_says_where_it_posted(env) -> None:
    app, slack, _url, _feishu, slack_app, _feishu_app = env
    cid, key = await app.channel_with_integration()
    rule = await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"im_chats": [{"im_app_id": slack_app, "chat_id": OPS_CHANNEL}]}]})
    assert rule["levels"][0]["im_chats"] == [{"im_app_id": slack_app, "chat_id": OPS_CHANNEL}]
    await app.push(key, {"event_status": "Critical", "title_rule": "db-3 is down", "alert_key": "db-3"})
    await until(lambda: bool(slack.calls("chat.postMessage")))
    await app.settle()
    [inc] = (await app.get("/incidents"))["items"]
    timeline = (await app.get(f"/incidents/{inc['incident_id']}"))["timeline"]
    [notify] = [t for t in timeline if t["kind"] == "i_notify"]
    assert notify["detail"]["im_chats"] == [{"im_app_id": slack_app, "chat_id": OPS_CHANNEL}]
    assert not any(t["kind"] == "escalation_empty" for t in timeline)
    assert re.search(r"db-3 is down", json.dumps(slack.calls("chat.postMessage")[0].args))
