"""Teams adapter against the local Microsoft fake: proactive cards through the Bot Connector SDK, app token
refresh, error classification, Bot Framework JWT verification, `adaptiveCard/action` invokes, the Graph
directory, and a click end to end through a running Vigil."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from bot.adapters.base import ActionEvent, ChatTarget, InboundRequest, MessageRef, Outcome
from bot.adapters.errors import DeliveryError
from bot.adapters.teams import CLOCK_SKEW_S, TeamsAdapter
from bot.cards import teams as renderer
from bot.chat.actions import ActionData
from core.types import Platform
from tests.adapters.conftest import Running
from tests.cards.cases import CASES
from tests.fakes.teams import BOT_ISSUER, FakeTeams, Issuer, invoke_activity, signed_callback
from tests.kit import until

APP_ID = "8a3f2c1e-5b7d-4e9a-9c0b-1d2e3f4a5b6c"
APP_PASSWORD = "teams-app-password~Qz8.Wv3_Lk9"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ANN, BOB = "6b0c5ad3-1111-4a4a-8b8b-aaaaaaaaaaaa", "9d1e7f20-2222-4b4b-9c9c-bbbbbbbbbbbb"
USERS = {"ann@corp.example": ANN, "bob@corp.example": BOB}
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CARD = renderer.render(CASES["triggered_critical_all_actions"])
ACKED = renderer.render(CASES["processing_warning_acknowledged"])
SECRETS = {"app_id": APP_ID, "app_password": APP_PASSWORD}
ISSUER = Issuer()  # the Bot Connector's key: the fake publishes it, callbacks in these tests are signed with it


@pytest.fixture
async def teams(aiohttp_server: Any) -> Running:
    fake = FakeTeams(app_id=APP_ID, app_password=APP_PASSWORD, tenant_id=TENANT, users=dict(USERS),
                     issuer=ISSUER)
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


def settings_for(url: str, **extra: Any) -> dict[str, Any]:
    return {"tenant_id": TENANT, "service_url": f"{url}/", "token_url": f"{url}/botframework.com/oauth2/v2.0/token",
            "graph_token_url": f"{url}/{TENANT}/oauth2/v2.0/token",
            "openid_metadata_url": f"{url}/v1/.well-known/openidconfiguration", "graph_base_url": url, **extra}


@pytest.fixture
async def adapter(teams: Running, session: aiohttp.ClientSession) -> TeamsAdapter:
    adapter = TeamsAdapter.from_app(settings_for(teams.url), SECRETS, http=session)
    await adapter.prepare()
    return adapter


def all_secrets(adapter: TeamsAdapter) -> list[str]:
    return [APP_PASSWORD, *adapter.tokens.issued, *adapter.directory.tokens.issued]


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "secrets", "problem"), [
    ({}, SECRETS, "tenant_id: Field required"),
    ({"tenant_id": TENANT}, {"app_password": APP_PASSWORD}, "app_id: Field required"),
    ({"tenant_id": TENANT}, {**SECRETS, "app_password": ""}, "app_password: Value should have at least 1"),
    ({"tenant_id": TENANT, "timeout": 0}, SECRETS, "timeout: Input should be greater than 0"),
    ({"tenant_id": TENANT, "base_url": "http://x"}, SECRETS, "base_url: Extra inputs are not permitted"),
    ({"tenant_id": TENANT, "app_password": APP_PASSWORD}, SECRETS, "app_password belong in the app's secrets"),
])
def test_from_app_names_the_bad_setting(settings, secrets, problem, session) -> None:
    with pytest.raises(ValueError, match="teams settings") as err:
        TeamsAdapter.from_app(settings, secrets, http=session)
    assert problem in str(err.value) and APP_PASSWORD not in str(err.value)


def test_defaults_are_microsofts_endpoints(session) -> None:
    config = TeamsAdapter.from_app({"tenant_id": TENANT}, SECRETS, http=session).config
    assert config.openid_metadata_url == "https://login.botframework.com/v1/.well-known/openidconfiguration"
    assert config.token_url == "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    assert config.graph_token_endpoint() == f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
    assert config.graph_base_url == "https://graph.microsoft.com"


# -- sending and updating ----------------------------------------------------------------------------


async def test_send_card_opens_a_personal_chat_and_posts_the_card(adapter, teams) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)
    [created] = teams.fake.created()
    assert created.body["isGroup"] is False and created.body["bot"]["id"] == f"28:{APP_ID}"
    assert created.body["members"] == [{"id": ANN}] and created.body["tenantID"] == TENANT
    assert created.body["channelData"] == {"tenant": {"id": TENANT}}
    [sent] = teams.fake.sent()
    assert sent.path == f"/v3/conversations/{ref.conversation_id}/activities"
    assert sent.body["type"] == "message" and sent.body["summary"] == CARD["fallbackText"]
    assert sent.body["attachments"] == [{"contentType": "application/vnd.microsoft.card.adaptive", "content": CARD}]
    assert ref.platform is Platform.TEAMS and ref.extra["service_url"] == f"{teams.url}/"
    assert teams.fake.cards[(ref.conversation_id, ref.message_id)] == CARD


async def test_update_card_replaces_the_activity(adapter, teams) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)
    await adapter.update_card(ref, ACKED)
    [put] = teams.fake.updates()
    assert put.path == f"/v3/conversations/{ref.conversation_id}/activities/{ref.message_id}"
    assert put.body["id"] == ref.message_id and put.body["attachments"][0]["content"] == ACKED
    assert teams.fake.cards[(ref.conversation_id, ref.message_id)] == ACKED


async def test_a_group_target_is_posted_to_directly(adapter, teams) -> None:
    personal = await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)
    ref = await adapter.send_card(ChatTarget(Platform.TEAMS, personal.conversation_id, direct=False), CARD)
    assert len(teams.fake.created()) == 1 and ref.conversation_id == personal.conversation_id


async def test_what_is_not_an_adaptive_card_is_refused_before_sending(adapter, teams) -> None:
    with pytest.raises(DeliveryError, match="AdaptiveCard") as err:
        await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), {"blocks": []})
    assert not err.value.retryable and teams.fake.sent() == []


async def test_the_app_token_is_reused_then_refreshed_once_when_rejected(adapter, teams) -> None:
    to = ChatTarget(Platform.TEAMS, ANN)
    await adapter.send_card(to, CARD)
    await adapter.send_card(to, CARD)
    assert teams.fake.tokens_issued == 1
    teams.fake.expire_tokens()  # the Connector answers 401; the adapter fetches a new token and retries
    ref = await adapter.send_card(to, CARD)
    teams.fake.expire_tokens()
    await adapter.update_card(ref, ACKED)
    assert teams.fake.tokens_issued == 3 and len(teams.fake.sent()) == 3 and len(teams.fake.updates()) == 1


@pytest.mark.parametrize(("status", "headers", "retryable", "retry_after", "gone"), [
    (429, {"Retry-After": "7"}, True, 7.0, False),
    (429, {}, True, None, False),
    (500, {}, True, None, False),
    (502, {}, True, None, False),
    (503, {"Retry-After": "30"}, True, 30.0, False),
    (400, {}, False, None, False),
    (403, {}, False, None, True),
    (404, {}, False, None, True),
    (401, {}, False, None, False),  # still rejected after one refresh: permanent
])
async def test_connector_errors_are_classified(adapter, teams, assert_no_secret, status, headers, retryable,
                                               retry_after, gone) -> None:
    await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)  # holds a token now
    teams.fake.fail_next(status, "SomeCode", "the service said no", headers)
    if status == 401:
        teams.fake.fail_next(status)
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)
    assert (err.value.retryable, err.value.retry_after, err.value.gone) == (retryable, retry_after, gone)
    assert f"HTTP {status}" in str(err.value)
    assert_no_secret(err.value, *all_secrets(adapter))


async def test_a_user_who_left_is_gone(adapter, teams, assert_no_secret) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.TEAMS, BOB), CARD)
    teams.fake.user_left("bob@corp.example")
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.TEAMS, BOB), CARD)
    assert err.value.gone and not err.value.retryable and "HTTP 403" in str(err.value)
    assert_no_secret(err.value, *all_secrets(adapter))
    # A card that vanished is a permanent update failure, not a sign the user left.
    with pytest.raises(DeliveryError) as missing:
        await adapter.update_card(MessageRef(Platform.TEAMS, ref.conversation_id, "999", ref.extra), ACKED)
    assert (missing.value.retryable, missing.value.gone) == (False, False) and "NotFound" in str(missing.value)


@pytest.mark.parametrize(("secrets", "problem"), [
    ({**SECRETS, "app_password": "not-the-password-Qq81"}, "invalid_client"),
    ({**SECRETS, "app_id": "someone-elses-app"}, "unauthorized_client"),
])
async def test_rejected_credentials_are_permanent_and_not_shown(teams, session, assert_no_secret, secrets,
                                                                problem) -> None:
    bad = TeamsAdapter.from_app(settings_for(teams.url), secrets, http=session)
    with pytest.raises(DeliveryError) as err:
        await bad.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)
    assert not err.value.retryable and problem in str(err.value) and teams.fake.sent() == []
    assert_no_secret(err.value, secrets["app_password"], APP_PASSWORD)


async def test_unreachable_connector_is_retryable(teams, session, assert_no_secret) -> None:
    from tests.conftest import free_port

    adapter = TeamsAdapter.from_app(settings_for(teams.url, service_url=f"http://127.0.0.1:{free_port()}/"),
                                    SECRETS, http=session)
    with pytest.raises(DeliveryError, match="unreachable") as err:
        await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)
    assert err.value.retryable
    assert_no_secret(err.value, *all_secrets(adapter))


# -- callbacks: verify, handshake, parse, reply ---------------------------------------------------------

SERVICE = "https://smba.trafficmanager.net/emea/"


def click(user: str = ANN, verb: str = "ack", data: dict[str, Any] | None = None, *, issuer: Issuer = ISSUER,
          app_id: str = APP_ID, now: datetime = NOW, iss: str = BOT_ISSUER) -> InboundRequest:
    activity = invoke_activity(user, verb, data or {"action": "ack:42"}, service_url=SERVICE, tenant_id=TENANT)
    headers, body = signed_callback(issuer, app_id, activity, now=now.timestamp(), issuer=iss)
    return InboundRequest(body=body, headers=headers)


def edit(req: InboundRequest, *, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None,
         ) -> InboundRequest:
    return InboundRequest(body=orjson.dumps({**orjson.loads(req.body), **(body or {})}),
                          headers={**req.headers, **(headers or {})} if headers is not None else req.headers)


def forged_signature(req: InboundRequest) -> InboundRequest:
    header, payload, _ = req.header("Authorization").split(".")
    other = Issuer(kid=ISSUER.kid).token(APP_ID, SERVICE, now=NOW.timestamp()).split(".")[2]
    return edit(req, headers={"Authorization": f"{header}.{payload}.{other}"})


def unsigned(req: InboundRequest) -> InboundRequest:
    return InboundRequest(body=req.body, headers={"Content-Type": "application/json"})


SKEW = CLOCK_SKEW_S


@pytest.mark.parametrize(("req", "ok"), [
    (click(), True),
    (click(now=NOW - timedelta(seconds=3600 + SKEW - 10)), True),  # expired, inside the clock skew
    (click(now=NOW - timedelta(seconds=3600 + SKEW + 10)), False),  # expired: a replayed old token
    (click(now=NOW + timedelta(seconds=SKEW + 60)), False),  # not valid yet
    (unsigned(click()), False),
    (edit(click(), headers={"Authorization": "Basic abc"}), False),
    (edit(click(), headers={"Authorization": "Bearer not-a-jwt"}), False),
    (forged_signature(click()), False),
    (click(issuer=Issuer(kid=ISSUER.kid)), False),  # same kid, another key
    (click(issuer=Issuer()), False),  # a key the metadata does not publish
    (click(app_id="another-bot"), False),  # wrong audience
    (click(iss="https://login.microsoftonline.com/x/v2.0"), False),
    (edit(click(), body={"serviceUrl": "https://evil.example/"}), False),  # serviceurl claim must match
    (edit(click(), body={"channelId": "slack"}), False),  # key not endorsed for this channel
    (InboundRequest(body=b"not json", headers=click().headers), False),
], ids=["valid", "inside-skew", "expired", "not-yet-valid", "missing-token", "not-bearer", "garbage-token",
        "forged-signature", "other-key-same-kid", "unknown-kid", "wrong-audience", "wrong-issuer",
        "other-service-url", "unendorsed-channel", "garbage-body"])
def test_verify(adapter, req, ok) -> None:
    assert adapter.verify(req, NOW) is ok


async def test_verify_refuses_until_the_keys_are_loaded_then_loads_them(teams, session) -> None:
    adapter = TeamsAdapter.from_app(settings_for(teams.url), SECRETS, http=session)
    assert adapter.verify(click(), NOW) is False  # no keys yet: refused, and a fetch starts in the background
    for _ in range(100):
        if adapter.keys.keys:
            break
        await asyncio.sleep(0.02)
    assert adapter.verify(click(), NOW) is True


async def test_start_loads_keys_and_survives_an_unreachable_metadata_url(teams, session) -> None:
    from tests.conftest import free_port

    good = TeamsAdapter.from_app(settings_for(teams.url), SECRETS, http=session)
    await good.start(lambda event: None)  # type: ignore[arg-type,return-value]
    assert good.verify(click(), NOW)
    bad = TeamsAdapter.from_app(settings_for(teams.url, openid_metadata_url=f"http://127.0.0.1:{free_port()}/m"),
                                SECRETS, http=session)
    await bad.start(lambda event: None)  # type: ignore[arg-type,return-value]
    assert not bad.verify(click(), NOW)
    with pytest.raises(DeliveryError) as err:
        await bad.prepare()
    assert err.value.retryable


def test_teams_has_no_url_handshake(adapter) -> None:
    assert adapter.handshake(click()) is None


def executes(node: Any) -> Iterator[dict[str, Any]]:
    """Every Action.Execute anywhere in a card: top-level, in ShowCards, in the refresh block."""
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute":
            yield node
        for value in node.values():
            yield from executes(value)
    elif isinstance(node, list):
        for value in node:
            yield from executes(value)


def offered() -> list[tuple[str, str]]:
    return sorted({(a["verb"], a["data"]["action"]) for case in CASES.values()
                   for a in executes(renderer.render(case))})


@pytest.mark.parametrize(("verb", "payload"), offered())
def test_parse_action_for_every_action_the_card_offers(adapter, verb, payload) -> None:
    data: dict[str, Any] = {"action": payload}
    inputs = {}
    if verb == "set_field":  # a field's "Set" carries the value of its own input
        field_input = f"fld{ActionData.unpack(payload).field_id}"
        data |= {"field": field_input, field_input: "0"}
        inputs = {"options": "0"}
    req = click(ANN, verb, data)
    event = adapter.parse_action(req)
    assert event == ActionEvent(Platform.TEAMS, ANN, payload, inputs, {
        "verb": verb, "conversation_id": "a:1-personal-chat", "activity_id": "1715000000001",
        "service_url": SERVICE})
    assert ActionData.unpack(payload).action.value == verb


def test_offered_actions_cover_the_lifecycle() -> None:
    verbs = {verb for verb, _ in offered()}
    assert {"ack", "unack", "close", "reopen", "escalate", "snooze", "wake", "comment", "refresh"} <= verbs


@pytest.mark.parametrize(("verb", "data", "inputs"), [
    ("snooze", {"action": "snz:42:30", "snooze": "snz:42:240"}, {"snooze": "snz:42:240"}),
    ("snooze", {"action": "snz:42:30"}, {}),
    ("comment", {"action": "cmt:42", "comment": "looking into it"}, {"comment": "looking into it"}),
    # Inputs elsewhere on the card travel with every action: only the matching verb uses them.
    ("ack", {"action": "ack:42", "snooze": "snz:42:240", "comment": "x"}, {}),
    # A custom field's "Set" reads the input its data names, not another field's.
    ("set_field", {"action": "fld:42:7:", "field": "fld7", "fld7": "0,2", "fld8": "1"}, {"options": "0,2"}),
    ("set_field", {"action": "fld:42:7:", "field": "fld7", "fld7": ""}, {"options": ""}),  # all unchosen: cleared
])
def test_parse_action_takes_the_inputs_of_its_form(adapter, verb, data, inputs) -> None:
    event = adapter.parse_action(click(ANN, verb, data))
    assert event is not None and event.payload == data["action"] and event.inputs == inputs


@pytest.mark.parametrize("data", [
    {"action": "fld:42:7:", "field": "fld7"},  # its input did not come: the choice is unknown, not "cleared"
    {"action": "fld:42:7:", "field": "fld7", "fld7": ["0"]},
    {"action": "fld:42:7:", "field": "comment", "comment": "0"},  # names an input that is no field's
    {"action": "fld:42:7:", "fld7": "0"},
])
def test_a_field_set_without_its_own_input_is_not_a_click(adapter, data) -> None:
    assert adapter.parse_action(click(ANN, "set_field", data)) is None


def test_snooze_choices_of_the_rendered_card_parse() -> None:
    [picker] = [b for a in CARD["actions"] if a["type"] == "Action.ShowCard" for b in a["card"]["body"]
                if b.get("id") == "snooze"]
    assert all(ActionData.unpack(c["value"]).action.value == "snooze" for c in picker["choices"])


def _raw(activity: dict[str, Any]) -> InboundRequest:
    return InboundRequest(body=orjson.dumps(activity), headers={})


BASE = invoke_activity(ANN, "ack", {"action": "ack:42"}, service_url=SERVICE)


@pytest.mark.parametrize("activity", [
    {**BASE, "type": "message", "text": "ack 42"},
    {**BASE, "name": "composeExtension/query"},
    {**BASE, "from": {"id": "29:1abc"}},  # no aadObjectId
    {**BASE, "value": {"action": {"type": "Action.Submit", "data": {"action": "ack:42"}}}},
    {**BASE, "value": {"action": {"type": "Action.Execute", "verb": "ack", "data": {}}}},
    {**BASE, "value": "ack:42"},
    {**BASE, "from": "someone", "timestamp": "yesterday"},
], ids=["message", "other-invoke", "no-aad-id", "action-submit", "no-payload", "bad-value", "malformed"])
def test_parse_action_ignores_what_is_not_a_vigil_click(adapter, activity) -> None:
    assert adapter.parse_action(_raw(activity)) is None


@pytest.mark.parametrize(("req", "outcome", "expected"), [
    (click(), Outcome(True, "Ann acknowledged incident #42.", ACKED),
     {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": ACKED}),
    (click(), Outcome(False, "Your teams account is not linked to a Vigil member."),
     {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
      "value": "Your teams account is not linked to a Vigil member."}),
    (click(), Outcome(False, "Nothing changed: already closed.", ACKED),
     {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
      "value": "Nothing changed: already closed."}),
])
def test_reply_is_the_invoke_response(adapter, req, outcome, expected) -> None:
    reply = adapter.reply(req, outcome)
    assert (reply.status, reply.content_type) == (200, "application/json") and orjson.loads(reply.body) == expected


def test_reply_to_a_message_is_an_empty_200(adapter) -> None:
    reply = adapter.reply(_raw({**BASE, "type": "message"}), Outcome(True, ""))
    assert (reply.status, reply.body) == (200, b"")


# -- directory -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "phone", "found", "paths"), [
    ("ann@corp.example", None, (ANN, "aad_object_id"), ["/v1.0/users/ann@corp.example"]),
    ("Bob@Corp.Example", "+15550100", (BOB, "aad_object_id"), ["/v1.0/users/Bob@Corp.Example"]),
    ("nobody@corp.example", None, None, ["/v1.0/users/nobody@corp.example"]),
    (None, "+15550100", None, []),
])
async def test_directory_finds_users_by_email(adapter, teams, email, phone, found, paths) -> None:
    assert await adapter.directory.lookup(email=email, phone=phone) == found
    assert [r.path for r in teams.fake.requests] == paths
    assert all(r.body == {"$select": "id"} for r in teams.fake.requests)


async def test_directory_refreshes_a_rejected_token(adapter, teams) -> None:
    await adapter.directory.lookup(email="ann@corp.example", phone=None)
    teams.fake.expire_tokens()
    assert await adapter.directory.lookup(email="ann@corp.example", phone=None) == (ANN, "aad_object_id")
    assert teams.fake.tokens_issued == 2


@pytest.mark.parametrize(("status", "headers", "retryable", "retry_after"), [
    (429, {"Retry-After": "12"}, True, 12.0), (503, {}, True, None), (403, {}, False, None)])
async def test_directory_failures(adapter, teams, assert_no_secret, status, headers, retryable,
                                  retry_after) -> None:
    teams.fake.fail_next(status, "Authorization_RequestDenied", "Insufficient privileges", headers)
    with pytest.raises(DeliveryError) as err:
        await adapter.directory.lookup(email="ann@corp.example", phone=None)
    assert (err.value.retryable, err.value.retry_after) == (retryable, retry_after)
    assert f"HTTP {status}" in str(err.value)
    assert_no_secret(err.value, *all_secrets(adapter))


# -- end to end through a running Vigil --------------------------------------------------------------------


@pytest.fixture
async def vigil(settings, aiohttp_client, teams):  # type: ignore[no-untyped-def]
    from bot.server import create_app
    from tests.kit import Api

    return Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
               "test-admin-token-0123456789abcdef")


def facts(card: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}


async def test_click_acknowledges_and_updates_the_card(vigil, teams) -> None:
    app, fake = vigil, teams.fake
    out = await app.post("/im-apps", {"platform": "teams", "name": "corp", "settings": settings_for(teams.url),
                                      "secrets": SECRETS})
    assert out["problems"] == [] and out["secret_keys"] == sorted(SECRETS)
    ann = await app.post("/members", {"name": "Ann"})
    await app.post("/mapping-tables/teams/rows", {"member_id": ann["member_id"], "im_user_id": ANN})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(fake.sent()))
    await app.settle()
    [created], [sent] = fake.created(), fake.sent()
    assert created.body["members"] == [{"id": ANN}]
    card = sent.body["attachments"][0]["content"]
    assert "db-1 is down" in card["body"][0]["items"][0]["text"]
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]
    service = f"{teams.url}/"

    async def post(user: str, verb: str, payload: str, *, issuer: Issuer = ISSUER) -> aiohttp.ClientResponse:
        activity = invoke_activity(user, verb, {"action": payload}, service_url=service, tenant_id=TENANT)
        headers, body = signed_callback(issuer, APP_ID, activity)
        return await app.client.post("/im/teams/callback", data=body, headers=headers)

    # An unmapped user: a polite message, nothing changes.
    resp = await post(BOB, "ack", f"ack:{iid}")
    assert resp.status == 200
    answer = await resp.json()
    assert answer["type"] == "application/vnd.microsoft.activity.message" and "not linked" in answer["value"]
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"

    # A forged click (signed by a key Microsoft never published): 401, nothing changes.
    resp = await post(ANN, "close", f"cls:{iid}", issuer=Issuer())
    assert resp.status == 401
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"

    # The mapped user acknowledges: the invoke response carries the updated card.
    resp = await post(ANN, "ack", f"ack:{iid}")
    assert resp.status == 200
    answer = await resp.json()
    assert answer["statusCode"] == 200 and answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert facts(answer["value"])["Acknowledged by"] == "Ann"
    detail = await app.get(f"/incidents/{iid}")
    assert detail["progress"] == "Processing"
    [acked] = [t for t in detail["timeline"] if t["kind"] == "i_ack"]
    assert acked["actor_id"] == ann["member_id"] and acked["source"] == "teams"
    await app.settle()
    await until(lambda: bool(fake.updates()))
    update = fake.updates()[-1]
    conversation, activity_id = update.path.split("/")[3], update.path.split("/")[5]
    assert conversation == sent.path.split("/")[3]
    assert facts(fake.cards[(conversation, activity_id)])["Acknowledged by"] == "Ann"

    # Refresh returns the current card and changes nothing.
    resp = await post(ANN, "refresh", f"rfr:{iid}")
    answer = await resp.json()
    assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Processing"


async def test_a_responder_sets_custom_fields_from_the_teams_card(vigil, teams) -> None:
    app, fake = vigil, teams.fake
    await app.post("/im-apps", {"platform": "teams", "name": "corp", "settings": settings_for(teams.url),
                                "secrets": SECRETS})
    ann = await app.post("/members", {"name": "Ann"})
    bob = await app.post("/members", {"name": "Bob", "role": "observer"})
    await app.post("/mapping-tables/teams/rows", {"member_id": ann["member_id"], "im_user_id": ANN})
    await app.post("/mapping-tables/teams/rows", {"member_id": bob["member_id"], "im_user_id": BOB})
    impact = await app.post("/custom-fields", {"name": "impact", "display_name": "Impact", "type": "single_select",
                                               "options": ["High", "Medium", "Low"]})
    systems = await app.post("/custom-fields", {"name": "systems", "display_name": "Systems",
                                                "type": "multi_select", "options": ["db", "api", "web"]})
    customer = await app.post("/custom-fields", {"name": "customer", "display_name": "Customer facing",
                                                 "type": "checkbox"})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(fake.sent()))
    await app.settle()
    card = fake.sent()[0].body["attachments"][0]["content"]
    inputs = {i["id"]: i for b in card["body"] if b["type"] == "Container" for i in b["items"]
              if i["type"].startswith("Input.")}
    assert sorted(inputs) == [f"fld{f['field_id']}" for f in (impact, systems, customer)]
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    async def set_(user: str, field: dict, chosen: str, *, issuer: Issuer = ISSUER) -> aiohttp.ClientResponse:
        field_input = f"fld{field['field_id']}"
        data = {"action": f"fld:{iid}:{field['field_id']}:", "field": field_input, field_input: chosen}
        activity = invoke_activity(user, "set_field", data, service_url=f"{teams.url}/", tenant_id=TENANT)
        headers, body = signed_callback(issuer, APP_ID, activity)
        return await app.client.post("/im/teams/callback", data=body, headers=headers)

    # A forged click and an observer's change nothing.
    assert (await set_(ANN, impact, "0", issuer=Issuer())).status == 401
    assert (await set_(BOB, impact, "0")).status == 200
    assert (await app.get(f"/incidents/{iid}"))["fields"].get("impact") is None
    # Ann sets each kind; the answer is the updated card, the timeline says who and from where.
    for field, chosen in ((impact, "1"), (systems, "0,2"), (customer, "0")):
        answer = await (await set_(ANN, field, chosen)).json()
        assert answer["type"] == "application/vnd.microsoft.card.adaptive"
    detail = await app.get(f"/incidents/{iid}")
    assert detail["fields"] == {"impact": "Medium", "systems": ["db", "web"], "customer": True}
    assert facts(answer["value"])["Impact"] == "Medium"
    entries = [t for t in detail["timeline"] if t["kind"] == "i_r_field"]
    assert len(entries) == 3 and {t["source"] for t in entries} == {"teams"}
    assert {t["actor_id"] for t in entries} == {ann["member_id"]}
    # An unchecked toggle is false, as a Slack checkbox is; an emptied multi-select clears its field.
    await set_(ANN, customer, "")
    await set_(ANN, systems, "")
    assert (await app.get(f"/incidents/{iid}"))["fields"] == {"impact": "Medium", "customer": False}


async def test_a_service_url_the_egress_policy_refuses_is_never_called(teams) -> None:
    """botframework sends through msrest, not our session: each service_url (which callbacks supply) is
    resolved and judged first. A loopback one is refused while the policy is closed."""
    from bot.egress import client_session
    from core.egress import EgressPolicy

    async with client_session(EgressPolicy.parse(["127.0.0.1/32"])) as open_, \
            client_session(EgressPolicy()) as closed:
        adapter = TeamsAdapter.from_app(settings_for(teams.url), SECRETS, http=open_)
        await adapter.prepare()
        adapter.http = closed  # the token endpoint answered; the connector call is what is judged now
        before = len(teams.fake.requests)
        with pytest.raises(DeliveryError, match=r"refused: 127\.0\.0\.1 is a loopback address") as err:
            await adapter.send_card(ChatTarget(Platform.TEAMS, ANN), CARD)
    assert err.value.retryable is False
    assert len(teams.fake.requests) == before
