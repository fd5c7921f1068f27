"""Slack adapter against the local Slack fake with the real slack-sdk and slack-bolt: Web API cards, errors,
token rotation, request signatures, every card action, modals, `/vigil`, the directory, and a click end to end."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.adapters.base import ActionEvent, ChatTarget, InboundRequest, MessageRef, Outcome
from bot.adapters.errors import DeliveryError
from bot.adapters.slack import SlackAdapter, command_help, command_payload, to_query
from bot.cards import slack as renderer
from bot.chat.actions import ActionData
from bot.chat.commands import Query
from core.types import Platform
from tests.adapters.conftest import Running
from tests.cards.cases import CASES
from tests.fakes.slack import (
    BOT_USER,
    FakeSlack,
    block_actions,
    button,
    selected,
    signed_headers,
    slash_command,
    view_submission,
)
from tests.kit import until

BOT_TOKEN = "xoxb-1111-2222-SlackBotTokenQ7w"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
CLIENT_ID, CLIENT_SECRET, REFRESH = "1111.2222", "client-secret-Pq41zz", "xoxe-1-refresh-initial-Kx8"
ANN, BOB, LEFT, GONE_USER = "U0ANN1234", "U0BOB5678", "U0LEFT999", "U0NOBODY1"
OPS, PRIVATE = "C0OPS0001", "C0PRIV002"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
CARD = renderer.render(CASES["triggered_critical_all_actions"])
ACKED = renderer.render(CASES["processing_warning_acknowledged"])


@pytest.fixture
async def slack(aiohttp_server: Any) -> Running:
    fake = FakeSlack(bot_token=BOT_TOKEN, users={ANN: "ann@example.com", BOB: "bob@example.com",
                                                 LEFT: "left@example.com"},
                     disabled={LEFT}, channels={OPS}, other_channels={PRIVATE}, client_id=CLIENT_ID,
                     client_secret=CLIENT_SECRET, refresh_token=REFRESH)
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


SECRETS = {"bot_token": BOT_TOKEN, "signing_secret": SIGNING}
ROTATING = {**SECRETS, "refresh_token": REFRESH, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
ALL_SECRETS = (BOT_TOKEN, SIGNING, REFRESH, CLIENT_SECRET)


@pytest.fixture
async def adapter(slack: Running, session: aiohttp.ClientSession) -> SlackAdapter:
    return SlackAdapter.from_app({"base_url": slack.url}, SECRETS, http=session)


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "secrets", "problem"), [
    ({}, {"signing_secret": SIGNING}, "bot_token: Field required"),
    ({}, {"bot_token": BOT_TOKEN}, "signing_secret: Field required"),
    ({}, {**SECRETS, "bot_token": ""}, "bot_token: Value should have at least 1 item"),
    ({"timeout": 0}, SECRETS, "timeout: Input should be greater than 0"),
    ({"command": "vigil"}, SECRETS, "command: String should match pattern"),
    ({"baseurl": "http://x"}, SECRETS, "baseurl: Extra inputs are not permitted"),
    ({"bot_token": BOT_TOKEN}, {"signing_secret": SIGNING}, "bot_token belong in the app's secrets"),
    ({}, {**SECRETS, "refresh_token": REFRESH}, "refresh_token needs client_id and client_secret"),
], ids=["no-token", "no-signing", "empty-token", "timeout", "command", "extra", "token-in-settings", "refresh"])
def test_from_app_names_the_bad_setting(settings, secrets, problem, session) -> None:
    with pytest.raises(ValueError, match="slack settings") as err:
        SlackAdapter.from_app(settings, secrets, http=session)
    assert problem in str(err.value)
    assert all(s not in str(err.value) for s in ALL_SECRETS)


def test_defaults_point_at_slack(session) -> None:
    adapter = SlackAdapter.from_app({}, SECRETS, http=session)
    assert adapter.api.client.base_url == "https://slack.com/api/" and adapter.config.command == "/vigil"


# -- sending and updating ----------------------------------------------------------------------------


async def test_send_card_to_a_person_opens_the_dm_then_posts(adapter, slack) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.SLACK, ANN, direct=True), CARD)
    [opened] = slack.fake.calls("conversations.open")
    [posted] = slack.fake.calls("chat.postMessage")
    assert opened.args == {"users": ANN}
    assert posted.args == {"channel": "D0ANN1234", "text": CARD["text"], "attachments": CARD["attachments"]}
    assert ref == MessageRef(Platform.SLACK, "D0ANN1234", ref.message_id)
    assert slack.fake.messages[("D0ANN1234", ref.message_id)]["attachments"] == CARD["attachments"]


async def test_send_card_to_a_channel_posts_directly(adapter, slack) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.SLACK, OPS, direct=False), CARD)
    assert slack.fake.calls("conversations.open") == [] and ref.conversation_id == OPS
    assert [r.args["channel"] for r in slack.fake.calls("chat.postMessage")] == [OPS]


async def test_update_card_replaces_the_message(adapter, slack) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.SLACK, ANN), CARD)
    await adapter.update_card(ref, ACKED)
    [update] = slack.fake.calls("chat.update")
    assert update.args == {"channel": ref.conversation_id, "ts": ref.message_id, "text": ACKED["text"],
                           "attachments": ACKED["attachments"]}
    assert slack.fake.messages[(ref.conversation_id, ref.message_id)]["text"] == ACKED["text"]


@pytest.mark.parametrize(("error", "status", "headers", "retryable", "retry_after", "gone"), [
    ("ratelimited", 429, {"Retry-After": "30"}, True, 30.0, False),
    ("ratelimited", 429, None, True, None, False),
    ("internal_error", 200, None, True, None, False),
    ("service_unavailable", 503, None, True, None, False),
    ("invalid_auth", 200, None, False, None, False),
    ("token_revoked", 200, None, False, None, False),
    ("not_in_channel", 200, None, False, None, False),
    ("channel_not_found", 200, None, False, None, False),
    ("message_not_found", 200, None, False, None, False),
    ("account_inactive", 200, None, False, None, True),
    ("user_not_found", 200, None, False, None, True),
    ("cannot_dm_bot", 200, None, False, None, True),
    ("token_expired", 200, None, False, None, False),  # no refresh token configured: nothing to rotate
], ids=lambda v: str(v))
async def test_errors_are_classified(adapter, slack, assert_no_secret, error, status, headers, retryable,
                                     retry_after, gone) -> None:
    slack.fake.fail_next(error, status, headers)
    with pytest.raises(DeliveryError) as err:
        await adapter.update_card(MessageRef(Platform.SLACK, OPS, "1.2"), CARD)
    assert (err.value.retryable, err.value.retry_after, err.value.gone) == (retryable, retry_after, gone)
    assert error in str(err.value) and "chat.update" in str(err.value)
    assert_no_secret(err.value, *ALL_SECRETS)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_an_html_server_error_is_retryable(adapter, slack, assert_no_secret, status) -> None:
    slack.fake.fail_next_html(status)
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.SLACK, OPS, direct=False), CARD)
    assert err.value.retryable and f"HTTP {status}" in str(err.value)
    assert_no_secret(err.value, *ALL_SECRETS)


@pytest.mark.parametrize(("target", "error", "gone"), [
    (ChatTarget(Platform.SLACK, GONE_USER), "user_not_found", True),
    (ChatTarget(Platform.SLACK, LEFT), "user_disabled", True),
    (ChatTarget(Platform.SLACK, BOT_USER), "cannot_dm_bot", True),
    (ChatTarget(Platform.SLACK, PRIVATE, direct=False), "not_in_channel", False),
    (ChatTarget(Platform.SLACK, "C0NOWHERE", direct=False), "channel_not_found", False),
])
async def test_recipients_slack_refuses_are_permanent(adapter, assert_no_secret, target, error, gone) -> None:
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(target, CARD)
    assert not err.value.retryable and err.value.gone is gone and error in str(err.value)
    assert_no_secret(err.value, *ALL_SECRETS)


async def test_a_wrong_bot_token_is_permanent_and_not_shown(slack, session, assert_no_secret) -> None:
    wrong = "xoxb-9999-not-the-token-Zz"
    bad = SlackAdapter.from_app({"base_url": slack.url}, {**SECRETS, "bot_token": wrong}, http=session)
    with pytest.raises(DeliveryError) as err:
        await bad.send_card(ChatTarget(Platform.SLACK, ANN), CARD)
    assert not err.value.retryable and "invalid_auth" in str(err.value)
    assert_no_secret(err.value, wrong, SIGNING)


async def test_an_expired_rotating_token_is_refreshed_once(slack, session) -> None:
    adapter = SlackAdapter.from_app({"base_url": slack.url}, ROTATING, http=session)
    to = ChatTarget(Platform.SLACK, OPS, direct=False)
    await adapter.send_card(to, CARD)
    slack.fake.expire_tokens()  # Slack answers token_expired; the adapter calls oauth.v2.access and retries
    await adapter.send_card(to, CARD)
    await adapter.send_card(to, CARD)
    assert slack.fake.tokens_issued == 1 and len(slack.fake.calls("chat.postMessage")) == 3
    assert adapter.api.client.token == "xoxe.xoxb-1-rotated1"
    slack.fake.expire_tokens()  # the rotated refresh token is the one used next time
    await adapter.send_card(to, CARD)
    assert slack.fake.tokens_issued == 2


async def test_a_failed_refresh_is_permanent_and_not_shown(slack, session, assert_no_secret) -> None:
    adapter = SlackAdapter.from_app({"base_url": slack.url}, {**ROTATING, "refresh_token": "xoxe-1-wrong-Rr"},
                                    http=session)
    slack.fake.expire_tokens()
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.SLACK, OPS, direct=False), CARD)
    assert not err.value.retryable and "invalid_refresh_token" in str(err.value)
    assert_no_secret(err.value, *ALL_SECRETS, "xoxe-1-wrong-Rr")


async def test_unreachable_slack_is_retryable(session, assert_no_secret) -> None:
    from tests.conftest import free_port

    adapter = SlackAdapter.from_app({"base_url": f"http://127.0.0.1:{free_port()}"}, SECRETS, http=session)
    with pytest.raises(DeliveryError) as err:
        await adapter.send_card(ChatTarget(Platform.SLACK, OPS, direct=False), CARD)
    assert err.value.retryable
    assert_no_secret(err.value, *ALL_SECRETS)


async def test_a_card_that_is_not_a_slack_message_is_refused(adapter, slack) -> None:
    with pytest.raises(DeliveryError, match="not a Slack message") as err:
        await adapter.send_card(ChatTarget(Platform.SLACK, OPS, direct=False), {"cardData": {}})
    assert not err.value.retryable and slack.fake.requests == []


# -- verify, handshake ---------------------------------------------------------------------------------


def signed(body: bytes, ts: int = TS, secret: str = SIGNING, **headers: str) -> InboundRequest:
    return InboundRequest(body=body, headers={**signed_headers(secret, body, ts), **headers})


CLICK = block_actions(ANN, button("vigil.ack", "ack:42"))


@pytest.mark.parametrize(("req", "ok"), [
    (signed(CLICK), True),
    (signed(CLICK, TS - 299), True),
    (signed(CLICK, TS + 299), True),
    (signed(CLICK, TS - 301), False),  # replayed: outside Slack's five minutes
    (signed(CLICK, TS + 301), False),
    (signed(CLICK, secret="someone-elses-signing-secret"), False),
    (InboundRequest(body=CLICK + b"x", headers=signed_headers(SIGNING, CLICK, TS)), False),
    (signed(CLICK, **{"X-Slack-Signature": ""}), False),
    (InboundRequest(body=CLICK, headers={"X-Slack-Request-Timestamp": str(TS)}), False),
    (InboundRequest(body=CLICK, headers={"X-Slack-Signature": signed_headers(SIGNING, CLICK, TS)["X-Slack-Signature"]}),
     False),
    (signed(CLICK, **{"X-Slack-Request-Timestamp": "17e8"}), False),
    (InboundRequest(body=CLICK, headers={k.lower(): v for k, v in signed_headers(SIGNING, CLICK, TS).items()}), True),
], ids=["valid", "299s-old", "299s-ahead", "stale", "future", "forged", "tampered", "empty-signature",
        "no-signature", "no-timestamp", "bad-timestamp", "lowercase-headers"])
def test_verify(adapter, req, ok) -> None:
    assert adapter.verify(req, NOW) is ok


def test_handshake_answers_the_url_verification_challenge(adapter) -> None:
    body = json.dumps({"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"}).encode()
    reply = adapter.handshake(InboundRequest(body=body, headers={"Content-Type": "application/json"}))
    assert reply is not None and reply.status == 200
    assert json.loads(reply.body) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert adapter.handshake(InboundRequest(body=CLICK, headers={})) is None


# -- parse_action: every action the card offers ---------------------------------------------------------


def card_actions() -> list[tuple[str, dict[str, Any]]]:
    """(payload, the action element Slack sends back) for every button and snooze option on every card."""
    out = {}
    for case in CASES.values():
        for attachment in renderer.render(case)["attachments"]:
            for block in attachment["blocks"]:
                # custom field selects carry their payload in the block's id (tests/adapters/test_slack_fields.py)
                fields = block.get("block_id", "").startswith("vigil.field:")
                for element in block.get("elements", []) if block["type"] == "actions" and not fields else []:
                    if element["type"] == "static_select":
                        for option in element["options"]:
                            out[option["value"]] = selected(element["action_id"], option["value"])
                    else:
                        out[element["value"]] = button(element["action_id"], element["value"])
    return sorted(out.items())


@pytest.mark.parametrize(("payload", "action"), card_actions(), ids=[p for p, _ in card_actions()])
def test_parse_action_for_every_card_action(adapter, payload, action) -> None:
    event = adapter.parse_action(signed(block_actions(ANN, action, response_url="https://hooks/x", ts="1.5")))
    assert event is not None and (event.platform, event.im_user_id, event.payload) == (Platform.SLACK, ANN, payload)
    assert event.context["response_url"] == "https://hooks/x" and event.context["ts"] == "1.5"
    assert ActionData.unpack(event.payload).pack() == payload


def test_the_cards_offer_the_whole_lifecycle() -> None:
    actions = {ActionData.unpack(p).action.value for p, _ in card_actions()}
    assert {"ack", "unack", "close", "reopen", "escalate", "snooze", "wake", "reassign", "comment",
            "silence_similar"} <= actions


COMMENT_VIEW = {"callback_id": "vigil.comment", "private_metadata": json.dumps(
    {"payload": "cmt:42", "channel": "D0ANN1234", "ts": "1.5"})}
REASSIGN_VIEW = {"callback_id": "vigil.reassign", "private_metadata": json.dumps(
    {"payload": "rsg:42:", "channel": "D0ANN1234", "ts": "1.5"})}


@pytest.mark.parametrize(("body", "payload", "inputs"), [
    (view_submission(ANN, COMMENT_VIEW, {"vigil.comment": {"vigil.comment": {
        "type": "plain_text_input", "value": "disk cleaned"}}}), "cmt:42", {"comment": "disk cleaned"}),
    (view_submission(ANN, REASSIGN_VIEW, {"vigil.member": {"vigil.member": {
        "type": "users_select", "selected_user": BOB}}}), "rsg:42:", {"assignee_im_user_id": BOB}),
    (slash_command(ANN, "ack 12"), "ack:12", {}),
    (slash_command(ANN, "close #12"), "cls:12", {}),
    (slash_command(ANN, "snooze 12 30"), "snz:12:30", {}),
    (slash_command(ANN, "comment 12 rolled back the deploy"), "cmt:12", {"comment": "rolled back the deploy"}),
], ids=["comment-modal", "reassign-modal", "cmd-ack", "cmd-close", "cmd-snooze", "cmd-comment"])
def test_parse_action_for_modal_inputs_and_commands(adapter, body, payload, inputs) -> None:
    event = adapter.parse_action(signed(body))
    assert event is not None and (event.im_user_id, event.payload, dict(event.inputs)) == (ANN, payload, inputs)


@pytest.mark.parametrize("body", [
    b"",
    b"payload=not-json",
    b"payload=%5B%5D",
    block_actions(ANN, button("other.app", "ack:1")),
    block_actions("", button("vigil.ack", "ack:1")),
    block_actions(ANN, {"type": "button", "action_id": "vigil.ack"}),
    view_submission(ANN, {"callback_id": "vigil.comment", "private_metadata": "{oops"}, {}),
    view_submission(ANN, {"callback_id": "someone.else", "private_metadata": "{}"}, {}),
    slash_command(ANN, "help"),
    slash_command(ANN, "oncall"),
    slash_command(ANN, "ack twelve"),
    slash_command(ANN, "ack 12", command="/other"),
    json.dumps({"type": "event_callback", "event": {"type": "app_mention"}}).encode(),
], ids=["empty", "bad-json", "list", "foreign-action", "no-user", "no-value", "bad-metadata", "foreign-view",
        "help", "query", "bad-id", "foreign-command", "event"])
def test_parse_action_ignores_what_is_not_a_vigil_action(adapter, body) -> None:
    assert adapter.parse_action(signed(body)) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("ack 12", "ack:12"), ("UNACK 3", "uack:3"), ("reopen 9", "rop:9"), ("escalate 9", "esc:9"),
    ("wake 9", "wake:9"), ("snooze 9", "snz:9:60"), ("snooze 9 1441", None), ("snooze 9 soon", None),
    ("ack 12 now", None), ("ack", None), ("ack 0", None), ("silence 5", None), ("", None),
])
def test_command_payload(text, expected) -> None:
    found = command_payload(text)
    assert (found[1] if found else None) == expected


@pytest.mark.parametrize(("text", "answer"), [
    ("", "Vigil commands:"), ("help", "Vigil commands:"), (" HELP ", "Vigil commands:"),
    ("dance", "I did not understand `dance`"), ("<!channel>", "I did not understand `&lt;!channel&gt;`"),
])
def test_command_help(text, answer) -> None:
    assert answer in command_help(text)


def test_help_lists_every_command_under_the_configured_name() -> None:
    listed = command_help("", "/oncall")
    for usage in ("oncall", "mine", "ack <number>", "snooze <number> [minutes]", "comment <number> <text>", "help"):
        assert f"`/oncall {usage}`" in listed
    assert "/vigil" not in listed


@pytest.mark.parametrize(("body", "expected"), [
    (slash_command(ANN, "oncall"), Query(Platform.SLACK, ANN, "oncall")),
    (slash_command(ANN, " MINE "), Query(Platform.SLACK, ANN, "mine")),
    (slash_command(ANN, "mine please"), None),
    (slash_command(ANN, "ack 12"), None),
    (slash_command(ANN, "help"), None),
    (slash_command("", "oncall"), None),
    (slash_command(ANN, "oncall", command="/other"), None),
])
def test_to_query(body, expected) -> None:
    from urllib.parse import parse_qsl

    assert to_query(dict(parse_qsl(body.decode(), keep_blank_values=True))) == expected


@pytest.mark.parametrize(("body", "expected"), [
    (CLICK, b""),
    (slash_command(ANN, "ack 12"), json.dumps({"response_type": "ephemeral", "text": "Ann did it."}).encode()),
])
def test_reply_acks_within_slacks_deadline(adapter, body, expected) -> None:
    reply = adapter.reply(signed(body), Outcome(True, "Ann did it.", CARD))
    assert (reply.status, reply.body) == (200, expected)


# -- directory -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "phone", "found", "asked"), [
    ("ann@example.com", None, (ANN, "user_id"), True),
    ("ANN@example.com", "+15550100", (ANN, "user_id"), True),
    ("nobody@example.com", None, None, True),
    ("left@example.com", None, None, True),  # deactivated accounts are not linked
    (None, "+15550100", None, False),  # Slack cannot look people up by phone
])
async def test_directory_finds_people_by_email(adapter, slack, email, phone, found, asked) -> None:
    assert await adapter.directory.lookup(email=email, phone=phone) == found
    assert [r.args for r in slack.fake.calls("users.lookupByEmail")] == ([{"email": email}] if asked else [])


@pytest.mark.parametrize(("error", "retryable"), [("ratelimited", True), ("missing_scope", False)])
async def test_directory_errors_are_delivery_errors(adapter, slack, assert_no_secret, error, retryable) -> None:
    slack.fake.fail_next(error, 429 if error == "ratelimited" else 200, {"Retry-After": "3"})
    with pytest.raises(DeliveryError) as err:
        await adapter.directory.lookup(email="ann@example.com", phone=None)
    assert err.value.retryable is retryable and error in str(err.value)
    assert_no_secret(err.value, *ALL_SECRETS)


# -- dispatch through slack-bolt --------------------------------------------------------------------------


class Clicks:
    """Stands in for bot.chat.clicks.apply: records the events and answers with a fixed outcome."""

    def __init__(self, outcome: Outcome) -> None:
        self.events: list[ActionEvent] = []
        self.outcome = outcome

    async def __call__(self, event: ActionEvent) -> Outcome:
        self.events.append(event)
        return self.outcome


def now_signed(body: bytes, secret: str = SIGNING) -> InboundRequest:
    ts = int(datetime.now(UTC).timestamp())
    return InboundRequest(body=body, headers=signed_headers(secret, body, ts))


@pytest.mark.parametrize("action", [button("vigil.ack", "ack:42"), selected("vigil.snooze", "snz:42:60")],
                         ids=["button", "snooze-select"])
async def test_dispatch_acks_then_clicks_and_replaces_the_card(adapter, slack, action) -> None:
    clicks = Clicks(Outcome(True, "Ann acknowledged incident #A1.", ACKED))
    reply = await adapter.dispatch(now_signed(block_actions(ANN, action, response_url=f"{slack.url}/response/1")),
                                   clicks)
    assert (reply.status, reply.body) == (200, b"")
    await until(lambda: len(slack.fake.responses) == 2)
    assert [(e.im_user_id, e.payload) for e in clicks.events] == [(ANN, action.get("value") or "snz:42:60")]
    card, notice = slack.fake.responses
    assert card == {"text": ACKED["text"], "attachments": ACKED["attachments"], "replace_original": True}
    assert notice == {"text": "Ann acknowledged incident #A1.", "response_type": "ephemeral",
                      "replace_original": False}


async def test_dispatch_without_a_card_only_tells_the_clicker(adapter, slack) -> None:
    clicks = Clicks(Outcome(False, "Your Slack account is not linked to a Vigil member."))
    await adapter.dispatch(now_signed(block_actions(BOB, button("vigil.ack", "ack:42"),
                                                    response_url=f"{slack.url}/response/1")), clicks)
    await until(lambda: len(slack.fake.responses) == 1)
    await asyncio.sleep(0.05)
    assert [r["text"] for r in slack.fake.responses] == ["Your Slack account is not linked to a Vigil member."]


@pytest.mark.parametrize(("action_id", "payload", "values", "inputs"), [
    ("vigil.comment", "cmt:42", {"vigil.comment": {"vigil.comment": {"type": "plain_text_input",
                                                                     "value": "disk cleaned"}}},
     {"comment": "disk cleaned"}),
    ("vigil.reassign", "rsg:42:", {"vigil.member": {"vigil.member": {"type": "users_select",
                                                                     "selected_user": BOB}}},
     {"assignee_im_user_id": BOB}),
], ids=["comment", "reassign"])
async def test_modal_buttons_open_a_modal_whose_submission_clicks(adapter, slack, action_id, payload, values,
                                                                  inputs) -> None:
    ref = await adapter.send_card(ChatTarget(Platform.SLACK, ANN), CARD)
    clicks = Clicks(Outcome(True, "Ann commented on incident #A1.", ACKED))
    body = block_actions(ANN, button(action_id, payload), response_url=f"{slack.url}/response/1",
                         channel=ref.conversation_id, ts=ref.message_id)
    assert (await adapter.dispatch(now_signed(body), clicks)).status == 200
    await until(lambda: bool(slack.fake.calls("views.open")))
    [opened] = slack.fake.calls("views.open")
    view = opened.args["view"]
    assert clicks.events == [] and view["type"] == "modal" and view["callback_id"] == action_id
    assert opened.args["trigger_id"] == "1234567890.987654321.abcdef"
    [block] = view["blocks"]
    assert block["element"]["action_id"] in values[block["block_id"]]

    reply = await adapter.dispatch(now_signed(view_submission(ANN, view, values)), clicks)
    assert (reply.status, reply.body) == (200, b"")  # an empty ack closes the modal
    await until(lambda: bool(slack.fake.calls("chat.postEphemeral")))
    [event] = clicks.events
    assert (event.im_user_id, event.payload, dict(event.inputs)) == (ANN, payload, inputs)
    assert slack.fake.messages[(ref.conversation_id, ref.message_id)]["text"] == ACKED["text"]
    [ephemeral] = slack.fake.calls("chat.postEphemeral")
    assert ephemeral.args == {"channel": ref.conversation_id, "user": ANN, "text": "Ann commented on incident #A1."}


async def test_slash_command_clicks_and_answers_privately(adapter, slack) -> None:
    clicks = Clicks(Outcome(True, "Ann closed incident #A1."))
    body = slash_command(ANN, "close 12", response_url=f"{slack.url}/response/2")
    reply = await adapter.dispatch(now_signed(body), clicks)
    assert (reply.status, reply.body) == (200, b"")
    await until(lambda: bool(slack.fake.responses))
    assert [(e.payload, e.im_user_id) for e in clicks.events] == [("cls:12", ANN)]
    assert slack.fake.responses == [{"text": "Ann closed incident #A1.", "response_type": "ephemeral"}]


@pytest.mark.parametrize(("text", "answer"), [("help", "Vigil commands:"), ("", "`/vigil oncall`"),
                                              ("ack soon", "I did not understand")])
async def test_slash_command_help_is_answered_inline(adapter, text, answer) -> None:
    clicks = Clicks(Outcome(True, "unused"))
    reply = await adapter.dispatch(now_signed(slash_command(ANN, text)), clicks)
    body = json.loads(reply.body)
    assert reply.status == 200 and body["response_type"] == "ephemeral" and answer in body["text"]
    assert reply.content_type.startswith("application/json") and clicks.events == []


class Asks:
    """Stands in for bot.chat.commands.answer: records the queries and answers with a fixed text."""

    def __init__(self, text: str, *, fail: bool = False) -> None:
        self.queries: list[Query] = []
        self.text, self.fail = text, fail

    async def __call__(self, query: Query) -> str:
        self.queries.append(query)
        if self.fail:
            raise RuntimeError("database is away")
        return self.text


@pytest.mark.parametrize("text", ["oncall", "mine"])
async def test_slash_command_queries_are_acked_then_answered_privately(adapter, slack, text) -> None:
    clicks, asks = Clicks(Outcome(True, "unused")), Asks("On call now:\n• db <primary> & co: Ann")
    body = slash_command(ANN, text, response_url=f"{slack.url}/response/q")
    reply = await adapter.dispatch(now_signed(body), clicks, asks)
    assert (reply.status, reply.body) == (200, b"")
    await until(lambda: bool(slack.fake.responses))
    assert asks.queries == [Query(Platform.SLACK, ANN, text)] and clicks.events == []
    # Escaped as Slack asks: a title or a name can neither link nor mention anyone.
    assert slack.fake.responses == [{"text": "On call now:\n• db &lt;primary&gt; &amp; co: Ann",
                                     "response_type": "ephemeral"}]


async def test_a_query_that_fails_still_gets_an_answer(adapter, slack) -> None:
    body = slash_command(ANN, "mine", response_url=f"{slack.url}/response/q")
    reply = await adapter.dispatch(now_signed(body), Clicks(Outcome(True, "unused")), Asks("", fail=True))
    assert reply.status == 200
    await until(lambda: bool(slack.fake.responses))
    assert "could not answer" in slack.fake.responses[0]["text"]


@pytest.mark.parametrize("req", [
    now_signed(CLICK, secret="not-the-signing-secret"),
    InboundRequest(body=CLICK, headers={"Content-Type": "application/x-www-form-urlencoded"}),
    InboundRequest(body=CLICK, headers=signed_headers(SIGNING, CLICK, int(datetime.now(UTC).timestamp()) - 600)),
], ids=["forged", "unsigned", "replayed"])
async def test_dispatch_refuses_unverified_requests(adapter, req) -> None:
    clicks = Clicks(Outcome(True, "unused"))
    reply = await adapter.dispatch(req, clicks)
    await asyncio.sleep(0.05)
    assert reply.status == 401 and clicks.events == []


async def test_dispatch_answers_the_url_verification_challenge(adapter) -> None:
    body = json.dumps({"token": "t", "challenge": "abc123", "type": "url_verification"}).encode()
    req = now_signed(body)
    req = InboundRequest(body=body, headers={**req.headers, "Content-Type": "application/json"})
    reply = await adapter.dispatch(req, Clicks(Outcome(True, "")))
    assert reply.status == 200 and json.loads(reply.body) == {"challenge": "abc123"}


# -- end to end through a running Vigil --------------------------------------------------------------------


@pytest.fixture
async def vigil(settings, aiohttp_client, slack):  # type: ignore[no-untyped-def]
    from bot.server import create_app
    from tests.kit import Api

    return Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
               "test-admin-token-0123456789abcdef")


async def test_a_click_acknowledges_and_updates_the_card(vigil, slack) -> None:
    app = vigil
    out = await app.post("/im-apps", {"platform": "slack", "name": "corp", "settings": {"base_url": slack.url},
                                      "secrets": SECRETS})
    assert out["problems"] == []
    ann = await app.post("/members", {"name": "Ann", "email": "ann@example.com"})
    await app.post("/mapping-tables/slack/rows", {"member_id": ann["member_id"], "im_user_id": ANN})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann["member_id"]]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    await until(lambda: bool(slack.fake.calls("chat.postMessage")))
    await app.settle()
    [posted] = slack.fake.calls("chat.postMessage")
    channel = posted.args["channel"]
    [ts] = [t for (c, t) in slack.fake.messages if c == channel]
    assert channel == "D0ANN1234" and "db-1 is down" in posted.args["text"]
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]
    actions = next(b for b in posted.args["attachments"][0]["blocks"] if b.get("block_id") == "vigil.actions")
    [ack_button] = [e for e in actions["elements"]
                    if e.get("action_id") == "vigil.ack"]

    async def click(user: str, secret: str = SIGNING) -> aiohttp.ClientResponse:
        body = block_actions(user, button("vigil.ack", ack_button["value"]), channel=channel, ts=ts,
                             response_url=f"{slack.url}/response/{user}")
        return await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
            secret, body, int(datetime.now(UTC).timestamp())))

    forged = await click(ANN, "not-the-signing-secret")
    assert forged.status == 401
    stranger = await click(BOB)
    assert stranger.status == 200 and await stranger.read() == b""
    await until(lambda: bool(slack.fake.responses))
    [notice] = slack.fake.responses
    assert "not linked" in notice["text"] and notice["response_type"] == "ephemeral"
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Triggered"

    acked = await click(ANN)
    assert acked.status == 200 and await acked.read() == b""
    await until(lambda: len(slack.fake.responses) == 3)
    card, told = slack.fake.responses[1:]
    assert card["replace_original"] is True and "Ann" in json.dumps(card["attachments"])
    assert told["text"].startswith("Ann acknowledged") and told["response_type"] == "ephemeral"
    detail = await app.get(f"/incidents/{iid}")
    assert detail["progress"] == "Processing"
    [ack_entry] = [t for t in detail["timeline"] if t["kind"] == "i_ack"]
    assert ack_entry["actor_id"] == ann["member_id"] and ack_entry["source"] == "slack"
    await app.settle()
    await until(lambda: bool(slack.fake.calls("chat.update")))
    update = slack.fake.calls("chat.update")[-1]
    assert (update.args["channel"], update.args["ts"]) == (channel, ts)
    assert "Acknowledged by*\nAnn" in json.dumps(slack.fake.messages[(channel, ts)]["attachments"]).replace(
        "\\n", "\n")

    # The Comment button opens a modal; its submission runs through the same click path.
    body = block_actions(ANN, button("vigil.comment", f"cmt:{iid}"), channel=channel, ts=ts,
                         response_url=f"{slack.url}/response/c")
    resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
        SIGNING, body, int(datetime.now(UTC).timestamp())))
    assert resp.status == 200
    await until(lambda: bool(slack.fake.calls("views.open")))
    view = slack.fake.calls("views.open")[-1].args["view"]
    body = view_submission(ANN, view, {"vigil.comment": {"vigil.comment": {"type": "plain_text_input",
                                                                           "value": "disk cleaned"}}})
    resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
        SIGNING, body, int(datetime.now(UTC).timestamp())))
    assert resp.status == 200 and await resp.read() == b""
    await until(lambda: bool(slack.fake.calls("chat.postEphemeral")))
    assert slack.fake.calls("chat.postEphemeral")[-1].args["text"].startswith("Ann commented")
    timeline = (await app.get(f"/incidents/{iid}"))["timeline"]
    assert any(t["kind"] == "i_comm" and "disk cleaned" in json.dumps(t) for t in timeline)

    # `/vigil close <id>` takes the same path too.
    body = slash_command(ANN, f"close {iid}", response_url=f"{slack.url}/response/cmd")
    resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
        SIGNING, body, int(datetime.now(UTC).timestamp())))
    assert resp.status == 200
    await until(lambda: any(r["text"].startswith("Ann closed") for r in slack.fake.responses))
    assert (await app.get(f"/incidents/{iid}"))["progress"] == "Closed"
    await app.settle()


async def test_vigil_commands_oncall_mine_ack_and_help(vigil, slack) -> None:
    app = vigil
    await app.post("/im-apps", {"platform": "slack", "name": "corp", "settings": {"base_url": slack.url},
                                "secrets": SECRETS})
    ann = (await app.post("/members", {"name": "Ann"}))["member_id"]
    bob = (await app.post("/members", {"name": "Bob"}))["member_id"]
    cat = (await app.post("/members", {"name": "Cat"}))["member_id"]
    await app.post("/mapping-tables/slack/rows", {"member_id": ann, "im_user_id": ANN})
    team = (await app.post("/teams", {"name": "platform", "member_ids": [bob, cat]}))["team_id"]
    now = datetime.now(UTC)
    always = {"start": "2020-01-06T00:00:00Z", "rotation": {"unit": "weeks", "value": 1}}
    await app.post("/schedules", {"name": "db primary", "definition": {"layers": [
        {**always, "members": [[{"member_id": ann}]]}]}})
    await app.post("/schedules", {"name": "api", "definition": {"layers": [
        {**always, "members": [[{"member_id": ann}]]}], "overrides": [
        {"participants": [{"team_id": team}], "start": (now - timedelta(hours=1)).isoformat(),
         "end": (now + timedelta(hours=2)).isoformat()}]}})
    await app.post("/schedules", {"name": "retired", "definition": {"layers": [
        {**always, "end": "2021-01-01T00:00:00Z", "members": [[{"member_id": bob}]]}]}})
    cid, key = await app.channel_with_integration()
    await app.post(f"/channels/{cid}/escalation-rules", {"name": "r", "levels": [
        {"targets": {"member_ids": [ann]}, "media": ["im"]}]})
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is <down>", "alert_key": "db-1"})
    await app.push(key, {"event_status": "Warning", "title_rule": "disk 80%", "alert_key": "disk"})
    await until(lambda: len(slack.fake.calls("chat.postMessage")) == 2)
    await app.settle()
    incidents = {i["title"]: i["incident_id"] for i in (await app.get("/incidents"))["items"]}
    db1, disk = incidents["db-1 is <down>"], incidents["disk 80%"]
    await app.post(f"/incidents/{disk}/close", {"member_id": ann})

    async def command(user: str, text: str) -> str:
        """Send a signed `/vigil <text>` and return what Slack shows the user (inline, or via response_url)."""
        seen = len(slack.fake.responses)
        body = slash_command(user, text, response_url=f"{slack.url}/response/{len(slack.fake.responses)}")
        resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
            SIGNING, body, int(datetime.now(UTC).timestamp())))
        assert resp.status == 200
        inline = await resp.read()
        if inline:
            answer = json.loads(inline)
        else:
            await until(lambda: len(slack.fake.responses) > seen)
            answer = slack.fake.responses[-1]
        assert answer["response_type"] == "ephemeral"
        return answer["text"]

    oncall = await command(BOB, "oncall")  # anyone in the workspace may ask who is on call
    assert oncall.splitlines()[1:] == [
        "• api: Bob, Cat (override), until " + (now + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M UTC"),
        "• db primary: Ann",  # a rotation of one: no handoff ahead
        "• retired: nobody",
    ]

    mine = await command(ANN, "mine")
    assert mine.startswith("Ann, your open incidents (1):")
    assert f"#{db1} db-1 is &lt;down&gt;" in mine and "Triggered" in mine
    assert f"http://vigil.test/incidents/{db1}" in mine and f"#{disk}" not in mine  # closed: not listed

    assert "is not linked to a Vigil member" in await command(BOB, "mine")

    assert (await command(ANN, f"ack {db1}")).startswith("Ann acknowledged")
    assert (await app.get(f"/incidents/{db1}"))["progress"] == "Processing"
    assert "Processing" in await command(ANN, "mine")

    for text in ("", "help"):
        listed = await command(ANN, text)
        assert listed.startswith("Vigil commands:") and "`/vigil oncall`" in listed and "`/vigil mine`" in listed
