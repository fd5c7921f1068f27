"""Custom actions and the timeline from the card (issue 13 item 15), end to end: a running Vigil posts its cards to
the Slack and Feishu fakes through the real SDKs; clicks are signed exactly as each platform signs them and sent over
HTTP; a custom action POSTs to a local HTTP sink as it does from the web page, and its outcome goes on the timeline
with the platform as its source. A forged click runs nothing; a clicker acts and reads with their own role and team
scope. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aiohttp import web

from tests.fakes import feishu as fs
from tests.fakes import slack as sl
from tests.kit import Api, until

ANN, BOB, CAT, OLA = "U0ANN1234", "U0BOB5678", "U0CAT4242", "U0OLA7777"  # Slack users
FS_ANN, FS_DEE = "ou_7d8a6e6df7621556ce0d21922b676706", "ou_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SLACK = {"bot_token": "xoxb-1111-2222-SlackBotTokenQ7w", "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}
FEISHU = {"app_id": "cli_a1b2c3d4e5f60718", "app_secret": "fs-app-secret-Qm4Zx81Lw0Tr",
          "verification_token": "fs-verify-token-Hn3Kq9Ws", "encrypt_key": "fs-encrypt-key-Pz7Vb2Yc"}


class Sink:
    """The custom action's endpoint: records what it was sent."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/restart", self.hook)
        return app

    async def hook(self, request: web.Request) -> web.Response:
        self.got.append(await request.json())
        return web.Response(status=200)


@pytest.fixture
async def world(settings, aiohttp_client, aiohttp_server):  # type: ignore[no-untyped-def]
    from bot.server import create_app

    slack = sl.FakeSlack(bot_token=SLACK["bot_token"], users={
        ANN: "ann@example.com", BOB: "bob@example.com", CAT: "cat@example.com", OLA: "ola@example.com"})
    feishu = fs.FakeFeishu(app_id=FEISHU["app_id"], app_secret=FEISHU["app_secret"], users={FS_ANN, FS_DEE})
    sink = Sink()
    slack_url = str((await aiohttp_server(slack.app())).make_url("")).rstrip("/")
    feishu_url = str((await aiohttp_server(feishu.app())).make_url("")).rstrip("/")
    sink_url = str((await aiohttp_server(sink.app())).make_url("/restart"))
    app = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
              settings.admin_token)
    for platform, url, secrets in (("slack", slack_url, SLACK), ("feishu", feishu_url, FEISHU)):
        out = await app.post("/im-apps", {"platform": platform, "name": "corp", "settings": {"base_url": url},
                                          "secrets": secrets})
        assert out["problems"] == []
    return app, slack, slack_url, feishu, sink, sink_url


async def people(app: Api) -> dict[str, int]:
    """Ann and Ola the observer are in the channel's team, Cat is not; Bob is not linked. Dee is on Feishu."""
    ids = {}
    for name, role in (("Ann", "responder"), ("Cat", "responder"), ("Ola", "observer"), ("Dee", "responder")):
        ids[name] = (await app.post("/members", {"name": name, "role": role}))["member_id"]
    for name, user in (("Ann", ANN), ("Cat", CAT), ("Ola", OLA)):
        await app.post("/mapping-tables/slack/rows", {"member_id": ids[name], "im_user_id": user})
    await app.post("/mapping-tables/feishu/rows", {"member_id": ids["Dee"], "im_user_id": FS_DEE})
    ids["team"] = (await app.post("/teams", {"name": "db", "member_ids": [ids["Ann"], ids["Ola"]]}))["team_id"]
    return ids


def slack_click(user: str, action: dict[str, Any], url: str, channel: str, ts: str,
                secret: str = SLACK["signing_secret"]) -> tuple[bytes, dict[str, str]]:
    # Slack gives every interaction its own trigger_id, so two clicks on one button are two bodies.
    body = sl.block_actions(user, action, response_url=f"{url}/response/{user}", channel=channel, ts=ts,
                            trigger_id=f"{time.time_ns()}.4711.{user.lower()}")
    return body, sl.signed_headers(secret, body, int(time.time()))


async def timeline(app: Api, iid: int) -> list[dict[str, Any]]:
    return (await app.get(f"/incidents/{iid}"))["timeline"]


