"""Feishu/Lark adapter with the real lark-oapi SDK against the local Feishu fake: cards, token refresh,
errors, signed and encrypted callbacks, the directory, and a click end to end through a running Vigil."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from bot.adapters.base import ActionEvent, ChatTarget, InboundRequest, Outcome
from bot.adapters.errors import DeliveryError
from bot.adapters.feishu import FeishuAdapter
from bot.cards import feishu as renderer
from bot.chat.actions import ActionData
from core.types import Platform
from tests.adapters.conftest import Running
from tests.cards.cases import CASES
from tests.fakes.feishu import FakeFeishu, card_action, encrypt, rate_limited, signed, url_verification
from tests.kit import until

APP_ID = "cli_a1b2c3d4e5f60718"
APP_SECRET = "fs-app-secret-Qm4Zx81Lw0Tr"
VERIFY = "fs-verify-token-Hn3Kq9Ws"
ENCRYPT = "fs-encrypt-key-Pz7Vb2Yc"
USER = "ou_7d8a6e6df7621556ce0d21922b676706"
OTHER = "ou_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
GONE = "ou_ffffeeeeddddccccbbbbaaaa99998888"
CHAT = "oc_5ad11d72b830411d72b836c20"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
CARD = renderer.render(CASES["triggered_critical_all_actions"])
CARD_AFTER = renderer.render(CASES["processing_warning_acknowledged"])
SECRETS = {"app_id": APP_ID, "app_secret": APP_SECRET, "verification_token": VERIFY, "encrypt_key": ENCRYPT}
ALL_SECRETS = (APP_SECRET, VERIFY, ENCRYPT)


@pytest.fixture
async def feishu(aiohttp_server: Any) -> Running:
    fake = FakeFeishu(app_id=APP_ID, app_secret=APP_SECRET, users={USER, OTHER}, gone={GONE}, chats={CHAT},
                      emails={"ann@example.com": USER}, mobiles={"13800138000": USER, "+447700900123": OTHER})
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


@pytest.fixture
def adapter(feishu: Running) -> FeishuAdapter:
    return FeishuAdapter.from_app({"base_url": feishu.url}, SECRETS)


NO_KEY = {k: v for k, v in SECRETS.items() if k != "encrypt_key"}


@pytest.fixture
def plain(feishu: Running) -> FeishuAdapter:
    """An app without an Encrypt Key whose admin allowed unsigned callbacks: plain JSON checked by token only."""
    return FeishuAdapter.from_app({"base_url": feishu.url, "allow_unsigned": True}, NO_KEY)


def no_secret(error: Exception, adapter: FeishuAdapter | None = None) -> None:
    shown = f"{error} {error!r} {error.args!r}"
    for secret in (*ALL_SECRETS, *(adapter.api.secrets() if adapter else ())):
        assert not secret or secret not in shown, f"secret leaked into error: {shown}"


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "secrets", "problem"), [
    ({}, {"app_id": APP_ID, "verification_token": VERIFY}, "app_secret: Field required"),
    ({}, {"app_id": APP_ID, "app_secret": APP_SECRET}, "verification_token: Field required"),
    ({}, {"app_secret": APP_SECRET, "verification_token": VERIFY}, "app_id: Field required"),
    ({"app_secret": APP_SECRET}, SECRETS, "app_secret belong in the app's secrets"),
    ({"base_url": "http://open.feishu.example"}, SECRETS, "base_url: domain must use https"),
    ({"base_url": "https://open.feishu.cn/open-apis"}, SECRETS, "base_url: domain must be an origin"),
    ({"base_url": "https://open.feishu.cn", "colour": "red"}, SECRETS, "colour: Extra inputs are not permitted"),
    ({"timeout": 0}, SECRETS, "timeout: Input should be greater than 0"),
], ids=["no-secret", "no-token", "no-app-id", "secret-in-settings", "http", "path", "unknown", "timeout"])
def test_from_app_names_the_bad_setting(settings, secrets, problem) -> None:
    with pytest.raises(ValueError, match="feishu settings") as err:
        FeishuAdapter.from_app(settings, secrets)
    assert problem in str(err.value)
    no_secret(err.value)


@pytest.mark.parametrize("base_url", ["https://open.feishu.cn", "https://open.larksuite.com/"])
def test_feishu_and_lark_are_one_adapter_with_a_base_url(base_url) -> None:
    adapter = FeishuAdapter.from_app({"base_url": base_url}, SECRETS)
    assert adapter.api.client.config.domain == base_url.rstrip("/")


# -- sending and updating ----------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "id_type"), [
    (ChatTarget(Platform.FEISHU, USER, direct=True), "open_id"),
    (ChatTarget(Platform.FEISHU, CHAT, direct=False), "chat_id"),
])
async def test_send_card_posts_an_interactive_message(adapter, feishu, target, id_type) -> None:
    ref = await adapter.send_card(target, CARD)
    [req] = feishu.fake.sent()
    assert req.query == {"receive_id_type": id_type}
    assert req.body["receive_id"] == target.conversation_id and req.body["msg_type"] == "interactive"
    assert json.loads(req.body["content"]) == CARD
    assert ref.platform is Platform.FEISHU and ref.conversation_id == target.conversation_id
    stored = feishu.fake.messages[ref.message_id]
    assert stored["card"] == CARD and ref.extra == {"chat_id": stored["chat_id"]}


async def test_update_card_patches_the_message(adapter, feishu) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    await adapter.update_card(ref, CARD_AFTER)
    [req] = feishu.fake.updates()
    assert req.path == f"/open-apis/im/v1/messages/{ref.message_id}"
    assert json.loads(req.body["content"]) == CARD_AFTER
    assert feishu.fake.messages[ref.message_id]["card"] == CARD_AFTER


async def test_the_tenant_token_is_fetched_once_and_reused(adapter, feishu) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    await adapter.update_card(ref, CARD_AFTER)
    assert feishu.fake.tokens_issued == 1


async def test_a_rejected_token_is_refreshed_and_the_call_retried_once(adapter, feishu) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    feishu.fake.expire_tokens()
    await adapter.update_card(ref, CARD_AFTER)
    assert feishu.fake.tokens_issued == 2 and feishu.fake.messages[ref.message_id]["card"] == CARD_AFTER


async def test_a_token_rejected_twice_is_not_retried_again(adapter, feishu) -> None:
    await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    for _ in range(2):
        feishu.fake.fail_next(400, 99991663, "Invalid access token for authorization.")
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    assert not err.value.retryable and "99991663" in str(err.value)
    assert feishu.fake.tokens_issued == 2 and len(feishu.fake.sent()) == 1
    no_secret(err.value, adapter)


async def test_the_token_is_refreshed_before_it_expires(feishu) -> None:
    feishu.fake.token_ttl = 2  # the adapter refreshes a short-lived token halfway through its life
    adapter = FeishuAdapter.from_app({"base_url": feishu.url}, SECRETS)
    await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    await asyncio.sleep(1.1)
    await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    assert feishu.fake.tokens_issued == 2 and len(feishu.fake.sent()) == 2


@pytest.mark.parametrize(("status", "code", "headers", "retryable", "retry_after"), [
    (429, 99991400, {"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": "7"}, True, 7.0),
    (200, 99991400, None, True, 1.0),  # a frequency limit reported with HTTP 200
    (400, 230020, None, True, 1.0),  # per-chat rate limit
    (400, 11232, None, True, 1.0),  # message service rate limit
    (500, 1500, None, True, None),
    (503, 99991000, None, True, None),
    (400, 230001, None, False, None),
    (200, 230099, None, False, None),  # HTTP 200 with a non-zero code is a failure
    (400, 99991672, None, False, None),  # the app lacks a scope
    (400, 99992361, None, False, None),
], ids=["429-reset", "200-ratelimit", "chat-rate", "msg-rate", "500", "503", "bad-param", "200-error", "scope",
        "cross-app"])
async def test_errors_are_classified(adapter, feishu, status, code, headers, retryable, retry_after) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)  # holds a token now
    feishu.fake.fail_next(status, code, f"error {code} happened", headers)
    with pytest.raises(DeliveryError) as err:
        await adapter.update_card(ref, CARD_AFTER)
    assert (err.value.retryable, err.value.retry_after, err.value.gone) == (retryable, retry_after, False)
    assert f"code {code}" in str(err.value) and f"HTTP {status}" in str(err.value)
    no_secret(err.value, adapter)


@pytest.mark.parametrize(("target", "code", "gone"), [
    (ChatTarget(Platform.FEISHU, GONE, direct=True), "230013", True),
    (ChatTarget(Platform.FEISHU, "oc_not_a_chat_of_this_bot", direct=False), "230002", False),
    (ChatTarget(Platform.FEISHU, "ou_00000000000000000000000000000000", direct=True), "99992361", False),
], ids=["user-left", "bot-not-in-chat", "unknown-user"])
async def test_unreachable_recipients_are_permanent(adapter, target, code, gone) -> None:
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(target, CARD)
    assert not err.value.retryable and err.value.gone is gone and code in str(err.value)
    no_secret(err.value, adapter)


async def test_wrong_app_secret_is_permanent_and_not_shown(feishu) -> None:
    wrong = "not-the-secret-Qq81Zz"
    bad = FeishuAdapter.from_app({"base_url": feishu.url}, {**SECRETS, "app_secret": wrong})
    with pytest.raises(DeliveryError) as err:
        await bad.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    assert not err.value.retryable and "10014" in str(err.value) and "tenant token" in str(err.value)
    assert wrong not in f"{err.value} {err.value!r}"
    assert feishu.fake.sent() == []


async def test_an_answer_that_is_not_feishu_json_is_retryable(adapter, feishu) -> None:
    await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    feishu.fake.script.append(web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html"))
    with pytest.raises(DeliveryError, match="not Feishu JSON") as err:
        await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    assert err.value.retryable


async def test_an_unreachable_platform_is_retryable() -> None:
    from tests.conftest import free_port

    adapter = FeishuAdapter.from_app({"base_url": f"http://127.0.0.1:{free_port()}", "timeout": 2}, SECRETS)
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.FEISHU, USER), CARD)
    assert err.value.retryable
    no_secret(err.value)


# -- callbacks: verify, handshake, parse, reply ------------------------------------------------------------


def request(body: bytes, headers: dict[str, str]) -> InboundRequest:
    return InboundRequest(body=body, headers=headers)


def click(key: str = ENCRYPT, ts: int = TS, token: str = VERIFY, user: str = USER, **kw: Any) -> InboundRequest:
    kw.setdefault("value", {"action": "ack:42"})
    return request(*signed(card_action(token, user, create_time_us=ts * 1_000_000, **kw), key, ts))


def tampered(req: InboundRequest, **headers: str | None) -> InboundRequest:
    merged = {**req.headers, **headers}
    return request(req.body, {k: v for k, v in merged.items() if v is not None})


VALID = click()
VERIFY_CASES = {
    "valid": (VALID, True),
    "299s-old": (click(ts=TS - 299), True),
    "stale-301s": (click(ts=TS - 301), False),
    "future-301s": (click(ts=TS + 301), False),
    "forged-signature": (tampered(VALID, **{"X-Lark-Signature": "0" * 64}), False),
    "signed-with-other-key": (request(VALID.body, signed({}, "other-key", TS)[1]), False),
    "no-signature": (tampered(VALID, **{"X-Lark-Signature": None}), False),
    "no-timestamp": (tampered(VALID, **{"X-Lark-Request-Timestamp": None}), False),
    "no-nonce": (tampered(VALID, **{"X-Lark-Request-Nonce": None}), False),
    "replayed-with-new-timestamp": (tampered(VALID, **{"X-Lark-Request-Timestamp": str(TS + 1)}), False),
    "body-changed": (request(json.dumps(encrypt(ENCRYPT, card_action(VERIFY, USER))).encode(), VALID.headers),
                     False),
    "wrong-verification-token": (click(token="someone-elses-token"), False),
    "encrypted-with-other-key": (click(key="other-key"), False),
    "not-json": (request(b"garbage", VALID.headers), False),
}


@pytest.mark.parametrize(("req", "ok"), list(VERIFY_CASES.values()), ids=list(VERIFY_CASES))
def test_verify_with_an_encrypt_key(adapter, req, ok) -> None:
    assert adapter.verify(req, NOW) is ok


PLAIN_CASES = {
    "valid": (click(key=""), True),
    "wrong-token": (click(key="", token="someone-elses-token"), False),
    "stale": (click(key="", ts=TS - 600), False),
    "no-token": (request(json.dumps({"schema": "2.0", "header": {"create_time": str(TS * 10**6)}}).encode(), {}),
                 False),
    "encrypted-but-no-key-configured": (click(), False),
}


@pytest.mark.parametrize(("req", "ok"), list(PLAIN_CASES.values()), ids=list(PLAIN_CASES))
def test_verify_without_an_encrypt_key_checks_token_and_age(plain, req, ok) -> None:
    assert plain.verify(req, NOW) is ok


@pytest.mark.parametrize("req", [click(key=""), click(),
                                 request(json.dumps(url_verification(VERIFY, "ch-4b1d")).encode(), {})],
                         ids=["plain-click", "signed-click", "challenge"])
def test_without_an_encrypt_key_every_callback_is_refused_unless_unsigned_is_allowed(feishu, req) -> None:
    unsigned = FeishuAdapter.from_app({"base_url": feishu.url}, NO_KEY)
    assert unsigned.verify(req, NOW) is False
    [problem] = unsigned.problems
    assert "no encrypt_key: callbacks are refused" in problem and "allow_unsigned" in problem


@pytest.mark.parametrize(("settings", "secrets", "problem"), [
    ({}, SECRETS, None),
    ({"allow_unsigned": True}, SECRETS, None),  # the key is there: callbacks are signed whatever the setting
    ({}, NO_KEY, "callbacks are refused"),
    ({"allow_unsigned": True}, NO_KEY, "checked by the verification token only"),
], ids=["signed", "signed-and-allowed", "unsigned", "unsigned-allowed"])
def test_an_app_without_an_encrypt_key_lists_a_problem(feishu, settings, secrets, problem) -> None:
    problems = FeishuAdapter.from_app({"base_url": feishu.url, **settings}, secrets).problems
    assert problems == [] if problem is None else (len(problems) == 1 and problem in problems[0])


@pytest.mark.parametrize("key", [ENCRYPT, ""], ids=["encrypted", "plain"])
def test_url_verification_is_answered_with_the_challenge(adapter, plain, key) -> None:
    target = adapter if key else plain
    body = json.dumps(encrypt(key, url_verification(VERIFY, "ch-4b1d")) if key else url_verification(VERIFY,
                                                                                                        "ch-4b1d"))
    req = request(body.encode(), {"Content-Type": "application/json"})
    assert target.verify(req, NOW) is True
    reply = target.handshake(req)
    assert reply is not None and reply.status == 200 and json.loads(reply.body) == {"challenge": "ch-4b1d"}
    forged = request(json.dumps(url_verification("wrong-token", "ch-4b1d")).encode(), {})
    assert plain.verify(forged, NOW) is False


def test_a_click_is_not_a_handshake(adapter) -> None:
    assert adapter.handshake(VALID) is None


def rendered_clicks() -> list[tuple[str, dict[str, Any]]]:
    """Every interactive element of every rendered card, as the `action` Feishu would send for it."""
    out: dict[str, dict[str, Any]] = {}

    def walk(node: Any, in_form: bool) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "button":
                value = node["behaviors"][0]["value"]
                form = {"form_value": {"comment": "disk cleaned"}} if in_form else {}
                out[value["action"]] = {"value": value, "tag": "button", **form}
            elif node.get("tag") == "select_static":
                for option in node["options"]:
                    out[option["value"]] = {"option": option["value"], "tag": "select_static"}
            for child in node.values():
                walk(child, in_form or node.get("tag") == "form")
        elif isinstance(node, list):
            for child in node:
                walk(child, in_form)

    for case in CASES.values():
        walk(renderer.render(case), False)
    return sorted(out.items())


@pytest.mark.parametrize(("packed", "action"), rendered_clicks(), ids=[p for p, _ in rendered_clicks()])
def test_parse_action_for_every_control_the_card_offers(adapter, packed, action) -> None:
    event = adapter.parse_action(click(message_id="om_9", chat_id="oc_9", **action))
    assert event is not None and event.platform is Platform.FEISHU and event.im_user_id == USER
    assert event.payload == packed and ActionData.unpack(event.payload).pack() == packed
    assert event.inputs == ({"comment": "disk cleaned"} if "form_value" in action else {})
    assert event.context["open_message_id"] == "om_9" and event.context["open_chat_id"] == "oc_9"


def test_rendered_controls_cover_the_lifecycle() -> None:
    actions = {ActionData.unpack(p).action.value for p, _ in rendered_clicks()}
    assert {"ack", "unack", "close", "reopen", "escalate", "snooze", "wake", "comment", "silence_similar"} <= actions


def test_parse_action_reads_a_plain_callback(plain) -> None:
    event = plain.parse_action(click(key="", value={"action": "cls:5"}))
    assert event == ActionEvent(Platform.FEISHU, USER, "cls:5", {}, event.context) and event.context["union_id"]


@pytest.mark.parametrize("payload", [
    {"schema": "2.0", "header": {"event_type": "im.message.receive_v1", "token": VERIFY}, "event": {}},
    {"schema": "2.0", "header": {"event_type": "card.action.trigger", "token": VERIFY},
     "event": {"action": {"value": {"action": "ack:1"}}}},
    {"schema": "2.0", "header": {"event_type": "card.action.trigger", "token": VERIFY},
     "event": {"operator": {"open_id": USER}, "action": {"value": {"other": "x"}}}},
    {"schema": "2.0", "header": {"event_type": "card.action.trigger", "token": VERIFY},
     "event": {"operator": {"open_id": USER}, "action": {"value": "ack:1"}}},
    {"schema": "2.0", "header": {"event_type": "card.action.trigger", "token": VERIFY},
     "event": {"operator": {"open_id": USER}, "action": {"value": {"action": 5}}}},
    ["not", "an", "object"],
], ids=["other-event", "no-operator", "no-action-key", "value-not-object", "action-not-string", "list"])
def test_parse_action_ignores_what_is_not_a_vigil_click(plain, payload) -> None:
    assert plain.parse_action(request(json.dumps(payload).encode(), {})) is None


@pytest.mark.parametrize(("outcome", "expected"), [
    (Outcome(True, "Ann acknowledged incident #7.", CARD),
     {"toast": {"type": "success", "content": "Ann acknowledged incident #7."}, "card": {"type": "raw", "data": CARD}}),
    (Outcome(False, "Your feishu account is not linked."),
     {"toast": {"type": "error", "content": "Your feishu account is not linked."}}),
    (Outcome(True, ""), {}),
], ids=["done", "refused", "nothing"])
def test_reply_shows_a_toast_and_the_card_at_once(adapter, outcome, expected) -> None:
    reply = adapter.reply(VALID, outcome)
    assert reply.status == 200 and reply.content_type == "application/json"
    assert json.loads(reply.body) == expected


# -- directory -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "phone", "found", "asked"), [
    ("ann@example.com", None, (USER, "open_id"), {"emails": ["ann@example.com"]}),
    (None, "+8613800138000", (USER, "open_id"), {"mobiles": ["13800138000"]}),
    ("nobody@example.com", "+447700900123", (OTHER, "open_id"),
     {"emails": ["nobody@example.com"], "mobiles": ["+447700900123"]}),
    ("nobody@example.com", "+8613900000000", None, {"emails": ["nobody@example.com"], "mobiles": ["13900000000"]}),
], ids=["email", "mainland-mobile", "international-mobile", "unknown"])
async def test_directory_finds_open_ids(adapter, feishu, email, phone, found, asked) -> None:
    assert await adapter.directory.lookup(email=email, phone=phone) == found
    [req] = feishu.fake.requests
    assert req.path == "/open-apis/contact/v3/users/batch_get_id" and req.query == {"user_id_type": "open_id"}
    assert req.body == {**asked, "include_resigned": False}


async def test_directory_without_email_or_phone_asks_nothing(adapter, feishu) -> None:
    assert await adapter.directory.lookup(email=None, phone=None) is None
    assert feishu.fake.requests == [] and feishu.fake.tokens_issued == 0


async def test_directory_errors_are_delivery_errors(adapter, feishu) -> None:
    feishu.fake.fail_next(*rate_limited(3))
    with pytest.raises(DeliveryError) as err:
        await adapter.directory.lookup(email="ann@example.com", phone=None)
    assert err.value.retryable and err.value.retry_after == 3.0
    no_secret(err.value, adapter)


# -- end to end through a running Vigil ----------------------------------------------------------------------


@pytest.fixture
async def vigil(settings, aiohttp_client, feishu):  # type: ignore[no-untyped-def]
    from bot.server import create_app
    from tests.kit import Api

    return Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
               "test-admin-token-0123456789abcdef")


async def test_a_click_acknowledges_and_updates_the_card(vigil, feishu) -> None:
    from core.clock import utcnow

    app = vigil
    out = await app.post("/im-apps", {"platform": "feishu", "name": "corp", "settings": {"base_url": feishu.url},
                                      "secrets": SECRETS})
    assert out["problems"] == [] and sorted(out["secret_keys"]) == sorted(SECRETS)
    ann = await app.post("/members", {"name": "Ann"})
    await app.post("/mapping-tables/feishu/rows", {"member_id": ann["member_id"], "im_user_id": USER})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(feishu.fake.sent()))
    await app.settle()
    [sent] = feishu.fake.sent()
    assert sent.query == {"receive_id_type": "open_id"} and sent.body["receive_id"] == USER
    assert "db-1 is down" in sent.body["content"]
    message_id = next(iter(feishu.fake.messages))
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    async def post(payload: dict[str, Any], **forged: str) -> tuple[int, Any]:
        body, headers = signed(payload, ENCRYPT, int(utcnow().timestamp()))
        resp = await app.client.post("/im/feishu/callback", data=body, headers={**headers, **forged})
        return resp.status, await resp.json()

    status, answer = await post(url_verification(VERIFY, "ch-e2e"))
    assert (status, answer) == (200, {"challenge": "ch-e2e"})

    status, answer = await post(card_action(VERIFY, OTHER, value={"action": f"ack:{iid}"}, message_id=message_id))
    assert status == 200 and answer["toast"]["type"] == "error" and "not linked" in answer["toast"]["content"]
    assert "card" not in answer
    status, answer = await post(card_action(VERIFY, USER, value={"action": f"ack:{iid}"}, message_id=message_id),
                                **{"X-Lark-Signature": "ab" * 32})
    assert status == 401
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"
    assert feishu.fake.updates() == []

    status, answer = await post(card_action(VERIFY, USER, value={"action": f"ack:{iid}"}, message_id=message_id))
    assert status == 200 and answer["toast"] == {"type": "success", "content": answer["toast"]["content"]}
    assert "Ann acknowledged" in answer["toast"]["content"]
    assert answer["card"]["type"] == "raw" and "Ann" in json.dumps(answer["card"]["data"])
    detail = await app.get(f"/incidents/{iid}")
    assert detail["progress"] == "Processing"
    [acked] = [t for t in detail["timeline"] if t["kind"] == "i_ack"]
    assert acked["actor_id"] == ann["member_id"] and acked["source"] == "feishu"

    await app.settle()
    await until(lambda: bool(feishu.fake.updates()))
    update = feishu.fake.updates()[-1]
    assert update.path == f"/open-apis/im/v1/messages/{message_id}"
    card = feishu.fake.messages[message_id]["card"]
    assert "**Acknowledged by:** Ann" in json.dumps(card, ensure_ascii=False).replace("\\n", "\n")

    status, answer = await post(card_action(VERIFY, USER, value={"action": f"cmt:{iid}"},
                                            form_value={"comment": "disk cleaned"}, message_id=message_id))
    assert status == 200 and answer["toast"]["type"] == "success"
    detail = await app.get(f"/incidents/{iid}")
    assert any("disk cleaned" in json.dumps(t) for t in detail["timeline"])



async def test_auto_match_links_members_through_the_feishu_directory(vigil, feishu) -> None:
    app = vigil
    await app.post("/im-apps", {"platform": "feishu", "name": "corp", "settings": {"base_url": feishu.url},
                                "secrets": SECRETS})
    ann = await app.post("/members", {"name": "Ann", "email": "ann@example.com"})
    bob = await app.post("/members", {"name": "Bob", "email": "bob@example.com"})
    report = await app.post("/mapping-tables/feishu/auto-match")
    assert [(m["member_id"], m["im_user_id"]) for m in report["matched"]] == [(ann["member_id"], USER)]
    assert [u["member_id"] for u in report["unmatched"]] == [bob["member_id"]]
    rows = (await app.get("/mapping-tables/feishu/rows"))["items"]
    assert [(r["member_id"], r["im_user_id"], r["id_type"]) for r in rows] == [(ann["member_id"], USER, "open_id")]


async def test_an_app_without_an_encrypt_key_lists_it_and_refuses_callbacks_until_allowed(vigil, feishu) -> None:
    from core.clock import utcnow

    app = vigil
    out = await app.post("/im-apps", {"platform": "feishu", "name": "corp", "settings": {"base_url": feishu.url},
                                      "secrets": NO_KEY})
    [problem] = out["problems"]
    assert problem.startswith(f"im app {out['im_app_id']}: feishu: no encrypt_key: callbacks are refused")
    ann = await app.post("/members", {"name": "Ann"})
    await app.post("/mapping-tables/feishu/rows", {"member_id": ann["member_id"], "im_user_id": USER})
    _, key = await app.channel_with_integration()
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    async def ack() -> int:
        body, headers = signed(card_action(VERIFY, USER, value={"action": f"ack:{iid}"}), "",
                               int(utcnow().timestamp()))
        return (await app.client.post("/im/feishu/callback", data=body, headers=headers)).status

    assert await ack() == 401
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"
    out = await app.patch(f"/im-apps/{out['im_app_id']}", {"settings": {"base_url": feishu.url,
                                                                         "allow_unsigned": True}})
    [problem] = out["problems"]
    assert "allow_unsigned is on" in problem and "checked by the verification token only" in problem
    assert await ack() == 200
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Processing"


async def test_the_sdk_sends_nowhere_the_egress_policy_refuses(feishu) -> None:
    """lark-oapi has its own HTTP client: the base URL is resolved and judged before each call."""
    from bot.egress import client_session
    from core.egress import EgressPolicy

    async with client_session(EgressPolicy()) as closed:  # the default: no internal addresses
        adapter = FeishuAdapter.from_app({"base_url": feishu.url}, SECRETS, http=closed)
        with pytest.raises(DeliveryError, match=r"refused: 127\.0\.0\.1 is a loopback address") as err:
            await adapter.send_card(ChatTarget(Platform.FEISHU, USER, direct=True), CARD)
    assert err.value.retryable is False
    assert feishu.fake.requests == []  # not even the tenant token was asked for
