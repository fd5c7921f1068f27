"""Least privilege on the Open API, tried as a hostile caller would (issue 11, point 3): integration keys
shown once and kept only as hashes, and team-scoped channels whose incidents outsiders cannot touch from
the API or from a card. (Token roles: test_token_roles.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from aiohttp import web
from sqlalchemy import text

from core.secrets import digest
from tests.api.test_token_roles import error, member
from tests.fakes.slack import FakeSlack, block_actions, button, signed_headers
from tests.kit import Api, until

EVENT = {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"}


# ---- integration keys ---------------------------------------------------------------------------------


async def test_the_key_is_shown_once_and_the_database_keeps_only_its_hash(app):
    cid = (await app.post("/channels", {"name": "prod"}))["channel_id"]
    created = await app.post(f"/channels/{cid}/integrations", {"type": "standard", "name": "scripts"})
    key, iid = created["integration_key"], created["integration_id"]
    assert created["push_url"] == f"http://vigil.test/event/push/alert/standard?integration_key={key}"
    shared = await app.post("/integrations", {"type": "prometheus", "name": "am"})
    _, observer = await member(app, "olga", "observer")
    _, responder = await member(app, "rita")
    for token in (None, observer, responder):  # the admin included: nobody can read a key back
        for path in (f"/integrations/{iid}", "/integrations", f"/channels/{cid}/integrations"):
            shown = json.dumps(await app.get(path, token=token))
            assert key not in shown and shared["integration_key"] not in shown and "integration_key" not in shown
    renamed = await app.patch(f"/integrations/{iid}", {"name": "renamed"})
    assert "integration_key" not in renamed and renamed["push_url"] == "http://vigil.test/event/push/alert/standard"

    from bot.keys import SESSIONS

    async with app.app[SESSIONS]() as s:
        stored = repr((await s.execute(text("SELECT * FROM integration"))).all())
    assert key not in stored and shared["integration_key"] not in stored and digest(key) in stored
    assert (await app.push(key, EVENT))["data"]["alert_key"] == "db-1"  # the hash alone finds it


async def test_only_admins_rotate_a_key_and_the_old_key_stops_at_once(app):
    cid, key = await app.channel_with_integration()
    [integ] = (await app.get(f"/channels/{cid}/integrations"))["items"]
    _, observer = await member(app, "olga", "observer")
    _, responder = await member(app, "rita")
    for token in (observer, responder):
        message = await error(app, "POST", f"/integrations/{integ['integration_id']}/rotate-key", {},
                              status=403, token=token)
        assert "cannot do this" in message
    await app.push(key, EVENT)  # refused rotations changed nothing

    rotated = await app.post(f"/integrations/{integ['integration_id']}/rotate-key")
    new = rotated["integration_key"]
    assert new != key and len(new) == 32 and rotated["push_url"].endswith(f"?integration_key={new}")
    refused = await app.push(key, EVENT, expect=401)
    assert refused["error"]["message"] == "integration_key is not a valid one"
    await app.push(new, EVENT)
    assert "integration_key" not in await app.get(f"/integrations/{integ['integration_id']}")


# ---- team scoping ---------------------------------------------------------------------------------------


async def incident(app: Api, channel: str = "prod", **settings) -> int:
    _, key = await app.channel_with_integration(channel, **settings)
    await app.push(key, {**EVENT, "alert_key": channel})
    return max(i["incident_id"] for i in (await app.get("/incidents"))["items"])


async def scoped(app: Api) -> tuple[int, dict[str, tuple[int, str]]]:
    """An incident on channel 'prod', scoped to team 'db' (Ann), and members in and out of the team."""
    people = {"ann": await member(app, "ann"), "bob": await member(app, "bob"),
              "ada": await member(app, "ada", "admin")}
    team = await app.post("/teams", {"name": "db", "member_ids": [people["ann"][0]]})
    await app.post("/teams", {"name": "web", "member_ids": [people["bob"][0]]})
    iid = await incident(app, team_ids=[team["team_id"]], team_scoped=True)
    return iid, people


REFUSAL = ("bob cannot act on incidents of channel 'prod': it is team-scoped, so only admins and members "
           "of its teams ('db') can")


@pytest.mark.parametrize("action, body", [
    ("ack", {}), ("close", {"resolution": "mine now"}), ("snooze", {"minutes": 60}), ("escalate", {}),
    ("comment", {"comment": "pwned"}), ("reassign", {"member_ids": [2]}),
])
async def test_an_outsider_cannot_act_on_a_team_scoped_channels_incidents(app, action, body):
    iid, people = await scoped(app)
    await app.settle()
    before = await app.get(f"/incidents/{iid}")
    message = await error(app, "POST", f"/incidents/{iid}/{action}", body, status=403, token=people["bob"][1])
    assert message == REFUSAL
    await app.settle()
    assert await app.get(f"/incidents/{iid}") == before


async def test_team_members_admins_and_the_admin_token_act_on_a_scoped_channel(app):
    iid, people = await scoped(app)
    assert (await app.post(f"/incidents/{iid}/ack", token=people["ann"][1]))["progress"] == "Processing"
    await app.post(f"/incidents/{iid}/comment", {"comment": "admin member, in no team"}, token=people["ada"][1])
    assert (await app.post(f"/incidents/{iid}/close"))["progress"] == "Closed"


async def test_the_admin_token_acting_for_an_outsider_is_refused(app):
    iid, people = await scoped(app)
    message = await error(app, "POST", f"/incidents/{iid}/ack", {"member_id": people["bob"][0]}, status=403)
    assert message == REFUSAL


async def test_a_token_of_no_member_below_admin_is_in_no_team(app):
    iid, _ = await scoped(app)
    tok = (await app.post("/tokens", {"name": "script", "role": "responder"}))["token"]
    message = await error(app, "POST", f"/incidents/{iid}/ack", {}, status=403, token=tok)
    assert message.startswith("a token that acts as no member cannot act on incidents of channel 'prod'")
    other = await incident(app, "staging")  # an open channel: such a token acts as before
    assert (await app.post(f"/incidents/{other}/ack", token=tok))["progress"] == "Processing"


async def test_an_outsider_cannot_merge_a_scoped_incident_away(app):
    scoped_iid, people = await scoped(app)
    own = await incident(app, "staging")
    message = await error(app, "POST", f"/incidents/{own}/merge", {"source_incident_ids": [scoped_iid]},
                          status=403, token=people["bob"][1])
    assert message == REFUSAL
    assert (await app.get(f"/incidents/{scoped_iid}"))["progress"] == "Triggered"
    assert (await app.get(f"/incidents/{own}"))["alert_cnt"] == 1


async def test_an_outsider_cannot_run_a_scoped_channels_custom_action(app, aiohttp_server):
    got: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({})

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    url = str((await aiohttp_server(receiver)).make_url("/hook"))
    iid, people = await scoped(app)
    cid = (await app.get(f"/incidents/{iid}"))["channel_id"]
    action = await app.post(f"/channels/{cid}/custom-actions", {"name": "restart", "url": url})
    path = f"/incidents/{iid}/custom-actions/{action['action_id']}"
    assert await error(app, "POST", path, {}, status=403, token=people["bob"][1]) == REFUSAL
    assert got == []
    assert (await app.post(path, token=people["ann"][1]))["ok"] is True and len(got) == 1


NEEDS_A_TEAM = "team_scoped: a channel scoped to its teams needs at least one team in team_ids"


async def test_a_team_scoped_channel_needs_a_team(app):
    assert await error(app, "POST", "/channels", {"name": "prod", "team_scoped": True}, status=400) == NEEDS_A_TEAM
    open_ = await app.post("/channels", {"name": "open"})
    message = await error(app, "PATCH", f"/channels/{open_['channel_id']}", {"team_scoped": True}, status=400)
    assert message == NEEDS_A_TEAM
    team = await app.post("/teams", {"name": "db"})
    ch = await app.post("/channels", {"name": "prod", "team_ids": [team["team_id"]], "team_scoped": True})
    message = await error(app, "PATCH", f"/channels/{ch['channel_id']}", {"team_ids": []}, status=400)
    assert message == NEEDS_A_TEAM
    assert await app.get(f"/channels/{ch['channel_id']}") == ch
    assert (await app.get(f"/channels/{open_['channel_id']}"))["team_scoped"] is False


async def test_scoping_is_shown_and_can_be_lifted(app):
    iid, people = await scoped(app)
    cid = (await app.get(f"/incidents/{iid}"))["channel_id"]
    assert (await app.get(f"/channels/{cid}", token=people["bob"][1]))["team_scoped"] is True
    await app.patch(f"/channels/{cid}", {"team_scoped": False})
    assert (await app.post(f"/incidents/{iid}/ack", token=people["bob"][1]))["progress"] == "Processing"


# ---- a card click from an outsider ----------------------------------------------------------------------

ANN_SLACK, BOB_SLACK = "U0ANN1234", "U0BOB5678"
SLACK_TOKEN, SIGNING = "xoxb-scope-test-token", "scope-test-signing-secret"


async def test_an_outsiders_card_click_is_refused_like_an_observers(settings, aiohttp_client, aiohttp_server):
    from bot.server import create_app

    slack = FakeSlack(bot_token=SLACK_TOKEN, users={ANN_SLACK: "ann@example.com", BOB_SLACK: "bob@example.com"})
    slack_url = str((await aiohttp_server(slack.app())).make_url("")).rstrip("/")
    app = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))),
              settings.admin_token)
    await app.post("/im-apps", {"platform": "slack", "name": "s", "settings": {"base_url": slack_url},
                                "secrets": {"bot_token": SLACK_TOKEN, "signing_secret": SIGNING}})
    iid, people = await scoped(app)
    for name, user in (("ann", ANN_SLACK), ("bob", BOB_SLACK)):
        await app.post("/mapping-tables/slack/rows", {"member_id": people[name][0], "im_user_id": user})

    async def click(user: str) -> None:
        body = block_actions(user, button("vigil.ack", f"ack:{iid}"), response_url=f"{slack_url}/response/{user}")
        resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
            SIGNING, body, int(datetime.now(UTC).timestamp())))
        assert resp.status == 200

    await click(BOB_SLACK)
    await until(lambda: any("team-scoped" in r.get("text", "") for r in slack.responses))
    told = [r for r in slack.responses if "team-scoped" in r.get("text", "")]
    assert told == [{**told[0], "text": f"Nothing changed: {REFUSAL}."}]
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"
    await click(ANN_SLACK)
    await until(lambda: any(r.get("text", "").startswith("ann acknowledged") for r in slack.responses))
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Processing"