async def test_custom_actions_and_the_timeline_from_slack_and_feishu_cards(world) -> None:
    app, slack, slack_url, feishu, sink, sink_url = world
    ids = await people(app)
    cid, key = await app.channel_with_integration(team_ids=[ids["team"]], team_scoped=True)
    action = await app.post(f"/channels/{cid}/custom-actions", {"name": "Restart orders", "url": sink_url})
    aid = action["action_id"]
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ids["Ann"], ids["Dee"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "orders are stuck", "alert_key": "orders"})
    await until(lambda: bool(slack.calls("chat.postMessage")) and bool(feishu.sent()))
    await app.settle()
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    # The channel's custom action and the Timeline button are on the card each platform got.
    [posted] = slack.calls("chat.postMessage")
    channel, ts = posted.args["channel"], next(t for (c, t) in slack.messages if c == posted.args["channel"])
    more = next(b for b in posted.args["attachments"][0]["blocks"] if b.get("block_id") == "vigil.more")
    custom_button, timeline_button = more["elements"]
    assert (custom_button["action_id"], custom_button["value"]) == (f"vigil.custom.{aid}", f"cst:{iid}:{aid}")
    assert custom_button["text"]["text"] == "Restart orders"
    assert (timeline_button["action_id"], timeline_button["value"]) == ("vigil.timeline", f"tl:{iid}")
    feishu_card = json.loads(feishu.sent()[0].body["content"])
    # Ann reads her Feishu too (one IM medium pages her on one platform: Slack).
    await app.post("/mapping-tables/feishu/rows", {"member_id": ids["Ann"], "im_user_id": FS_ANN})
    assert f'"action": "cst:{iid}:{aid}"' in json.dumps(feishu_card) and f'"action": "tl:{iid}"' in json.dumps(
        feishu_card)

    async def on_slack(user: str, element: dict[str, Any], secret: str = SLACK["signing_secret"]) -> int:
        body, headers = slack_click(user, sl.button(element["action_id"], element["value"]), slack_url, channel, ts,
                                    secret)
        resp = await app.client.post("/im/slack/callback", data=body, headers=headers)
        assert resp.status != 200 or await resp.read() == b""  # Slack is answered at once; the rest follows
        return resp.status

    # A forged click runs nothing.
    assert await on_slack(ANN, custom_button, secret="not-the-signing-secret") == 401
    # Bob's Slack account is linked to no member; Cat is outside the team-scoped channel's team; Ola only observes.
    def ephemeral() -> list[str]:
        return [r["text"] for r in slack.responses if r.get("response_type") == "ephemeral"]

    for user in (BOB, CAT, OLA):
        answered = len(ephemeral())
        assert await on_slack(user, custom_button) == 200
        # Wait for this click's own answer: a card update through response_url may land first.
        await until(lambda: len(ephemeral()) > answered)  # noqa: B023
    texts = ephemeral()
    assert "not linked" in texts[0] and "Cat cannot act" in texts[1] and "observer" in texts[2]
    assert sink.got == [] and not [t for t in await timeline(app, iid) if t["kind"] == "i_custom"]

    # Ann runs it from Slack: the sink gets the incident, as from the web page, and the timeline says so.
    answered = len(slack.responses)
    assert await on_slack(ANN, custom_button) == 200
    await until(lambda: len([r for r in slack.responses[answered:] if r.get("response_type") == "ephemeral"]) == 1)
    [sent] = sink.got
    assert sent["event_type"] == "i_custom" and sent["incident"]["incident_id"] == str(iid)
    assert sent["person"]["person_name"] == "Ann"
    [notice] = [r for r in slack.responses[answered:] if r.get("response_type") == "ephemeral"]
    assert notice["text"].startswith(f"Ann ran Restart orders on incident #{inc['num']}: HTTP 200")
    [entry] = [t for t in await timeline(app, iid) if t["kind"] == "i_custom"]
    assert (entry["actor_id"], entry["source"], entry["detail"]["ok"]) == (ids["Ann"], "slack", True)

    # And from Feishu: the card callback answers with a toast; the timeline records the platform.
    async def on_feishu(packed: str, **forged: str) -> tuple[int, dict[str, Any]]:
        body, headers = fs.signed(fs.card_action(FEISHU["verification_token"], FS_ANN, value={"action": packed}),
                                  FEISHU["encrypt_key"], int(time.time()))
        resp = await app.client.post("/im/feishu/callback", data=body, headers={**headers, **forged})
        return resp.status, (await resp.json())

    status, _ = await on_feishu(f"cst:{iid}:{aid}", **{"X-Lark-Signature": "ab" * 32})
    assert status == 401 and len(sink.got) == 1
    status, answer = await on_feishu(f"cst:{iid}:{aid}")
    assert status == 200 and answer["toast"]["type"] == "success" and "Ann ran Restart orders" in str(answer)
    assert len(sink.got) == 2 and sink.got[1]["person"]["person_name"] == "Ann"
    customs = [t for t in await timeline(app, iid) if t["kind"] == "i_custom"]
    assert [(t["source"], t["actor_id"]) for t in customs] == [("slack", ids["Ann"]), ("feishu", ids["Ann"])]
    # A custom action of another channel is refused, and runs nothing.
    other, _ = await app.channel_with_integration(name="other")
    elsewhere = (await app.post(f"/channels/{other}/custom-actions", {"name": "x", "url": sink_url}))["action_id"]
    status, answer = await on_feishu(f"cst:{iid}:{elsewhere}")
    assert answer["toast"]["type"] == "error" and "does not belong" in answer["toast"]["content"]
    assert len(sink.got) == 2

    # Timeline on Slack: a modal for the clicker, opened with the interaction's trigger_id, newest entry first.
    assert await on_slack(ANN, timeline_button) == 200
    await until(lambda: bool(slack.calls("views.open")))
    [opened] = slack.calls("views.open")
    assert opened.args["trigger_id"].endswith(".4711.u0ann1234")
    view = opened.args["view"]
    assert view["type"] == "modal" and view["title"]["text"] == f"Timeline #{inc['num']}"
    words = [b["text"]["text"] for b in view["blocks"][1:] if b["type"] == "section"]
    assert words[0] == "*Custom action by Ann via Feishu*" and words[1] == "*Custom action by Ann via Slack*"
    assert words[-1] == "*Incident triggered*"
    # Ola observes but may read; Cat may not read a team-scoped channel's incident; Bob is not linked.
    assert await on_slack(OLA, timeline_button) == 200
    await until(lambda: len(slack.calls("views.open")) == 2)
    answered = len(slack.responses)
    for user in (CAT, BOB):
        assert await on_slack(user, timeline_button) == 200
    await until(lambda: len([r for r in slack.responses[answered:] if r.get("response_type") == "ephemeral"]) == 2)
    refusals = " ".join(r["text"] for r in slack.responses[answered:] if r.get("response_type") == "ephemeral")
    assert "Cat cannot act" in refusals and "not linked" in refusals
    assert len(slack.calls("views.open")) == 2

    # Timeline on Feishu: the callback answers with the card showing its timeline section.
    status, answer = await on_feishu(f"tl:{iid}")
    assert status == 200 and "toast" not in answer
    section = next(e["content"] for e in answer["card"]["data"]["body"]["elements"]
                   if e.get("tag") == "markdown" and e["content"].startswith("**Timeline**"))
    lines = section.splitlines()
    assert "Custom action by Ann via Feishu" in lines[1] and "Incident triggered" in lines[-2]
    assert lines[-1].startswith("[The whole timeline](") and lines[-1].endswith(f"/incidents/{iid}#timeline)")
    await app.settle()


async def test_a_custom_action_click_runs_it_on_every_platform(vigil, kit, aiohttp_server) -> None:
    """The same click on each platform's card (signed as that platform signs it) runs the action once; the
    timeline says which platform it came from and who clicked."""
    from tests.chat.test_callback_replay import click, incident_clicked_by_ann

    app, sink = vigil, Sink()
    sink_url = str((await aiohttp_server(sink.app())).make_url("/restart"))
    iid = await incident_clicked_by_ann(app, kit)
    cid = (await app.get(f"/incidents/{iid}"))["channel_id"]
    aid = (await app.post(f"/channels/{cid}/custom-actions", {"name": "Restart", "url": sink_url}))["action_id"]
    await click(app, kit, kit.sign(f"cst:{iid}:{aid}"))
    await until(lambda: bool(sink.got))
    [entry] = [t for t in await timeline(app, iid) if t["kind"] == "i_custom"]
    assert entry["source"] == kit.platform and entry["detail"]["ok"] is True
    assert sink.got[0]["person"]["person_name"] == "Ann" and len(sink.got) == 1
