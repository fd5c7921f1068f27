"""A card sent in a direct message links to the incident signed in as its recipient (no sign-in wall)."""

from __future__ import annotations

import json
import re

from tests.fakes.slack import FakeSlack
from tests.kit import Api, until
from tests.web.conftest import Browser

SLACK_TOKEN, SIGNING, ANN_SLACK = "xoxb-web-links", "web-links-signing-secret", "U0ANN5678"


async def test_direct_card_link_signs_its_member_in(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    slack = FakeSlack(bot_token=SLACK_TOKEN, users={ANN_SLACK: "ann@example.com"})
    slack_url = str((await aiohttp_server(slack.app())).make_url("")).rstrip("/")
    app = Api(await aiohttp_client(create_app(settings)), "test-admin-token-0123456789abcdef")
    await app.post("/im-apps", {"platform": "slack", "name": "s", "settings": {"base_url": slack_url},
                                "secrets": {"bot_token": SLACK_TOKEN, "signing_secret": SIGNING}})
    ann = await app.post("/members", {"name": "Ann", "email": "ann@example.com",
                                      "preferences": {"Critical": ["im"]}})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN_SLACK})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: slack.calls("chat.postMessage"))
    [posted] = slack.calls("chat.postMessage")
    link = re.search(r"http://vigil\.test/incidents/\d+\?t=[0-9.]+[A-Za-z0-9_-]+", json.dumps(posted.args)).group(0)

    body = await Browser(app.client).open_link(link)
    assert "db-1 is down" in body and ">Ann<" in body
