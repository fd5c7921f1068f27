"""DingTalk adapter against the local DingTalk fake: OpenAPI cards, token refresh, errors, signed HTTP
callbacks, the directory, the Stream connection (real dingtalk-stream SDK), and a click end to end."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.adapters.base import ActionEvent, ChatTarget, InboundRequest, MessageRef, Outcome
from bot.adapters.dingtalk import DingTalkAdapter
from bot.adapters.errors import DeliveryError
from bot.cards import dingtalk as renderer
from bot.chat.actions import ActionData
from core.types import Platform
from tests.adapters.conftest import Running
from tests.cards.cases import CASES
from tests.fakes.dingtalk import FakeDingTalk, card_callback, signed_headers
from tests.kit import until

APP_KEY = "dingappkey0123456789"
APP_SECRET = "dt-app-secret-Xk29vLq7Wm3Zp8"
TEMPLATE = "f1e2d3c4-0000-4a1b-9c8d-7e6f5a4b3c2d.schema"
ROBOT = "dingrobot0123456789"
USER, OTHER, GROUP = "manager4711", "staff0815", "cidGroupAbc+123=="
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CARD = renderer.render(CASES["triggered_critical_all_actions"])


@pytest.fixture
async def dingtalk(aiohttp_server: Any) -> Running:
    fake = FakeDingTalk(client_id=APP_KEY, client_secret=APP_SECRET, templates={TEMPLATE}, users={USER, OTHER},
                        mobiles={"13800138000": USER}, groups={GROUP})
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


def settings_for(url: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": url, "oapi_base_url": url, "stream_endpoint": url, "card_template_id": TEMPLATE,
            "robot_code": ROBOT, **extra}


SECRETS = {"client_id": APP_KEY, "client_secret": APP_SECRET}


@pytest.fixture
async def adapter(dingtalk: Running, session: aiohttp.ClientSession) -> DingTalkAdapter:
    return DingTalkAdapter.from_app(settings_for(dingtalk.url), SECRETS, http=session)


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "secrets", "problem"), [
    ({"base_url": "http://x"}, SECRETS, "card_template_id: Field required"),
    ({"card_template_id": TEMPLATE}, {"client_id": APP_KEY}, "client_secret: Field required"),
    ({"card_template_id": TEMPLATE}, {"client_id": APP_KEY, "client_secret": ""}, "client_secret: Value should"),
    ({"card_template_id": TEMPLATE, "timeout": -1}, SECRETS, "timeout: Input should be greater than 0"),
    ({"card_template_id": TEMPLATE, "baseurl": "http://x"}, SECRETS, "baseurl: Extra inputs are not permitted"),
    ({"card_template_id": TEMPLATE, "client_secret": APP_SECRET}, {"client_id": APP_KEY}, "belongs in the app's"),
])
async def test_from_app_names_the_bad_setting(settings, secrets, problem, session) -> None:
    with pytest.raises(ValueError, match="dingtalk settings") as err:
        DingTalkAdapter.from_app(settings, secrets, http=session)
    assert problem in str(err.value) and APP_SECRET not in str(err.value)


def test_robot_code_defaults_to_the_app_key(session) -> None:
    adapter = DingTalkAdapter.from_app({"card_template_id": TEMPLATE}, SECRETS, http=session)
    assert adapter.robot_code == APP_KEY and adapter.config.base_url == "https://api.dingtalk.com"


# -- sending and updating ----------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "space", "model"), [
    (ChatTarget(Platform.DINGTALK, USER, direct=True), f"dtv1.card//IM_ROBOT.{USER}",
     {"imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": ROBOT}}),
    (ChatTarget(Platform.DINGTALK, GROUP, direct=False), f"dtv1.card//IM_GROUP.{GROUP}",
     {"imGroupOpenDeliverModel": {"robotCode": ROBOT}}),
])
async def test_send_card_creates_and_delivers_a_stream_card(adapter, dingtalk, target, space, model) -> None:
    ref = await adapter.send_card(target, CARD)
    [req] = dingtalk.fake.sent()
    assert req.body["cardTemplateId"] == TEMPLATE and req.body["callbackType"] == "STREAM"
    assert req.body["openSpaceId"] == space and req.body["outTrackId"] == ref.message_id
    assert req.body["cardData"] == CARD["cardData"]
    assert {k: req.body[k] for k in model} == model
    assert ref == MessageRef(Platform.DINGTALK, target.conversation_id, ref.message_id, {"open_space_id": space})
    assert dingtalk.fake.cards[ref.message_id] == CARD["cardData"]["cardParamMap"]


async def test_update_card_replaces_the_card_data(adapter, dingtalk) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.DINGTALK, USER), CARD)
    acked = renderer.render(CASES["processing_warning_acknowledged"])
    await adapter.update_card(ref, acked)
    [req] = dingtalk.fake.updates()
    assert req.path == "/v1.0/card/instances" and req.body["outTrackId"] == ref.message_id
    assert dingtalk.fake.cards[ref.message_id] == acked["cardData"]["cardParamMap"]


async def test_an_access_token_is_reused_then_refreshed_when_rejected(adapter, dingtalk) -> None:
    to = ChatTarget(Platform.DINGTALK, USER)
    await adapter.send_card(to, CARD)
    await adapter.send_card(to, CARD)
    assert dingtalk.fake.tokens_issued == 1
    dingtalk.fake.expire_tokens()  # DingTalk answers 401 InvalidAuthentication; the adapter refreshes once
    await adapter.send_card(to, CARD)
    assert dingtalk.fake.tokens_issued == 2 and len(dingtalk.fake.sent()) == 3


@pytest.mark.parametrize(("status", "code", "headers", "retryable", "retry_after"), [
    (500, "ServiceUnavailable", None, True, None),
    (503, "ServiceUnavailable", None, True, None),
    (429, "Throttling", {"Retry-After": "7"}, True, 7.0),
    (429, "Throttling.Api", None, True, 1.0),
    (403, "Forbidden.AccessDenied.QpsLimitForApi", None, True, 1.0),
    (400, "param.cardParamMapInvalid", None, False, None),
    (403, "Forbidden.AccessDenied.AccessTokenPermissionDenied", None, False, None),
    (401, "InvalidAuthentication", None, False, None),  # still rejected after one refresh: permanent
], ids=lambda v: str(v))
async def test_errors_are_classified(adapter, dingtalk, assert_no_secret, status, code, headers, retryable,
                                     retry_after) -> None:
    await adapter.send_card(ChatTarget(Platform.DINGTALK, USER), CARD)  # holds a token now
    dingtalk.fake.fail_next(status, code, f"{code} happened", headers)
    if status == 401:
        dingtalk.fake.fail_next(status, code, f"{code} happened", headers)
    with pytest.raises(DeliveryError) as err:
        await adapter.update_card(MessageRef(Platform.DINGTALK, USER, "no-such-card"), CARD)
    assert (err.value.retryable, err.value.retry_after, err.value.gone) == (retryable, retry_after, False)
    assert code in str(err.value)
    assert_no_secret(err.value, APP_SECRET, *adapter.api.secrets())


async def test_a_user_who_left_is_gone(adapter, assert_no_secret) -> None:
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.DINGTALK, "left-the-company"), CARD)
    assert err.value.gone and not err.value.retryable and "userIdNotExist" in str(err.value)
    assert_no_secret(err.value, APP_SECRET, *adapter.api.secrets())


async def test_updating_an_unknown_card_is_permanent(adapter) -> None:
    with pytest.raises(DeliveryError) as err:
        await adapter.update_card(MessageRef(Platform.DINGTALK, USER, "never-sent"), CARD)
    assert not err.value.retryable and "cardInstanceNotExist" in str(err.value)


async def test_wrong_app_secret_is_permanent_and_not_shown(dingtalk, session, assert_no_secret) -> None:
    wrong = "not-the-secret-Qq81"
    bad = DingTalkAdapter.from_app(settings_for(dingtalk.url), {"client_id": APP_KEY, "client_secret": wrong},
                                   http=session)
    with pytest.raises(DeliveryError) as err:
        await bad.send_card(ChatTarget(Platform.DINGTALK, USER), CARD)
    assert not err.value.retryable and "invalidClientIdOrSecret" in str(err.value)
    assert_no_secret(err.value, wrong)


async def test_unreachable_platform_is_retryable(session, assert_no_secret) -> None:
    from tests.conftest import free_port

    adapter = DingTalkAdapter.from_app(settings_for(f"http://127.0.0.1:{free_port()}"), SECRETS, http=session)
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.DINGTALK, USER), CARD)
    assert err.value.retryable
    assert_no_secret(err.value, APP_SECRET)


async def test_a_card_that_is_not_dingtalk_json_is_refused(adapter) -> None:
    with pytest.raises(DeliveryError, match="cardParamMap") as err:
        await adapter.send_card(ChatTarget(Platform.DINGTALK, USER), {"blocks": []})
    assert not err.value.retryable


# -- HTTP callbacks: verify, parse, reply --------------------------------------------------------------


def http_click(user: str, action: str, headers: dict[str, str], **params: str) -> InboundRequest:
    return InboundRequest(body=json.dumps(card_callback(user, action, "track-1", params=params)).encode(),
                          headers=headers)


MS = int(NOW.timestamp() * 1000)


@pytest.mark.parametrize(("headers", "ok"), [
    (signed_headers(APP_SECRET, MS), True),
    (signed_headers(APP_SECRET, MS - 299_000), True),
    (signed_headers(APP_SECRET, MS - 301_000), False),  # the signature covers no body: five minutes, not DingTalk's hour
    (signed_headers(APP_SECRET, MS + 301_000), False),
    (signed_headers("someone-elses-secret", MS), False),
    ({**signed_headers(APP_SECRET, MS), "sign": ""}, False),
    ({"timestamp": str(MS)}, False),
    ({"sign": signed_headers(APP_SECRET, MS)["sign"]}, False),
    ({**signed_headers(APP_SECRET, MS), "timestamp": "12abc"}, False),
], ids=["valid", "299s", "stale", "future", "forged", "empty-sign", "no-sign", "no-timestamp", "bad-timestamp"])
def test_verify(adapter, headers, ok) -> None:
    assert adapter.verify(http_click(USER, "ack:1", headers), NOW) is ok


def test_there_is_no_url_handshake(adapter) -> None:
    assert adapter.handshake(http_click(USER, "ack:1", signed_headers(APP_SECRET, MS))) is None


def rendered_payloads() -> list[str]:
    out = []
    for case in CASES.values():
        params = renderer.render(case)["cardData"]["cardParamMap"]
        for button in json.loads(params["btns"]) + json.loads(params["snooze_btns"]):
            if button["event"]["type"] == "sendCardRequest":
                out.append(button["event"]["params"]["params"]["action"])
    return sorted(set(out))


@pytest.mark.parametrize("payload", rendered_payloads())
def test_parse_action_for_every_button_the_card_offers(adapter, payload) -> None:
    event = adapter.parse_action(http_click(USER, payload, {}))
    assert event == ActionEvent(Platform.DINGTALK, USER, payload, {}, {"out_track_id": "track-1"})
    assert ActionData.unpack(event.payload).pack() == payload


def test_rendered_buttons_cover_the_lifecycle() -> None:
    actions = {ActionData.unpack(p).action.value for p in rendered_payloads()}
    assert {"ack", "unack", "close", "reopen", "escalate", "snooze", "wake", "silence_similar"} <= actions


def test_parse_action_keeps_text_inputs(adapter) -> None:
    event = adapter.parse_action(http_click(USER, "cmt:42", {}, comment="disk cleaned"))
    assert event is not None and event.payload == "cmt:42" and event.inputs == {"comment": "disk cleaned"}


@pytest.mark.parametrize("body", [
    b"not json",
    b"[]",
    json.dumps({"userId": USER, "content": "{}"}).encode(),
    json.dumps({"userId": USER, "content": "{not json"}).encode(),
    json.dumps({"userId": "", "content": json.dumps({"cardPrivateData": {"actionIds": ["ack:1"]}})}).encode(),
    json.dumps({"userId": USER, "content": json.dumps({"cardPrivateData": {"params": {"action": 5}}})}).encode(),
    json.dumps({"userId": USER, "content": json.dumps({"cardPrivateData": "ack:1"})}).encode(),
    json.dumps({"userId": USER, "content": json.dumps(["ack:1"])}).encode(),
], ids=["garbage", "list", "no-private-data", "bad-content", "no-user", "non-string-action", "private-not-object",
        "content-not-object"])
def test_parse_action_ignores_what_is_not_a_vigil_click(adapter, body) -> None:
    assert adapter.parse_action(InboundRequest(body=body, headers={})) is None


def test_parse_action_falls_back_to_the_action_id(adapter) -> None:
    data = {"userId": USER, "outTrackId": "t", "content": json.dumps({"cardPrivateData": {"actionIds": ["cls:9"]}})}
    event = adapter.parse_action(InboundRequest(body=json.dumps(data).encode(), headers={}))
    assert event is not None and event.payload == "cls:9"


@pytest.mark.parametrize(("outcome", "has_card"), [
    (Outcome(True, "Ann acknowledged incident #7.", CARD), True),
    (Outcome(False, "Your DingTalk account is not linked to a Vigil member."), False),
])
def test_reply_updates_the_card_and_tells_the_clicker(adapter, outcome, has_card) -> None:
    reply = adapter.reply(http_click(USER, "ack:1", {}), outcome)
    body = json.loads(reply.body)
    assert reply.status == 200 and body["userPrivateData"]["cardParamMap"]["notice"] == outcome.text
    assert ("cardData" in body) is has_card and body["cardUpdateOptions"]["updateCardDataByKey"] is True
    if has_card:
        assert body["cardData"] == CARD["cardData"]


# -- directory -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "phone", "found"), [
    ("a@example.com", "+8613800138000", (USER, "userid")),
    (None, "+8613900000000", None),
    ("a@example.com", None, None),
])
async def test_directory_finds_users_by_mobile(adapter, dingtalk, email, phone, found) -> None:
    assert await adapter.directory.lookup(email=email, phone=phone) == found
    if phone:
        [req] = dingtalk.fake.requests
        assert req.path == "/topapi/v2/user/getbymobile" and req.body == {"mobile": phone[3:]}


async def test_directory_refreshes_an_expired_token(adapter, dingtalk) -> None:
    await adapter.directory.lookup(email=None, phone="+8613800138000")
    dingtalk.fake.expire_tokens()
    assert await adapter.directory.lookup(email=None, phone="+8613800138000") == (USER, "userid")
    assert dingtalk.fake.tokens_issued == 2


@pytest.mark.parametrize(("errcode", "retryable"), [(-1, True), (90018, True), (88, False), (60011, False)])
async def test_directory_errcodes_with_http_200_are_failures(adapter, dingtalk, assert_no_secret, errcode,
                                                            retryable) -> None:
    dingtalk.fake.fail_next_oapi(errcode, "something went wrong")
    with pytest.raises(DeliveryError) as err:
        await adapter.directory.lookup(email=None, phone="+8613800138000")
    assert err.value.retryable is retryable and f"errcode {errcode}" in str(err.value)
    assert_no_secret(err.value, APP_SECRET, *adapter.api.secrets())


# -- Stream mode -----------------------------------------------------------------------------------------


class Clicks:
    """Stands in for bot.chat.clicks.apply: records the events and answers with a fixed outcome."""

    def __init__(self, outcome: Outcome) -> None:
        self.events: list[ActionEvent] = []
        self.outcome = outcome

    async def __call__(self, event: ActionEvent) -> Outcome:
        self.events.append(event)
        return self.outcome


async def test_stream_routes_a_card_click_and_acks_with_the_card(adapter, dingtalk) -> None:
    clicks = Clicks(Outcome(True, "Ann acknowledged incident #42.", CARD))
    await adapter.start(clicks)
    try:
        ack = await dingtalk.fake.push_card_callback(USER, "ack:42", "track-9")
    finally:
        await adapter.stop()
    assert dingtalk.fake.subscriptions == [{"type": "CALLBACK", "topic": "/v1.0/card/instances/callback"}]
    assert clicks.events == [ActionEvent(Platform.DINGTALK, USER, "ack:42", {}, {"out_track_id": "track-9"})]
    assert ack["code"] == 200 and ack["headers"]["messageId"]
    response = ack["data"]["response"]
    assert response["cardData"] == CARD["cardData"]
    assert response["userPrivateData"]["cardParamMap"]["notice"] == "Ann acknowledged incident #42."


async def test_stream_with_wrong_credentials_never_connects_and_stops_promptly(dingtalk, session) -> None:
    bad = DingTalkAdapter.from_app(settings_for(dingtalk.url), {"client_id": APP_KEY, "client_secret": "nope"},
                                   http=session)
    await bad.start(Clicks(Outcome(True, "")))
    await asyncio.sleep(0.3)
    started = asyncio.get_running_loop().time()
    await bad.stop()
    assert asyncio.get_running_loop().time() - started < 5
    with pytest.raises(AssertionError, match="no Stream client"):
        await dingtalk.fake.connected(timeout=0.1)


# -- end to end through a running Vigil --------------------------------------------------------------------


@pytest.fixture
async def vigil(settings, aiohttp_client, dingtalk):  # type: ignore[no-untyped-def]
    from bot.server import create_app
    from tests.kit import Api

    return Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
               "test-admin-token-0123456789abcdef")


async def test_click_over_stream_acknowledges_and_updates_the_card(vigil, dingtalk) -> None:
    from bot.chat import clicks
    from bot.keys import ADAPTER_MAP, SESSIONS, SETTINGS
    from core.clock import utcnow

    app = vigil
    out = await app.post("/im-apps", {"platform": "dingtalk", "name": "corp", "settings": settings_for(dingtalk.url),
                                      "secrets": SECRETS})
    assert out["problems"] == [] and out["secret_keys"] == ["client_id", "client_secret"]
    ann = await app.post("/members", {"name": "Ann"})
    await app.post("/mapping-tables/dingtalk/rows", {"member_id": ann["member_id"], "im_user_id": USER})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(dingtalk.fake.sent()))
    await app.settle()
    [sent] = dingtalk.fake.sent()
    track = sent.body["outTrackId"]
    assert sent.body["openSpaceId"] == f"dtv1.card//IM_ROBOT.{USER}"
    assert "db-1 is down" in sent.body["cardData"]["cardParamMap"]["title"]
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    adapter = app.app[ADAPTER_MAP][Platform.DINGTALK]
    sessions, base_url = app.app[SESSIONS], app.app[SETTINGS].resolved_base_url()
    await adapter.start(lambda event: clicks.apply(event, sessions, base_url, utcnow()))
    try:
        stranger = await dingtalk.fake.push_card_callback(OTHER, f"ack:{iid}", track)
        assert stranger["code"] == 200
        notice = stranger["data"]["response"]["userPrivateData"]["cardParamMap"]["notice"]
        assert "not linked" in notice and "cardData" not in stranger["data"]["response"]
        assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"

        ack = await dingtalk.fake.push_card_callback(USER, f"ack:{iid}", track)
    finally:
        await adapter.stop()
    response = ack["data"]["response"]
    assert ack["code"] == 200 and "Ann acknowledged" in response["userPrivateData"]["cardParamMap"]["notice"]
    assert response["cardData"]["cardParamMap"]["acknowledged_by"] == "Ann"
    detail = await app.get(f"/incidents/{iid}")
    assert detail["progress"] == "Processing"
    [acked] = [t for t in detail["timeline"] if t["kind"] == "i_ack"]
    assert acked["actor_id"] == ann["member_id"] and acked["source"] == "dingtalk"
    await app.settle()
    await until(lambda: bool(dingtalk.fake.updates()))
    update = dingtalk.fake.updates()[-1]
    assert update.body["outTrackId"] == track
    assert dingtalk.fake.cards[track]["acknowledged_by"] == "Ann"

    body = json.dumps(card_callback(USER, f"cls:{iid}", track)).encode()
    forged = await app.client.post("/im/dingtalk/callback", data=body,
                                   headers=signed_headers("not-the-app-secret", int(utcnow().timestamp() * 1000)))
    assert forged.status == 401
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Processing"
    # HTTP callback mode, for apps that register a callback URL instead of Stream: same path, signed.
    signed = await app.client.post("/im/dingtalk/callback", data=body,
                                   headers=signed_headers(APP_SECRET, int(utcnow().timestamp() * 1000)))
    answer = await signed.json()
    assert signed.status == 200 and "Ann closed" in answer["userPrivateData"]["cardParamMap"]["notice"]
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Closed"
