"""One incident, cards on two platforms: a click on Slack updates the Feishu card in place too."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from tests.fakes.feishu import FakeFeishu
from tests.fakes.slack import FakeSlack, block_actions, button, signed_headers
from tests.kit import Api, until

SLACK_TOKEN, SIGNING, ANN_SLACK = "xoxb-cross-platform", "cross-signing-secret", "U0ANN1234"
FS_APP, FS_SECRET, BOB_FS = "cli_cross", "cross-app-secret", "ou_" + "b" * 32


@pytest.fixture
async def env(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    slack = FakeSlack(bot_token=SLACK_TOKEN, users={ANN_SLACK: "ann@example.com"})
    feishu = FakeFeishu(app_id=FS_APP, app_secret=FS_SECRET, users={BOB_FS})
    slack_url = str((await aiohttp_server(slack.app())).make_url("")).rstrip("/")
    feishu_url = str((await aiohttp_server(feishu.app())).make_url("")).rstrip("/")
    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), "test-admin-token-0123456789abcdef")
    await api.post("/im-apps", {"platform": "slack", "name": "s", "settings": {"base_url": slack_url},
                                "secrets": {"bot_token": SLACK_TOKEN, "signing_secret": SIGNING}})
    await api.post("/im-apps", {"platform": "feishu", "name": "f", "settings": {"base_url": feishu_url},
                                "secrets": {"app_id": FS_APP, "app_secret": FS_SECRET, "verification_token": "v"}})
    return api, slack, feishu


async def test_click_on_slack_updates_the_feishu_card(env):
    app, slack, feishu = env
    ann = await app.post("/members", {"name": "Ann", "preferences": {"Critical": ["im"]}})
    bob = await app.post("/members", {"name": "Bob", "preferences": {"Critical": ["im"]}})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN_SLACK})
    await app.post("/mapping-tables/feishu/rows", {"member_id": bob["member_id"], "im_user_id": BOB_FS})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"], bob["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: slack.calls("chat.postMessage") and feishu.messages)
    await app.settle()
    [posted] = slack.calls("chat.postMessage")
    channel = posted.args["channel"]
    [ts] = [t for (c, t) in slack.messages if c == channel]
    value = re.search(r"ack:\d+", json.dumps(posted.args)).group(0)
    body = block_actions(ANN_SLACK, button("vigil.ack", value), channel=channel, ts=ts)
    resp = await app.client.post("/im/slack/callback", data=body,
                                 headers=signed_headers(SIGNING, body, int(datetime.now(UTC).timestamp())))
    assert resp.status == 200
    [inc] = (await app.get("/incidents"))["items"]
    await until(lambda: _async_progress(app, inc["incident_id"]))
    # the Feishu card (Bob's) and the Slack card (Ann's) are both updated by card sync
    await until(lambda: any(r.method == "PATCH" for r in feishu.requests), timeout=30)
    await until(lambda: slack.calls("chat.update"), timeout=30)
    patched = [r for r in feishu.requests if r.method == "PATCH"][-1]
    assert "Ann" in json.dumps(patched.body, ensure_ascii=False)


async def _async_progress(app, iid):
    return (await app.get(f"/incidents/{iid}"))["progress"] == "Processing"
