"""Issue 13 item 4 end to end: a standard event's images reach the Slack card (image blocks), the Feishu card
(links: Feishu shows no image by URL), the e-mail (real SMTP, aiosmtpd: <img> in the HTML part) and the
outgoing incident and alert webhooks (a local receiver). An http image or an image key is shown nowhere; the
webhooks pass the alert's images on as given."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from tests.fakes.feishu import FakeFeishu
from tests.fakes.slack import FakeSlack
from tests.kit import Api, until

SLACK_TOKEN, SIGNING, ANN_SLACK = "xoxb-images", "images-signing-secret", "U0ANN1234"
FS_APP, FS_SECRET, BOB_FS = "cli_images", "images-app-secret", "ou_" + "b" * 32
P99 = "https://grafana.example.com/render/p99.png?orgId=1&panelId=2"
P99_LINK = "https://grafana.example.com/d/p99?viewPanel=2"
IMAGES = [{"alt": "p99 <graph>", "src": P99, "href": P99_LINK},
          {"alt": "old graph", "src": "http://legacy.example.com/g.png"},
          {"alt": "uploaded", "src": "img_v2_0123456789abcdef"}]


class Receiver:
    def __init__(self) -> None:
        self.got: list[dict] = []

    async def hook(self, request: web.Request) -> web.Response:
        self.got.append(await request.json())
        return web.Response(status=200)


@pytest.fixture
async def env(settings, aiohttp_client, aiohttp_server, inbox):
    from bot.server import create_app

    box, port = inbox
    slack = FakeSlack(bot_token=SLACK_TOKEN, users={ANN_SLACK: "ann@example.com"})
    feishu = FakeFeishu(app_id=FS_APP, app_secret=FS_SECRET, users={BOB_FS})
    receiver = Receiver()
    sink = web.Application()
    sink.router.add_post("/hook", receiver.hook)
    slack_url = str((await aiohttp_server(slack.app())).make_url("")).rstrip("/")
    feishu_url = str((await aiohttp_server(feishu.app())).make_url("")).rstrip("/")
    hook_url = str((await aiohttp_server(sink)).make_url("/hook"))
    conf = settings.model_copy(update={
        "secret_key": "k",
        "email": {"host": "127.0.0.1", "port": port, "from_addr": "vigil@example.com", "start_tls": False}})
    api = Api(await aiohttp_client(create_app(conf)), "test-admin-token-0123456789abcdef")
    await api.post("/im-apps", {"platform": "slack", "name": "s", "settings": {"base_url": slack_url},
                                "secrets": {"bot_token": SLACK_TOKEN, "signing_secret": SIGNING}})
    await api.post("/im-apps", {"platform": "feishu", "name": "f", "settings": {"base_url": feishu_url},
                                "secrets": {"app_id": FS_APP, "app_secret": FS_SECRET, "verification_token": "v"}})
    await api.post("/webhooks", {"name": "incidents", "url": hook_url, "event_types": ["i_new"]})
    await api.post("/webhooks", {"name": "alerts", "kind": "alert", "url": hook_url, "event_types": ["a_new"]})
    return api, slack, feishu, box, receiver


async def test_images_reach_cards_email_and_webhooks(env):
    app, slack, feishu, box, receiver = env
    ann = await app.post("/members", {"name": "Ann", "preferences": {"Critical": ["im"]}})
    bob = await app.post("/members", {"name": "Bob", "preferences": {"Critical": ["im"]}})
    cat = await app.post("/members", {"name": "Cat", "email": "cat@example.com", "preferences": {"Critical": ["email"]}})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN_SLACK})
    await app.post("/mapping-tables/feishu/rows", {"member_id": bob["member_id"], "im_user_id": BOB_FS})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"], bob["member_id"], cat["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "p99 latency", "alert_key": "lat",
                         "images": IMAGES})
    await until(lambda: slack.calls("chat.postMessage") and feishu.messages and box.messages
                and len(receiver.got) >= 2, timeout=30)
    await app.settle()

    # Slack: an image block for the https image, its link in a context line; nothing else of the three
    [posted] = slack.calls("chat.postMessage")
    attachments = posted.args["attachments"]
    blocks = (json.loads(attachments) if isinstance(attachments, str) else attachments)[0]["blocks"]
    assert [(b["image_url"], b["alt_text"]) for b in blocks if b["type"] == "image"] == [(P99, "p99 <graph>")]
    assert f"<{P99_LINK}|p99 &lt;graph&gt;>" in json.dumps(blocks)
    # Feishu: a link to the image (Feishu shows an image only by img_key of an upload)
    [message] = feishu.messages.values()
    card = json.dumps(message["card"], ensure_ascii=False)
    assert f"[Image: p99 &lt;graph&gt;]({P99}) · [Open link]({P99_LINK})" in card
    for shown in (json.dumps(posted.args), card):
        assert "legacy.example.com" not in shown and "img_v2_" not in shown

    # E-mail: the image in the HTML part, linked to its href; listed in the text part
    [mail] = [m for m in box.messages if "cat@example.com" in str(m["To"])]
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert (f'<a href="{P99_LINK}"><img src="{P99.replace("&", "&amp;")}" alt="p99 &lt;graph&gt;"') in html
    assert f"- p99 <graph>: {P99} (link: {P99_LINK})" in text
    assert "legacy.example.com" not in html + text and "img_v2_" not in html + text

    # Webhooks: the alert's images as the event gave them (an image key or http URL is the receiver's to read)
    stored = [{"src": P99, "alt": "p99 <graph>", "href": P99_LINK},
              {"src": "http://legacy.example.com/g.png", "alt": "old graph", "href": ""},
              {"src": "img_v2_0123456789abcdef", "alt": "uploaded", "href": ""}]
    [incident_event] = [g for g in receiver.got if g["event_type"] == "i_new"]
    [alert_event] = [g for g in receiver.got if g["event_type"] == "a_new"]
    assert incident_event["incident"]["images"] == stored
    assert alert_event["alert"]["images"] == stored
    assert incident_event["incident"]["title"] == "p99 latency" and alert_event["alert"]["alert_key"] == "lat"

    # A template override sees the images an incident shows (the preview renders it as a page would)
    preview = await app.post("/templates/preview", {
        "medium": "sms", "incident_id": int(incident_event["incident"]["incident_id"]),
        "source": "{% for i in images %}{{ i.alt }} {{ i.src }} {{ i.href }};{% endfor %}"})
    assert (preview["used_fallback"], preview["text"]) == (False, f"p99 <graph> {P99} {P99_LINK};")


async def test_a_slack_card_whose_image_slack_cannot_download_goes_with_links(env):
    # Slack fetches every image_url first and refuses the whole message when one fails (an intranet Grafana)
    app, slack, _feishu, _box, _receiver = env
    slack.unreachable_images.add(P99)
    ann = await app.post("/members", {"name": "Ann", "preferences": {"Critical": ["im"]}})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN_SLACK})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "p99 latency", "alert_key": "lat",
                         "images": IMAGES})
    await until(lambda: slack.messages, timeout=30)
    [message] = slack.messages.values()
    sent = json.dumps(message)
    assert '"type": "image"' not in sent and f"<{P99}|Image: p99 &lt;graph&gt;>" in sent
    assert len(slack.calls("chat.postMessage")) == 2  # refused with the image, taken with the link
    [inc] = (await app.get("/incidents"))["items"]
    deliveries = (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"]
    assert [(d["medium"], d["state"]) for d in deliveries] == [("im", "sent")]
    # the card's update after an ack goes the same way
    await app.post(f"/incidents/{inc['incident_id']}/ack", {"member_id": ann["member_id"]})
    await until(lambda: slack.calls("chat.update") and "Processing" in json.dumps(list(slack.messages.values())),
                timeout=30)
    assert f"<{P99}|Image: p99 &lt;graph&gt;>" in json.dumps(list(slack.messages.values()))
