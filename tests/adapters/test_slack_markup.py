"""End to end: an alert pushed with Slack control sequences in its title reaches Slack inert, while the
card's own link to the incident still works."""

from __future__ import annotations

import json
import re

import pytest

from tests.adapters.test_slack import ANN, SECRETS, slack  # noqa: F401 - `slack` is the fake's fixture
from tests.kit import Api, until

TITLE = "db-1 down <!channel> <!here> <@U0BOB5678> <https://evil.example|click here> & more"


@pytest.fixture
async def app(settings, aiohttp_client) -> Api:  # type: ignore[no-untyped-def]
    """A running Vigil that can store IM app secrets (they are encrypted with the secret key)."""
    from bot.server import create_app

    client = await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"})))
    return Api(client, settings.admin_token)


async def test_a_pushed_alert_with_mentions_and_links_in_its_title_arrives_escaped(app, slack) -> None:  # noqa: F811
    out = await app.post("/im-apps", {"platform": "slack", "name": "corp", "settings": {"base_url": slack.url},
                                      "secrets": SECRETS})
    assert out["problems"] == []
    ann = await app.post("/members", {"name": "Ann", "email": "ann@example.com"})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": TITLE, "alert_key": "db-1",
                         "description": "see [docs](http://evil.example) <!subteam^S1>",
                         "labels": {"owner": "<@U0BOB5678>"}})
    await until(lambda: bool(slack.fake.calls("chat.postMessage")))
    await app.settle()
    [posted] = slack.fake.calls("chat.postMessage")

    # The notification text and every mrkdwn string: no raw "<" but the card's own link and date. (The
    # header block is plain_text, which Slack never reads as markup, so it shows the title as sent.)
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U0BOB5678&gt; &lt;https://evil.example|click here&gt; &amp; more" \
        in posted.args["text"]
    [attachment] = posted.args["attachments"]
    assert "<" not in posted.args["text"] and "<" not in attachment["fallback"]
    mrkdwn = "\n".join(re.findall(r'"type": "mrkdwn", "text": ("(?:[^"\\]|\\.)*")', json.dumps(attachment)))
    raw = re.findall(r"<[^>]*>", mrkdwn)
    assert raw and all(r.startswith(("<http://vigil.test/incidents/", "<!date^")) for r in raw), raw
    assert "&lt;!subteam^S1&gt;" in mrkdwn and "&lt;@U0BOB5678&gt;" in mrkdwn
    [incident] = (await app.get("/incidents"))["items"]
    assert incident["title"] == TITLE  # stored as sent; escaped only on the way out
