"""WeCom adapter against the local WeCom fake: template cards, response codes, token refresh, errcodes,
encrypted callbacks (verify, URL verification, parse, reply), the directory, and a click end to end."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.adapters.base import (
    ActionEvent,
    ChatTarget,
    InboundRequest,
    MessageRef,
    Outcome,
    update_codes,
    with_update_codes,
)
from bot.adapters.errors import DeliveryError
from bot.adapters.wecom import SIGNATURE_WINDOW_S, WeComAdapter
from bot.cards import wecom as renderer
from bot.chat.actions import ActionData
from core.types import Platform
from tests.adapters.conftest import Running
from tests.cards.cases import CASES
from tests.fakes.wecom import (
    FakeWeCom,
    card_event_xml,
    encrypt,
    encrypted_callback,
    signature,
    url_verification,
)
from tests.kit import until

CORP_ID = "ww0a1b2c3d4e5f6a7b"
CORP_SECRET = "wecom-corp-secret-Zx81Lq0pVb3"
TOKEN = "cbToken7Hk2Qw"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OTHER_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
AGENT_ID = 1000002
USER, OTHER = "ZhangSan", "LiSi"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
CARD = renderer.render(CASES["triggered_critical_all_actions"])
TASK = CARD["task_id"]
SECRETS = {"corp_id": CORP_ID, "corp_secret": CORP_SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY}


@pytest.fixture
async def wecom(aiohttp_server: Any) -> Running:
    fake = FakeWeCom(corp_id=CORP_ID, corp_secret=CORP_SECRET, agent_id=AGENT_ID, users={USER, OTHER},
                     mobiles={"13800138000": USER, "+852 61234567": OTHER},
                     emails={("zhangsan@corp.example", 1): USER, ("lisi@gmail.example", 2): OTHER})
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


def settings_for(url: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": url, "agent_id": AGENT_ID, **extra}


@pytest.fixture
async def adapter(wecom: Running, session: aiohttp.ClientSession) -> WeComAdapter:
    return WeComAdapter.from_app(settings_for(wecom.url), SECRETS, http=session)


def all_secrets(adapter: WeComAdapter) -> list[str]:
    return [CORP_SECRET, TOKEN, AES_KEY, *adapter.api.secrets()]


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "secrets", "problem"), [
    ({"base_url": "http://x"}, SECRETS, "agent_id: Field required"),
    ({"agent_id": "abc"}, SECRETS, "agent_id: Input should be a valid integer"),
    ({"agent_id": 0}, SECRETS, "agent_id: Input should be greater than 0"),
    ({"agent_id": 1}, {**SECRETS, "corp_secret": ""}, "corp_secret: Value should have at least 1"),
    ({"agent_id": 1}, {k: v for k, v in SECRETS.items() if k != "token"}, "token: Field required"),
    ({"agent_id": 1}, {**SECRETS, "encoding_aes_key": AES_KEY[:-1]}, "encoding_aes_key: Value error, must be the"),
    ({"agent_id": 1}, {**SECRETS, "encoding_aes_key": "!" * 43}, "encoding_aes_key: Value error, must be the"),
    ({"agent_id": 1, "agentid": 1}, SECRETS, "agentid: Extra inputs are not permitted"),
    ({"agent_id": 1, "token": TOKEN}, SECRETS, "token belong in the app's secrets"),
])
def test_from_app_names_the_bad_setting(settings, secrets, problem, session) -> None:
    with pytest.raises(ValueError, match="wecom settings") as err:
        WeComAdapter.from_app(settings, secrets, http=session)
    assert problem in str(err.value)
    for secret in (CORP_SECRET, TOKEN, AES_KEY, AES_KEY[:-1]):
        assert secret not in str(err.value)


def test_defaults(session) -> None:
    adapter = WeComAdapter.from_app({"agent_id": "1000002"}, SECRETS, http=session)
    assert adapter.config.base_url == "https://qyapi.weixin.qq.com" and adapter.config.agent_id == AGENT_ID


# -- sending and updating ----------------------------------------------------------------------------


async def test_send_card_sends_the_template_card_to_the_user(adapter, wecom) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    [req] = wecom.fake.sent()
    assert req.path == "/cgi-bin/message/send"
    assert req.body == {"touser": USER, "msgtype": "template_card", "agentid": AGENT_ID, "template_card": CARD}
    assert ref.platform is Platform.WECOM and ref.conversation_id == USER and ref.message_id
    [(code, issued)] = update_codes(ref.extra)
    assert ref.extra["task_id"] == TASK and code and abs(issued - time.time()) < 60
    assert wecom.fake.cards[(USER, TASK)] == CARD


async def test_a_group_chat_gets_the_card_as_an_appchat_text_card(adapter, wecom) -> None:
    wecom.fake.chats.add("opsroom01")
    ref = await adapter.send_card(ChatTarget(Platform.WECOM, "opsroom01", direct=False), CARD)
    [req] = wecom.fake.chat_posts()
    assert req.body["chatid"] == "opsroom01" and req.body["msgtype"] == "textcard"
    card = req.body["textcard"]
    assert card["title"] == CARD["main_title"]["title"] and card["url"] == CARD["card_action"]["url"]
    assert '<div class="normal">Channel: Payments</div>' in card["description"] and ref.conversation_id == "opsroom01"
    assert card["description"].startswith('<div class="gray">') and len(card["description"].encode()) <= 512
    assert not adapter.updates_group_cards  # an appchat message cannot be edited: card sync leaves it alone
    with pytest.raises(DeliveryError, match="86003") as err:
        await adapter.send_card(ChatTarget(Platform.WECOM, "elsewhere9", direct=False), CARD)
    assert not err.value.retryable


@pytest.mark.parametrize(("target", "card", "problem"), [
    (ChatTarget(Platform.WECOM, USER), {"blocks": []}, "button_interaction"),
    (ChatTarget(Platform.WECOM, USER), {**CARD, "task_id": ""}, "task_id"),
])
async def test_what_wecom_cannot_take_is_refused_before_sending(adapter, wecom, target, card, problem) -> None:
    with pytest.raises(DeliveryError, match=problem) as err:
        await adapter.send_card(target, card)
    assert not err.value.retryable and wecom.fake.requests == []


def acked_card() -> dict[str, Any]:
    return renderer.render(CASES["processing_warning_acknowledged"])


async def test_update_card_spends_the_send_code_then_waits_for_a_click(adapter, wecom) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    await adapter.update_card(ref, acked_card())
    [req] = wecom.fake.updates()
    assert req.body["userids"] == [USER] and req.body["agentid"] == AGENT_ID
    assert req.body["response_code"] == update_codes(ref.extra)[0][0]
    # The card keeps its task id, so later clicks still name the CardRef's task.
    assert req.body["template_card"] == {**acked_card(), "task_id": TASK}
    assert wecom.fake.cards[(USER, TASK)]["main_title"] == acked_card()["main_title"]

    with pytest.raises(DeliveryError, match="cannot be updated until it is clicked again") as err:
        await adapter.update_card(ref, CARD)
    assert not err.value.retryable and len(wecom.fake.updates()) == 1

    # A click hands out a fresh code; the click path stores it with the card reference.
    query, body, code = wecom.fake.click(TOKEN, AES_KEY, USER, "ack:42", TASK)
    event = adapter.parse_action(InboundRequest(body=body, headers={}, query=query))
    assert event is not None and event.context["response_code"] == code
    clicked = MessageRef(ref.platform, USER, ref.message_id, with_update_codes(
        ref.extra, [(code, time.time()), *update_codes(ref.extra)]))
    await adapter.update_card(clicked, CARD)
    assert wecom.fake.updates()[-1].body["response_code"] == code
    # Neither code goes out again, even when a caller passes a ref that still lists them.
    with pytest.raises(DeliveryError, match="cannot be updated"):
        await adapter.update_card(clicked, CARD)
    assert len(wecom.fake.updates()) == 2 and wecom.fake.refused_codes == []


async def test_update_card_refuses_what_is_not_a_template_card(adapter, wecom) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    with pytest.raises(DeliveryError, match="button_interaction") as err:
        await adapter.update_card(ref, {"cardData": {}})
    assert not err.value.retryable and wecom.fake.updates() == []


async def test_a_code_survives_a_retryable_failure(adapter, wecom) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    wecom.fake.fail_next(-1, "system busy")
    with pytest.raises(DeliveryError) as err:
        await adapter.update_card(ref, acked_card())
    assert err.value.retryable
    await adapter.update_card(ref, acked_card())  # the retry uses the same, still unspent, code
    assert wecom.fake.updates()[-1].body["response_code"] == update_codes(ref.extra)[0][0]


async def test_an_expired_send_code_is_not_used(adapter, wecom) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    [(code, _)] = update_codes(ref.extra)
    old = MessageRef(ref.platform, USER, ref.message_id, with_update_codes(ref.extra, [(code, time.time() - 73 * 3600)]))
    with pytest.raises(DeliveryError, match="cannot be updated"):
        await adapter.update_card(old, acked_card())
    assert wecom.fake.updates() == []


async def test_an_access_token_is_reused_then_refreshed_when_rejected(adapter, wecom) -> None:
    to = ChatTarget(Platform.WECOM, USER)
    await adapter.send_card(to, CARD)
    await adapter.send_card(to, CARD)
    assert wecom.fake.tokens_issued == 1
    wecom.fake.expire_tokens()  # WeCom answers errcode 40014; the adapter refreshes once and retries
    await adapter.send_card(to, CARD)
    wecom.fake.fail_next(42001, "access_token expired")
    await adapter.send_card(to, CARD)
    assert wecom.fake.tokens_issued == 3 and len(wecom.fake.sent()) == 4


@pytest.mark.parametrize(("errcode", "retryable", "retry_after", "gone"), [
    (-1, True, 1.0, False),
    (45009, True, 60.0, False),
    (45033, True, 1.0, False),
    (60111, False, None, True),
    (81013, False, None, True),
    (40058, False, None, False),
    (60020, False, None, False),
    (40014, False, None, False),  # still rejected after one refresh: permanent
])
async def test_errcodes_with_http_200_are_classified(adapter, wecom, assert_no_secret, errcode, retryable,
                                                     retry_after, gone) -> None:
    await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)  # holds a token now
    wecom.fake.fail_next(errcode, f"errcode {errcode} happened")
    if errcode == 40014:
        wecom.fake.fail_next(errcode, "invalid access_token")
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    assert (err.value.retryable, err.value.retry_after, err.value.gone) == (retryable, retry_after, gone)
    assert f"errcode {errcode}" in str(err.value)
    assert_no_secret(err.value, *all_secrets(adapter))


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (503, True), (404, False)])
async def test_http_errors_are_classified(adapter, wecom, assert_no_secret, status, retryable) -> None:
    await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    wecom.fake.fail_next_http(status)
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    assert err.value.retryable is retryable and f"HTTP {status}" in str(err.value)
    assert_no_secret(err.value, *all_secrets(adapter))


async def test_a_user_outside_the_app_is_gone(adapter, assert_no_secret) -> None:
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.WECOM, "left-the-company"), CARD)
    assert err.value.gone and not err.value.retryable and "errcode 81013" in str(err.value)
    assert_no_secret(err.value, *all_secrets(adapter))


@pytest.mark.parametrize(("secrets", "errcode"), [
    ({**SECRETS, "corp_secret": "not-the-secret-Qq81"}, 40001),
    ({**SECRETS, "corp_id": "wwsomeoneelse"}, 40013),
])
async def test_rejected_credentials_are_permanent_and_not_shown(wecom, session, assert_no_secret, secrets,
                                                                errcode) -> None:
    bad = WeComAdapter.from_app(settings_for(wecom.url), secrets, http=session)
    with pytest.raises(DeliveryError) as err:
        await bad.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    assert not err.value.retryable and f"errcode {errcode}" in str(err.value)
    assert_no_secret(err.value, secrets["corp_secret"])


async def test_unreachable_platform_is_retryable(session, assert_no_secret) -> None:
    from tests.conftest import free_port

    adapter = WeComAdapter.from_app(settings_for(f"http://127.0.0.1:{free_port()}"), SECRETS, http=session)
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    assert err.value.retryable
    assert_no_secret(err.value, CORP_SECRET)


# -- callbacks: verify, handshake, parse, reply ---------------------------------------------------------


def click(user: str, key: str, *, selected: dict[str, list[str]] | None = None, timestamp: int = TS,
          token: str = TOKEN, aes_key: str = AES_KEY, corp_id: str = CORP_ID, code: str = "rc-1") -> InboundRequest:
    xml = card_event_xml(corp_id, AGENT_ID, user, key, TASK, code, selected=selected)
    query, body = encrypted_callback(token, aes_key, corp_id, AGENT_ID, xml, timestamp=timestamp)
    return InboundRequest(body=body, headers={"Content-Type": "text/xml"}, query=query, method="POST")


def forged_signature(req: InboundRequest) -> InboundRequest:
    return InboundRequest(body=req.body, headers=req.headers, query={**req.query, "msg_signature": "0" * 40})


def without(req: InboundRequest, key: str) -> InboundRequest:
    return InboundRequest(body=req.body, headers=req.headers, query={k: v for k, v in req.query.items() if k != key})


def tampered(req: InboundRequest) -> InboundRequest:
    cipher = encrypt(AES_KEY, CORP_ID, b"<xml><MsgType>event</MsgType></xml>")
    return InboundRequest(body=f"<xml><Encrypt><![CDATA[{cipher}]]></Encrypt></xml>".encode(), headers={},
                          query=req.query)


def signed_body(body: bytes) -> InboundRequest:
    query = {"msg_signature": signature(TOKEN, str(TS), "n1", ""), "timestamp": str(TS), "nonce": "n1"}
    return InboundRequest(body=body, headers={}, query=query)


BOMB = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b"<xml><Encrypt>&b;</Encrypt></xml>")
WINDOW = SIGNATURE_WINDOW_S


@pytest.mark.parametrize(("req", "ok"), [
    (click(USER, "ack:42"), True),
    (click(USER, "ack:42", timestamp=TS - WINDOW + 10), True),
    (click(USER, "ack:42", timestamp=TS - WINDOW - 10), False),  # replayed: outside the window
    (click(USER, "ack:42", timestamp=TS + WINDOW + 10), False),
    (click(USER, "ack:42", token="someone-elses-token"), False),
    (forged_signature(click(USER, "ack:42")), False),
    (without(click(USER, "ack:42"), "msg_signature"), False),
    (without(click(USER, "ack:42"), "timestamp"), False),
    (without(click(USER, "ack:42"), "nonce"), False),
    (tampered(click(USER, "ack:42")), False),
    (click(USER, "ack:42", corp_id="wwanothercorp"), False),  # right token, encrypted for another corp
    (click(USER, "ack:42", aes_key=OTHER_AES_KEY), False),
    (signed_body(b"not xml"), False),
    (signed_body(BOMB), False),
], ids=["valid", "inside-window", "stale", "future", "other-token", "forged", "no-signature", "no-timestamp",
        "no-nonce", "tampered", "other-corp", "other-key", "garbage", "entity-bomb"])
def test_verify(adapter, req, ok) -> None:
    assert adapter.verify(req, NOW) is ok


# WeCom's published WXBizMsgCrypt vectors (docs path 90968 and its sample code): the crypto is checked
# against WeCom itself, not only against our own fake.
OFFICIAL = {"corp_id": "wx5823bf96d3bd56c7", "corp_secret": "x", "token": "QDG6eK",
            "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}
OFFICIAL_ECHO = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
                 "nonce": "263014780", "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RP"
                                                  "cs8TgAE7OaBO+FZXvnaqQ=="}
OFFICIAL_POST = (
    {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813", "nonce": "1372623149"},
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJ"
    "Ts3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf"
    "5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWr"
    "QUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uy"
    "PIGHBZZIs2pDBS8R07+qN+E7Q==")


def test_official_vectors(session) -> None:
    adapter = WeComAdapter.from_app({"agent_id": 218}, OFFICIAL, http=session)
    echo = InboundRequest(body=b"", headers={}, query=OFFICIAL_ECHO, method="GET")
    assert adapter.verify(echo, datetime.fromtimestamp(1409659589, UTC))
    assert adapter.handshake(echo).body == b"1616140317555161061"  # type: ignore[union-attr]
    query, cipher = OFFICIAL_POST
    post = InboundRequest(body=f"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
                               f"{cipher}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>".encode(),
                          headers={}, query=query)
    assert adapter.verify(post, datetime.fromtimestamp(1409659813, UTC))
    assert adapter.parse_action(post) is None  # a text message "hello", not a card click
    assert signature("QDG6eK", query["timestamp"], query["nonce"], cipher) == query["msg_signature"]


def test_url_verification_answers_the_decrypted_echostr(adapter) -> None:
    query = url_verification(TOKEN, AES_KEY, CORP_ID, "echo-7731029384", timestamp=TS)
    req = InboundRequest(body=b"", headers={}, query=query, method="GET")
    assert adapter.verify(req, NOW)
    reply = adapter.handshake(req)
    assert reply is not None and (reply.status, reply.body, reply.content_type) == (200, b"echo-7731029384",
                                                                                    "text/plain")
    assert adapter.parse_action(req) is None


def test_url_verification_with_another_token_fails(adapter) -> None:
    query = url_verification("not-our-token", AES_KEY, CORP_ID, "echo", timestamp=TS)
    assert not adapter.verify(InboundRequest(body=b"", headers={}, query=query, method="GET"), NOW)


def test_a_click_is_not_a_handshake(adapter) -> None:
    assert adapter.handshake(click(USER, "ack:42")) is None


def offered_payloads() -> list[str]:
    keys = {b["key"] for case in CASES.values() for b in renderer.render(case)["button_list"] if b.get("key")}
    return sorted(keys)


@pytest.mark.parametrize("payload", offered_payloads())
def test_parse_action_for_every_button_the_card_offers(adapter, payload) -> None:
    event = adapter.parse_action(click(USER, payload, code="rc-77"))
    assert event == ActionEvent(Platform.WECOM, USER, payload, {},
                                {"task_id": TASK, "response_code": "rc-77", "card_type": "button_interaction"})
    assert ActionData.unpack(event.payload).pack() == payload


def test_offered_buttons_cover_the_lifecycle() -> None:
    actions = {ActionData.unpack(p).action.value for p in offered_payloads()}
    assert {"ack", "unack", "close", "reopen", "escalate", "snooze", "wake", "silence_similar"} <= actions


@pytest.mark.parametrize(("key", "selected", "inputs"), [
    ("snz:42:30", {"vigil_snooze": ["snz:42:240"]}, {"snooze": "snz:42:240"}),
    ("snz:42:30", {}, {}),
    ("snz:42:30", {"other_question": ["x"]}, {}),
    # The dropdown's current choice comes with every button: only the Snooze button uses it.
    ("ack:42", {"vigil_snooze": ["snz:42:240"]}, {}),
])
def test_parse_action_takes_the_snooze_choice_for_the_snooze_button(adapter, key, selected, inputs) -> None:
    event = adapter.parse_action(click(USER, key, selected=selected))
    assert event is not None and event.payload == key and event.inputs == inputs


def test_snooze_options_of_the_rendered_card_parse() -> None:
    options = [o["id"] for o in CARD["button_selection"]["option_list"]]
    assert CARD["button_selection"]["question_key"] == "vigil_snooze"
    assert all(ActionData.unpack(o).action.value == "snooze" for o in options)


def event_request(xml: str) -> InboundRequest:
    query, body = encrypted_callback(TOKEN, AES_KEY, CORP_ID, AGENT_ID, xml, timestamp=TS)
    return InboundRequest(body=body, headers={}, query=query)


@pytest.mark.parametrize("xml", [
    "<xml><ToUserName>c</ToUserName><FromUserName>ZhangSan</FromUserName><MsgType>event</MsgType>"
    "<Event>enter_agent</Event><EventKey></EventKey></xml>",
    "<xml><FromUserName>ZhangSan</FromUserName><MsgType>text</MsgType><Content>ack 42</Content></xml>",
    "<xml><FromUserName>ZhangSan</FromUserName><MsgType>event</MsgType><Event>template_card_event</Event></xml>",
    "<xml><MsgType>event</MsgType><Event>template_card_event</Event><EventKey>ack:1</EventKey></xml>",
    "not xml at all",
], ids=["enter-agent", "text-message", "no-event-key", "no-user", "garbage"])
def test_parse_action_ignores_what_is_not_a_vigil_click(adapter, xml) -> None:
    assert adapter.parse_action(event_request(xml)) is None


async def test_reply_is_empty_and_a_refused_click_is_explained_by_message(adapter, wecom) -> None:
    ok = adapter.reply(click(USER, "ack:42"), Outcome(True, "Ann acknowledged incident #42.", CARD))
    refused = adapter.reply(click(OTHER, "ack:42"), Outcome(False, "Your wecom account (LiSi) is not linked."))
    assert (ok.status, ok.body) == (200, b"") and (refused.status, refused.body) == (200, b"")
    await adapter.stop()
    [text] = wecom.fake.texts()
    assert text.body == {"touser": OTHER, "msgtype": "text", "agentid": AGENT_ID,
                         "text": {"content": "Your wecom account (LiSi) is not linked."}}


# -- directory -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "phone", "found", "calls"), [
    ("zhangsan@corp.example", None, (USER, "userid"), [("get_userid_by_email", {"email": "zhangsan@corp.example",
                                                                                "email_type": 1})]),
    ("lisi@gmail.example", None, (OTHER, "userid"), [
        ("get_userid_by_email", {"email": "lisi@gmail.example", "email_type": 1}),
        ("get_userid_by_email", {"email": "lisi@gmail.example", "email_type": 2})]),
    (None, "+8613800138000", (USER, "userid"), [("getuserid", {"mobile": "13800138000"})]),
    (None, "+852 61234567", (OTHER, "userid"), [("getuserid", {"mobile": "+852 61234567"})]),
    (None, "+8613900000000", None, [("getuserid", {"mobile": "13900000000"})]),
    (None, None, None, []),
])
async def test_directory_finds_users_by_email_or_mobile(adapter, wecom, email, phone, found, calls) -> None:
    assert await adapter.directory.lookup(email=email, phone=phone) == found
    assert [(r.path.rsplit("/", 1)[1], r.body) for r in wecom.fake.requests] == calls


async def test_directory_refreshes_an_expired_token(adapter, wecom) -> None:
    await adapter.directory.lookup(email=None, phone="+8613800138000")
    wecom.fake.expire_tokens()
    assert await adapter.directory.lookup(email=None, phone="+8613800138000") == (USER, "userid")
    assert wecom.fake.tokens_issued == 2


@pytest.mark.parametrize(("errcode", "retryable"), [(-1, True), (45009, True), (60011, False), (48002, False)])
async def test_directory_errcodes_are_failures(adapter, wecom, assert_no_secret, errcode, retryable) -> None:
    wecom.fake.fail_next(errcode, "something went wrong")
    with pytest.raises(DeliveryError) as err:
        await adapter.directory.lookup(email=None, phone="+8613800138000")
    assert err.value.retryable is retryable and f"errcode {errcode}" in str(err.value)
    assert_no_secret(err.value, *all_secrets(adapter))


# -- end to end through a running Vigil --------------------------------------------------------------------


@pytest.fixture
async def vigil(settings, aiohttp_client, wecom):  # type: ignore[no-untyped-def]
    from bot.server import create_app
    from tests.kit import Api

    return Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
               "test-admin-token-0123456789abcdef")


def rows(card: dict[str, Any]) -> dict[str, str]:
    return {r["keyname"]: r["value"] for r in card["horizontal_content_list"]}


async def test_click_acknowledges_and_updates_the_card(vigil, wecom) -> None:
    app, fake = vigil, wecom.fake
    out = await app.post("/im-apps", {"platform": "wecom", "name": "corp", "settings": settings_for(wecom.url),
                                      "secrets": SECRETS})
    assert out["problems"] == [] and out["secret_keys"] == sorted(SECRETS)
    ann = await app.post("/members", {"name": "Ann"})
    await app.post("/mapping-tables/wecom/rows", {"member_id": ann["member_id"], "im_user_id": USER})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(fake.sent()))
    await app.settle()
    [sent] = fake.sent()
    card, task = sent.body["template_card"], sent.body["template_card"]["task_id"]
    assert sent.body["touser"] == USER and "db-1 is down" in card["main_title"]["title"]
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    # WeCom checks the callback URL first.
    query = url_verification(TOKEN, AES_KEY, CORP_ID, "echo-4821")
    resp = await app.client.get("/im/wecom/callback", params=query)
    assert resp.status == 200 and await resp.text() == "echo-4821"

    # An unmapped user: a polite message, nothing changes.
    query, body, _ = fake.click(TOKEN, AES_KEY, OTHER, f"ack:{iid}", task)
    resp = await app.client.post("/im/wecom/callback", params=query, data=body)
    assert resp.status == 200 and await resp.read() == b""
    await until(lambda: bool(fake.texts()))
    [notice] = fake.texts()
    assert notice.body["touser"] == OTHER and "not linked" in notice.body["text"]["content"]
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"

    # A forged click: 401, nothing changes.
    query, body, _ = fake.click("not-the-callback-token", AES_KEY, USER, f"cls:{iid}", task)
    resp = await app.client.post("/im/wecom/callback", params=query, data=body)
    assert resp.status == 401
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"

    # The mapped user acknowledges; the card is updated with the click's response_code.
    query, body, code = fake.click(TOKEN, AES_KEY, USER, f"ack:{iid}", task)
    resp = await app.client.post("/im/wecom/callback", params=query, data=body)
    assert resp.status == 200 and await resp.read() == b""
    detail = await app.get(f"/incidents/{iid}")
    assert detail["progress"] == "Processing"
    [acked] = [t for t in detail["timeline"] if t["kind"] == "i_ack"]
    assert acked["actor_id"] == ann["member_id"] and acked["source"] == "wecom"
    await app.settle()
    await until(lambda: bool(fake.updates()))
    update = fake.updates()[-1]
    assert update.body["response_code"] == code and update.body["userids"] == [USER]
    assert update.body["template_card"]["task_id"] == task
    assert rows(fake.cards[(USER, task)])["Acked by"] == "Ann"
    assert len(fake.texts()) == 1


async def test_a_ref_in_the_older_one_code_layout_still_updates(adapter, wecom) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.WECOM, USER), CARD)
    [(code, issued)] = update_codes(ref.extra)
    older = MessageRef(ref.platform, USER, ref.message_id, {"task_id": TASK, "response_code": code,
                                                            "sent_at": int(issued)})
    await adapter.update_card(older, acked_card())
    assert wecom.fake.updates()[-1].body["response_code"] == code and wecom.fake.refused_codes == []


async def test_a_restarted_vigil_and_its_worker_update_the_card_with_the_stored_codes(settings, aiohttp_client,
                                                                                      wecom) -> None:
    """Response codes live with the card reference, not in adapter memory: a click taken by one process is
    spent by another (a restarted one, or a worker), and no code ever reaches WeCom twice."""
    from bot.server import create_app
    from tests.kit import Api

    settings = settings.model_copy(update={"secret_key": "test-secret"})
    fake = wecom.fake

    async def start(*, run_jobs: bool) -> Api:
        return Api(await aiohttp_client(create_app(settings, run_jobs=run_jobs)), "test-admin-token-0123456789abcdef")

    async def click(web: Api, key: str) -> str:
        query, body, code = fake.click(TOKEN, AES_KEY, USER, key, task)
        resp = await web.client.post("/im/wecom/callback", params=query, data=body)
        assert resp.status == 200 and await resp.read() == b""
        return code

    async def failures(api: Api) -> list[dict[str, Any]]:
        return [t for t in (await api.get(f"/incidents/{iid}"))["timeline"] if t["kind"] == "card_update_failed"]

    # The first Vigil sends the card, then stops.
    first = await start(run_jobs=True)
    await first.post("/im-apps", {"platform": "wecom", "name": "corp", "settings": settings_for(wecom.url),
                                  "secrets": SECRETS})
    ann = await first.post("/members", {"name": "Ann"})
    await first.post("/mapping-tables/wecom/rows", {"member_id": ann["member_id"], "im_user_id": USER})
    cid, key = await first.channel_with_integration()
    await first.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await first.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(fake.sent()))
    await first.settle()
    [inc] = (await first.get("/incidents"))["items"]
    iid, task = inc["incident_id"], fake.sent()[0].body["template_card"]["task_id"]
    updates_before = len(fake.updates())
    await first.client.close()

    # A web process that runs no jobs takes the click: the incident changes, the card does not yet.
    web = await start(run_jobs=False)
    code = await click(web, f"ack:{iid}")
    assert (await web.get(f"/incidents/{iid}"))["progress"] == "Processing"
    await asyncio.sleep(0.3)
    assert len(fake.updates()) == updates_before

    # A worker that never saw the click (its adapter is new) updates the card with the click's code; WeCom
    # is busy the first time, so the claimed code goes back to the card and the retry spends it.
    fake.fail_next(-1, "system busy")
    worker = await start(run_jobs=True)
    await until(lambda: len(fake.updates()) > updates_before)
    await worker.settle()
    assert fake.updates()[-1].body["response_code"] == code
    assert [f["detail"]["will_retry"] for f in await failures(worker)] == [True]
    assert rows(fake.cards[(USER, task)])["Acked by"] == "Ann"

    # A change with no click spends what is left (the send-time code, unless an earlier update took it);
    # once none is left the card waits for the next click, and no code is ever sent twice.
    for n in range(3):
        await worker.post(f"/incidents/{iid}/comment", {"comment": f"note {n}", "member_id": ann["member_id"]})
        await worker.settle()
    assert any("clicked again" in f["detail"]["error"] for f in await failures(worker))
    spent = [u.body["response_code"] for u in fake.updates()]
    assert len(spent) == len(set(spent)) == 2  # the send-time code and the click's: WeCom handed out no other
    assert fake.refused_codes == []

    # The next click is stored by the web process and spent by the worker.
    code = await click(web, f"cls:{iid}")
    await until(lambda: fake.updates()[-1].body["response_code"] == code)
    await worker.settle()
    assert (await worker.get(f"/incidents/{iid}"))["progress"] == "Closed"
    assert "Closed" in fake.cards[(USER, task)]["main_title"]["desc"]
    spent = [u.body["response_code"] for u in fake.updates()]
    assert len(spent) == len(set(spent)) and fake.refused_codes == []
