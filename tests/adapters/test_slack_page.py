"""`/vigil page @someone <title>`: the words (pure), and a signed slash command that opens an incident and pages
the member named, over Slack's own Web API (the fake) through a running Vigil."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.slack import page_mentions, to_query
from bot.chat.commands import Query
from bot.chat.page_command import PageRequest, PageSyntaxError, parse
from core.types import Platform, Severity
from tests.adapters.conftest import Running
from tests.fakes.slack import FakeSlack, signed_headers, slash_command
from tests.kit import until

BOT_TOKEN = "xoxb-1111-2222-SlackBotTokenPg9"
SIGNING = "7e742231b10e8888abcd99yyyzzz85b6"
SECRETS = {"bot_token": BOT_TOKEN, "signing_secret": SIGNING}
ANN, BOB, CAT = "U0ANN1234", "U0BOB5678", "U0CAT0001"


@pytest.mark.parametrize("text, request_", [
    ("<@U0BOB5678> db-1 is down", PageRequest(("U0BOB5678",), "db-1 is down")),
    ("<@U0BOB5678|bob> <@U0CAT0001> warning can't log in", PageRequest(("U0BOB5678", "U0CAT0001"), "can't log in",
                                                                       Severity.WARNING)),
    ('<@U0BOB5678> info channel:"Payments API" refunds   slow',
     PageRequest(("U0BOB5678",), "refunds slow", Severity.INFO, "Payments API")),
    ("<@U0BOB5678> channel:ops Critical disk full", PageRequest(("U0BOB5678",), "disk full", Severity.CRITICAL, "ops")),
    ("<@U0BOB5678> <@U0BOB5678> the same person twice", PageRequest(("U0BOB5678",), "the same person twice")),
])
def test_parse(text: str, request_: PageRequest) -> None:
    assert parse(*reversed(page_mentions(text))) == request_


@pytest.mark.parametrize("text, words", [
    ("", "name the person to page first"),
    ("db-1 is down", "name the person to page first"),
    ("@bob db-1 is down", "not a mention Vigil can read"),
    ("<@U0BOB5678>", "incident's title"),
    ("<@U0BOB5678> critical", "incident's title"),
    ("<@U0BOB5678> channel: down", "needs a channel name"),
])
def test_parse_refuses(text: str, words: str) -> None:
    with pytest.raises(PageSyntaxError, match=words):
        parse(*reversed(page_mentions(text)))


def test_the_slash_command_is_a_page_query() -> None:
    body = {"command": "/vigil", "user_id": ANN, "text": "page <@U0BOB5678> db-1 is down"}
    assert to_query(body) == Query(Platform.SLACK, ANN, "page", "db-1 is down", ("U0BOB5678",))
    assert to_query({**body, "text": "page"}) == Query(Platform.SLACK, ANN, "page", "")
    # Only the mentions `page` starts with are people to page; one in the title stays in the title.
    assert page_mentions("<@U0BOB5678|bob> ping <@U0CAT0001> later") == (("U0BOB5678",), "ping <@U0CAT0001> later")


@pytest.fixture
async def slack(aiohttp_server: Any) -> Running:
    fake = FakeSlack(bot_token=BOT_TOKEN, users={ANN: "ann@example.com", BOB: "bob@example.com"}, channels=set())
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def vigil(settings, aiohttp_client, slack):  # type: ignore[no-untyped-def]
    from bot.server import create_app
    from tests.kit import Api

    return Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
               "test-admin-token-0123456789abcdef")


async def test_a_signed_page_command_opens_an_incident_and_pages_the_member_named(vigil, slack) -> None:
    app = vigil
    assert (await app.post("/im-apps", {"platform": "slack", "name": "corp", "settings": {"base_url": slack.url},
                                        "secrets": SECRETS}))["problems"] == []
    ids = {}
    for name, uid, role in (("Ann", ANN, "responder"), ("Bob", BOB, "responder"), ("Cat", CAT, "observer")):
        ids[name] = (await app.post("/members", {"name": name, "role": role,
                                                 "preferences": {"Critical": ["im"], "Warning": ["im"]}}))["member_id"]
        await app.post("/mapping-tables/slack/rows", {"member_id": ids[name], "im_user_id": uid})
    await app.channel_with_integration("ops")

    async def command(user: str, text: str) -> str:
        seen = len(slack.fake.responses)
        body = slash_command(user, text, response_url=f"{slack.url}/response/{seen}")
        resp = await app.client.post("/im/slack/callback", data=body, headers=signed_headers(
            SIGNING, body, int(datetime.now(UTC).timestamp())))
        assert resp.status == 200
        await until(lambda: len(slack.fake.responses) > seen)
        answer = slack.fake.responses[-1]
        assert answer["response_type"] == "ephemeral"
        return answer["text"]

    forged = slash_command(ANN, f"page <@{BOB}> forged")
    resp = await app.client.post("/im/slack/callback", data=forged, headers=signed_headers(
        "not-the-signing-secret", forged, int(datetime.now(UTC).timestamp())))
    assert resp.status == 401

    said = await command(ANN, f"page <@{BOB}|bob> checkout is failing")
    [inc] = (await app.get("/incidents"))["items"]
    assert said.startswith("Ann paged Bob: #") and "checkout is failing (Critical, channel ops)" in said
    assert f"http://vigil.test/incidents/{inc['incident_id']}" in said
    assert inc["title"] == "checkout is failing" and inc["alert_cnt"] == 0
    assert [r["person_id"] for r in inc["responders"]] == [ids["Bob"]]
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    [new] = [t for t in detail["timeline"] if t["kind"] == "i_new"]
    assert new["actor_id"] == ids["Ann"] and new["source"] == "slack"

    # Bob gets the interactive card in his direct messages, as for any incident.
    await until(lambda: bool(slack.fake.calls("chat.postMessage")))
    await app.settle()
    [posted] = slack.fake.calls("chat.postMessage")
    assert posted.args["channel"] == "D0BOB5678" and "checkout is failing" in posted.args["text"]
    assert "vigil.ack" in json.dumps(posted.args["attachments"])

    unlinked = await command(ANN, "page <@U0NOBODY1> x")
    assert unlinked.startswith("Nothing was paged: U0NOBODY1 is not linked")
    observer = await command(CAT, f"page <@{BOB}> x")
    assert "Nothing was paged" in observer and "observer" in observer
    assert "Usage: `page @someone" in await command(ANN, "page db is down")
    await app.channel_with_integration("payments")
    assert "name the channel with channel:&lt;name&gt;; channels: ops, payments" in await command(
        ANN, f"page <@{BOB}> which channel?")
    assert "channel payments" in await command(ANN, f"page <@{BOB}> warning channel:payments refunds slow")
    assert (await app.get("/incidents"))["total"] == 2
    await app.settle()
