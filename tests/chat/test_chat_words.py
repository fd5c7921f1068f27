"""Messages to the bot as words (pure): what each adapter reads out of its platform's message (sender, words,
mentions, whether it was for the bot at all), and the command the words make on every platform."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.base import ActionEvent, ChatMessage, InboundRequest
from bot.adapters.dingtalk import DingTalkAdapter
from bot.adapters.feishu import FeishuAdapter
from bot.adapters.teams import TeamsAdapter
from bot.adapters.wecom import WeComAdapter
from bot.chat.commands import Query
from bot.chat.words import command_payload, not_understood, to_command
from core.types import Platform
from tests.chat.test_callback_replay import DINGTALK, FEISHU, TEAMS, TEMPLATE, TENANT, WECOM
from tests.fakes import dingtalk as dt
from tests.fakes import feishu as fs
from tests.fakes import teams as tm
from tests.fakes import wecom as wc

ANN, BOB, CAT = "ou_ann", "ou_bob", "ou_cat"
NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)


def said(words: str, mentions: tuple[str, ...] = (), by_name: bool = False) -> ChatMessage:
    return ChatMessage(Platform.FEISHU, ANN, words, mentions, by_name)


@pytest.mark.parametrize(("message", "command"), [
    (said("oncall"), Query(Platform.FEISHU, ANN, "oncall")),
    (said("MINE"), Query(Platform.FEISHU, ANN, "mine")),
    (said("page disk full", (BOB, CAT)), Query(Platform.FEISHU, ANN, "page", "disk full", (BOB, CAT))),
    (said("page warning x", ("bob",), True), Query(Platform.FEISHU, ANN, "page", "warning x", ("bob",), True)),
    (said("page"), Query(Platform.FEISHU, ANN, "page", "")),
    (said("ack 12"), ActionEvent(Platform.FEISHU, ANN, "ack:12")),
    (said("comment #12 disk cleaned"), ActionEvent(Platform.FEISHU, ANN, "cmt:12", {"comment": "disk cleaned"})),
    (said("snooze 12 30"), ActionEvent(Platform.FEISHU, ANN, "snz:12:30")),
    (said("oncall now please"), "I did not understand `oncall now please`"),
    (said("dance"), "I did not understand `dance`"),
    (said("help"), "Vigil commands:"),
    (said(""), "Vigil commands:"),
])
def test_to_command(message: ChatMessage, command: Any) -> None:
    found = to_command(message)
    if isinstance(command, str):
        assert isinstance(found, str) and found.startswith(command)
    else:
        assert found == command


def test_help_in_a_message_has_no_command_prefix() -> None:
    assert "• `oncall`:" in not_understood("help") and "/vigil" not in not_understood("help")
    assert command_payload("ack 12 now") is None


def feishu() -> FeishuAdapter:
    return FeishuAdapter.from_app({"base_url": "https://open.feishu.cn"}, FEISHU)


def feishu_message(fake: fs.FakeFeishu, text: str, mentions: dict[str, str], chat_type: str = "p2p",
                   sender: str = ANN) -> InboundRequest:
    body, headers = fs.signed(fake.message_event(FEISHU["verification_token"], sender, text, mentions=mentions,
                                                 chat_type=chat_type), FEISHU["encrypt_key"], int(NOW.timestamp()))
    return InboundRequest(body, headers)


@pytest.mark.parametrize(("text", "mentions", "chat_type", "words", "people"), [
    ("page @_user_1 disk full", {"@_user_1": BOB}, "p2p", "page disk full", (BOB,)),
    ("@_user_1 page @_user_2 @_user_3 warning x", {"@_user_1": "ou_bot", "@_user_2": BOB, "@_user_3": CAT},
     "group", "page warning x", (BOB, CAT)),
    ("@_user_1   oncall", {"@_user_1": "ou_bot"}, "group", "oncall", ()),
    ("page @_user_1 talk to @_user_2 about @_user_10", {"@_user_1": BOB, "@_user_2": CAT, "@_user_10": ANN},
     "p2p", "page talk to about", (BOB, CAT, ANN)),
])
def test_feishu_reads_words_and_mentions(text: str, mentions: dict[str, str], chat_type: str, words: str,
                                         people: tuple[str, ...]) -> None:
    fake = fs.FakeFeishu(app_id=FEISHU["app_id"], app_secret=FEISHU["app_secret"], users=set())
    req = feishu_message(fake, text, mentions, chat_type)
    adapter = feishu()
    assert adapter.verify(req, NOW) and adapter.parse_action(req) is None
    message = adapter.parse_message(req)
    assert message is not None and (message.im_user_id, message.words, message.mentions) == (ANN, words, people)
    assert message.context["message_id"] in fake.received and message.callback is not None


def test_feishu_ignores_what_is_not_a_user_text_for_the_bot() -> None:
    fake = fs.FakeFeishu(app_id=FEISHU["app_id"], app_secret=FEISHU["app_secret"], users=set())
    adapter = feishu()
    # A group message that does not start by mentioning the bot (apps may read every group message).
    assert adapter.parse_message(feishu_message(fake, "oncall", {}, "group")) is None
    assert adapter.parse_message(feishu_message(fake, "lunch with @_user_1?", {"@_user_1": BOB}, "group")) is None
    event = fake.message_event(FEISHU["verification_token"], ANN, "oncall")
    event["event"]["sender"]["sender_type"] = "app"  # another bot
    body, headers = fs.signed(event, FEISHU["encrypt_key"], int(NOW.timestamp()))
    assert adapter.parse_message(InboundRequest(body, headers)) is None
    event = fake.message_event(FEISHU["verification_token"], ANN, "oncall")
    event["event"]["message"] |= {"message_type": "image", "content": json.dumps({"image_key": "img_v2_x"})}
    body, headers = fs.signed(event, FEISHU["encrypt_key"], int(NOW.timestamp()))
    assert adapter.parse_message(InboundRequest(body, headers)) is None
    clicked = fs.signed(fs.card_action(FEISHU["verification_token"], ANN, value={"action": "ack:1"}),
                        FEISHU["encrypt_key"], int(NOW.timestamp()))
    assert adapter.parse_message(InboundRequest(*clicked)) is None


def test_dingtalk_takes_the_at_names_out_and_the_staff_ids_from_at_users() -> None:
    adapter = DingTalkAdapter.from_app({"card_template_id": TEMPLATE}, DINGTALK, http=None)  # type: ignore[arg-type]
    body = dt.robot_message(DINGTALK["client_id"], "ann01", " page @Bob @Cat  warning db-1 down, mail ann@x.io",
                            at=("bob02", "cat03"), group="cidOps==")
    headers = dt.signed_headers(DINGTALK["client_secret"], int(NOW.timestamp() * 1000))
    req = InboundRequest(json.dumps(body).encode(), headers)
    assert adapter.verify(req, NOW) and adapter.parse_action(req) is None
    message = adapter.parse_message(req)
    assert message is not None
    assert (message.im_user_id, message.words, message.mentions) == (
        "ann01", "page warning db-1 down, mail ann@x.io", ("bob02", "cat03"))
    assert message.context == {"group": True, "conversation_id": "cidOps==", "msg_id": body["msgId"]}
    assert adapter.reply(req, adapter_outcome()).body == b"{}"
    picture = {**body, "msgtype": "picture", "content": {"downloadCode": "x"}}
    assert adapter.parse_message(InboundRequest(json.dumps(picture).encode(), headers)) is None


def adapter_outcome() -> Any:
    from bot.adapters.base import Outcome

    return Outcome(True, "")


def test_wecom_reads_at_words_as_mentions_by_id_or_name() -> None:
    adapter = WeComAdapter.from_app({"agent_id": 1000002}, WECOM, http=None)  # type: ignore[arg-type]
    fake = wc.FakeWeCom(corp_id=WECOM["corp_id"], corp_secret=WECOM["corp_secret"], agent_id=1000002, users=set())
    query, body = fake.message(WECOM["token"], WECOM["encoding_aes_key"], "ZhangSan", "page @LiSi @王五 x@y disk",
                               timestamp=int(NOW.timestamp()))
    req = InboundRequest(body, {}, query)
    assert adapter.verify(req, NOW) and adapter.parse_action(req) is None
    message = adapter.parse_message(req)
    assert message is not None and message.mentions_by_name
    assert (message.im_user_id, message.words, message.mentions) == ("ZhangSan", "page x@y disk", ("LiSi", "王五"))
    assert message.callback is not None and message.callback.key.startswith("msg:")


def test_teams_takes_the_at_tags_out_and_the_bot_mention_away() -> None:
    adapter = TeamsAdapter.from_app({"tenant_id": TENANT}, TEAMS, http=None)  # type: ignore[arg-type]
    fake = tm.FakeTeams(app_id=TEAMS["app_id"], app_password=TEAMS["app_password"], tenant_id=TENANT)
    activity = fake.message_activity("aad-ann", "<at>Vigil</at> page <at>Bob Smith</at> db &amp; cache down",
                                     service_url="https://smba.example/", group=True,
                                     mentions={"Vigil": "bot", "Bob Smith": "aad-bob"})
    req = InboundRequest(json.dumps(activity).encode(), {})
    assert adapter.parse_action(req) is None
    message = adapter.parse_message(req)
    assert message is not None
    assert (message.im_user_id, message.words, message.mentions) == ("aad-ann", "page db & cache down", ("aad-bob",))
    assert message.context["activity_id"] == activity["id"]
    invoke = tm.invoke_activity("aad-ann", "ack", {"action": "ack:1"}, service_url="https://smba.example/")
    assert adapter.parse_message(InboundRequest(json.dumps(invoke).encode(), {})) is None
