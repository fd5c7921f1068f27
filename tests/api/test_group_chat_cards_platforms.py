"""Group-chat cards on DingTalk, WeCom and Teams (issue 13 item 13): the level's group chat gets the incident
card through the platform's group API (DingTalk IM_GROUP card, WeCom appchat/send, a Teams channel
conversation), against each platform's fake; DingTalk and Teams cards are then updated in place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.teams import FakeTeams
from tests.fakes.wecom import FakeWeCom
from tests.kit import Api, until

ADMIN = "test-admin-token-0123456789abcdef"
DT_TEMPLATE = "f1e2d3c4-0000-4a1b-9c8d-7e6f5a4b3c2d.schema"
DT_GROUP = "cidOps0a1B2c3D4e5F6g7H8i9J0k=="
WECOM_CHAT = "opsroom01"
TEAMS_CHANNEL = "19:0a1b2c3d4e5f60718293a4b5c6d7e8f9@thread.tacv2"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TEAMS_APP = "8a3f2c1e-5b7d-4e9a-9c0b-1d2e3f4a5b6c"


@dataclass
class Platform:
    name: str
    fake: Any
    settings: dict[str, Any]
    secrets: dict[str, str]
    chat_id: str


def _dingtalk(url: str, fake: FakeDingTalk) -> Platform:
    return Platform("dingtalk", fake, {"base_url": url, "oapi_base_url": url, "stream_endpoint": url,
                                       "card_template_id": DT_TEMPLATE, "robot_code": "dingrobot0123"},
                    {"client_id": "dingappkey0123", "client_secret": "dt-app-secret-group"}, DT_GROUP)


def _wecom(url: str, fake: FakeWeCom) -> Platform:
    return Platform("wecom", fake, {"base_url": url, "agent_id": 1000002},
                    {"corp_id": "ww0a1b2c3d4e5f6a7b", "corp_secret": "wecom-corp-secret-group", "token": "cbTokenGrp",
                     "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}, WECOM_CHAT)


def _teams(url: str, fake: FakeTeams) -> Platform:
    return Platform("teams", fake, {
        "tenant_id": TENANT, "service_url": f"{url}/", "token_url": f"{url}/botframework.com/oauth2/v2.0/token",
        "graph_token_url": f"{url}/{TENANT}/oauth2/v2.0/token",
        "openid_metadata_url": f"{url}/v1/.well-known/openidconfiguration", "graph_base_url": url},
        {"app_id": TEAMS_APP, "app_password": "teams-app-password~group"}, TEAMS_CHANNEL)


@pytest.fixture(params=["dingtalk", "wecom", "teams"])
async def platform(request, aiohttp_server) -> Platform:  # type: ignore[no-untyped-def]
    if request.param == "dingtalk":
        fake: Any = FakeDingTalk(client_id="dingappkey0123", client_secret="dt-app-secret-group",
                                 templates={DT_TEMPLATE}, users=set(), groups={DT_GROUP})
        make = _dingtalk
    elif request.param == "wecom":
        fake = FakeWeCom(corp_id="ww0a1b2c3d4e5f6a7b", corp_secret="wecom-corp-secret-group", agent_id=1000002,
                         users=set(), chats={WECOM_CHAT})
        make = _wecom
    else:
        fake = FakeTeams(app_id=TEAMS_APP, app_password="teams-app-password~group", tenant_id=TENANT,
                         channels={TEAMS_CHANNEL})
        make = _teams
    url = str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")
    return make(url, fake)


def _group_posts(p: Platform) -> list[dict[str, Any]]:
    """What the platform's group API took: the request bodies."""
    if p.name == "dingtalk":
        return [r.body for r in p.fake.sent() if r.body["openSpaceId"] == f"dtv1.card//IM_GROUP.{DT_GROUP}"]
    if p.name == "wecom":
        return [r.body for r in p.fake.chat_posts()]
    return [r.body for r in p.fake.sent() if r.path == f"/v3/conversations/{TEAMS_CHANNEL}/activities"]


# The fake is asked for before the client, so it outlives Vigil: DingTalk's Stream connection closes first.
async def test_the_group_post_goes_through_the_platforms_group_api(settings, platform, aiohttp_client) -> None:
    from bot.server import create_app

    app = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), ADMIN)
    im_app = await app.post("/im-apps", {"platform": platform.name, "name": "corp", "settings": platform.settings,
                                         "secrets": platform.secrets})
    assert im_app["problems"] == []
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"im_chats": [{"im_app_id": im_app["im_app_id"], "chat_id": platform.chat_id}]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(_group_posts(platform)))
    await app.settle()
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]
    [post] = _group_posts(platform)
    text = json.dumps(post, ensure_ascii=False)
    assert "db-1 is down" in text and f"/incidents/{iid}" in text and "?t=" not in text  # no sign-in link
    if platform.name == "dingtalk":
        assert post["imGroupOpenDeliverModel"] == {"robotCode": "dingrobot0123"} and f"ack:{iid}" in text
    elif platform.name == "wecom":
        # appchat/send takes no template card: a text card whose link opens the incident page.
        assert post["chatid"] == WECOM_CHAT and post["msgtype"] == "textcard"
        assert post["textcard"]["url"].endswith(f"/incidents/{iid}")
    else:
        assert platform.fake.created() == []  # a channel is posted to directly: no 1:1 conversation is opened
        assert f"ack:{iid}" in text
    [d] = (await app.get(f"/incidents/{iid}/deliveries"))["items"]
    assert (d["medium"], d["state"], d["im_app_id"], d["chat_id"]) == ("im_chat", "sent", im_app["im_app_id"],
                                                                       platform.chat_id)

    await app.post(f"/incidents/{iid}/ack", {})
    await app.settle()
    if platform.name == "wecom":  # an appchat message cannot be edited: nothing to update, nothing failed
        assert platform.fake.updates() == []
    else:
        await until(lambda: bool(platform.fake.updates()))
        assert "Acknowledged via Open API" in json.dumps(platform.fake.updates()[-1].body, ensure_ascii=False)
    timeline = (await app.get(f"/incidents/{iid}"))["timeline"]
    assert not any(t["kind"] == "card_update_failed" for t in timeline)


async def test_a_group_chat_the_app_is_not_in_fails_without_retries(settings, platform, aiohttp_client) -> None:
    from bot.server import create_app

    app = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "k"}))), ADMIN)
    im_app = await app.post("/im-apps", {"platform": platform.name, "name": "corp", "settings": platform.settings,
                                         "secrets": platform.secrets})
    other = {"dingtalk": "cidElsewhere99==", "wecom": "elsewhere9", "teams": "19:elsewhere@thread.tacv2"}
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"im_chats": [{"im_app_id": im_app["im_app_id"], "chat_id": other[platform.name]}]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [inc] = (await app.get("/incidents"))["items"]

    async def failed() -> bool:
        return [d["state"] for d in (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"]] == [
            "failed"]

    await until(failed)
    [d] = (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"]
    assert d["attempts"] == 1 and d["last_error"]
    kinds = {t["kind"] for t in (await app.get(f"/incidents/{inc['incident_id']}"))["timeline"]}
    assert "delivery_failed" in kinds and not kinds & {"page_undeliverable", "fallback"}
