"""Chat commands as messages to the bot on Feishu/Lark, DingTalk, WeCom and Teams, end to end over HTTP on
SQLite and PostgreSQL: each message is signed (and encrypted) exactly as its platform sends it to a running
Vigil, and the answer is read from the platform fake's messaging API, where the real SDK or API client sent it.
`page @someone <title>` opens an incident that pages them, `oncall` and `mine` answer, `ack <number>` acts;
an unmapped sender is told they are not linked and nothing is created; a forged message is refused (401) and
changes nothing; the same message sent again is answered once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.chat.test_callback_replay import (
    DINGTALK,
    FEISHU,
    ISSUER,
    TEAMS,
    TEMPLATE,
    TENANT,
    USER,
    WECOM,
    Signed,
    _millis,
    _now,
    dingtalk_kit,
    feishu_kit,
    teams_kit,
    wecom_kit,
)
from tests.fakes import dingtalk as dt
from tests.fakes import feishu as fs
from tests.fakes import teams as tm
from tests.fakes import wecom as wc
from tests.kit import Api, until

# Ann asks, Bob is paged, Nobody is not in the mapping table.
BOB = {"feishu": "ou_0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "dingtalk": "bob0815", "wecom": "LiSi",
       "teams": "7c1d6be4-2222-4b4b-9c9c-bbbbbbbbbbbb"}
NOBODY = {"feishu": "ou_ffff0000ffff0000ffff0000ffff0000", "dingtalk": "nobody42", "wecom": "WangWu",
          "teams": "8d2e7cf5-3333-4c4c-8d8d-cccccccccccc"}
CAT = {"feishu": "ou_0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "dingtalk": "cat0816", "wecom": "ZhaoLiu",
       "teams": "9e3f8d06-4444-4d4d-8e8e-dddddddddddd"}  # an observer
GROUP = {"dingtalk": "cidGroupOps0123456789==", "feishu": "oc_group_ops"}


@dataclass
class Talk:
    """A platform fake and its IM app, how a user's message to the bot is signed, and the bot's replies."""

    platform: str
    fake: Any
    settings: dict[str, Any]
    secrets: dict[str, str]
    # (sender, command word, people mentioned, the words after them, in a group?) -> the signed message
    say: Callable[[str, str, list[str], str, bool], Signed]
    replies: Callable[[], list[str]]
    # a signed message whose signature no longer matches what is sent
    forge: Callable[[Signed], Signed]


def _feishu(url: str, fake: fs.FakeFeishu) -> Talk:

    def say(sender: str, command: str, people: list[str], rest: str, group: bool) -> Signed:
        keys = {f"@_user_{i + 2}": person for i, person in enumerate(people)}
        lead = "@_user_1 " if group else ""
        text = " ".join(filter(None, [lead + command, *keys, rest]))
        mentions = ({"@_user_1": "ou_the_bot_itself_0000000000000000"} if group else {}) | keys
        event = fake.message_event(FEISHU["verification_token"], sender, text, mentions=mentions,
                                   chat_type="group" if group else "p2p",
                                   chat_id=GROUP["feishu"] if group else "oc_p2p")
        body, headers = fs.signed(event, FEISHU["encrypt_key"], _now())
        return Signed(body, headers, {})

    def forge(s: Signed) -> Signed:
        return Signed(s.body, {**s.headers, "X-Lark-Signature": "ab" * 32}, s.query)

    kit = feishu_kit(url, fake)
    return Talk("feishu", fake, kit.settings, kit.secrets, say, fake.reply_texts, forge)


def _dingtalk(url: str, fake: dt.FakeDingTalk) -> Talk:

    def say(sender: str, command: str, people: list[str], rest: str, group: bool) -> Signed:
        # DingTalk leaves "@name" in the text and lists the staff ids in atUsers.
        text = " ".join(filter(None, [command, *(f"@{p.title()}" for p in people), rest]))
        message = dt.robot_message(DINGTALK["client_id"], sender, text, at=tuple(people),
                                   group=GROUP["dingtalk"] if group else "")
        return Signed(json.dumps(message).encode(), dt.signed_headers(DINGTALK["client_secret"], _millis()), {})

    def forge(s: Signed) -> Signed:
        return Signed(s.body, dt.signed_headers("not-the-app-secret", _millis()), s.query)

    kit = dingtalk_kit(url, fake)
    return Talk("dingtalk", fake, kit.settings, kit.secrets, say,
                lambda: [text for _, text in fake.robot_texts()], forge)


def _wecom(url: str, fake: wc.FakeWeCom) -> Talk:

    def say(sender: str, command: str, people: list[str], rest: str, group: bool) -> Signed:
        # WeCom app messages are plain text: "@LiSi" is typed, and may as well be a member's name.
        text = " ".join(filter(None, [command, *(f"@{p}" for p in people), rest]))
        query, body = fake.message(WECOM["token"], WECOM["encoding_aes_key"], sender, text)
        return Signed(body, {"Content-Type": "text/xml"}, query)

    def forge(s: Signed) -> Signed:
        return Signed(s.body, s.headers, {**s.query, "msg_signature": "0" * 40})

    kit = wecom_kit(url, fake)
    return Talk("wecom", fake, kit.settings, kit.secrets, say,
                lambda: [r.body["text"]["content"] for r in fake.texts()], forge)


def _teams(url: str, fake: tm.FakeTeams) -> Talk:

    def say(sender: str, command: str, people: list[str], rest: str, group: bool) -> Signed:
        names = {f"Person {i}": p for i, p in enumerate(people)}
        lead = "<at>Vigil</at> " if group else ""
        text = " ".join(filter(None, [lead + command, *(f"<at>{n}</at>" for n in names), rest]))
        activity = fake.message_activity(sender, text, service_url=f"{url}/", group=group,
                                         mentions=({"Vigil": "bot"} if group else {}) | names)
        headers, body = tm.signed_callback(ISSUER, TEAMS["app_id"], activity)
        return Signed(body, headers, {})

    def forge(s: Signed) -> Signed:
        other = tm.Issuer()  # a key the Bot Connector never published
        headers, _ = tm.signed_callback(other, TEAMS["app_id"], json.loads(s.body), kid=ISSUER.kid)
        return Signed(s.body, headers, s.query)

    kit = teams_kit(url, fake)
    return Talk("teams", fake, kit.settings, kit.secrets, say, lambda: [r["text"] for r in fake.replies], forge)


TALKS: dict[str, tuple[Callable[[], Any], Callable[[str, Any], Talk]]] = {
    "feishu": (lambda: fs.FakeFeishu(app_id=FEISHU["app_id"], app_secret=FEISHU["app_secret"],
                                     users={USER["feishu"], BOB["feishu"]}, chats={GROUP["feishu"]}), _feishu),
    "dingtalk": (lambda: dt.FakeDingTalk(client_id=DINGTALK["client_id"], client_secret=DINGTALK["client_secret"],
                                         templates={TEMPLATE}, users={USER["dingtalk"], BOB["dingtalk"]},
                                         groups={GROUP["dingtalk"]}), _dingtalk),
    "wecom": (lambda: wc.FakeWeCom(corp_id=WECOM["corp_id"], corp_secret=WECOM["corp_secret"], agent_id=1000002,
                                   users={USER["wecom"], BOB["wecom"], NOBODY["wecom"]}), _wecom),
    "teams": (lambda: tm.FakeTeams(app_id=TEAMS["app_id"], app_password=TEAMS["app_password"], tenant_id=TENANT,
                                   users={"ann@example.com": USER["teams"], "bob@example.com": BOB["teams"]},
                                   issuer=ISSUER), _teams),
}


@pytest.fixture(params=sorted(TALKS))
async def talk(request: pytest.FixtureRequest, aiohttp_server: Any) -> Talk:
    make_fake, make_talk = TALKS[request.param]
    fake = make_fake()
    server = await aiohttp_server(fake.app())
    return make_talk(str(server.make_url("")).rstrip("/"), fake)


@pytest.fixture
async def vigil(settings, aiohttp_client, talk) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    from bot.chat.routes import stop_adapters
    from bot.server import create_app

    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
              settings.admin_token)
    yield api
    await stop_adapters(api.app)


async def test_chat_commands_by_message(vigil: Api, talk: Talk) -> None:
    app, p = vigil, talk.platform
    out = await app.post("/im-apps", {"platform": p, "name": "corp", "settings": talk.settings,
                                      "secrets": talk.secrets})
    assert out["problems"] == []
    ids = {}
    for name, uid, role in (("Ann", USER[p], "responder"), ("Bob", BOB[p], "responder"), ("Cat", CAT[p], "observer")):
        ids[name] = (await app.post("/members", {"name": name, "role": role, "preferences": {
            "Critical": ["im"], "Warning": ["im"]}}))["member_id"]
        await app.post(f"/mapping-tables/{p}/rows", {"member_id": ids[name], "im_user_id": uid})
    await app.channel_with_integration("ops")

    async def send(message: Signed, status: int = 200) -> None:
        resp = await app.client.post(f"/im/{p}/callback", data=message.body, headers=message.headers,
                                     params=message.query)
        await resp.read()
        assert resp.status == status

    async def answer(message: Signed) -> str:
        seen = len(talk.replies())
        await send(message)
        await until(lambda: len(talk.replies()) > seen, timeout=10)
        assert len(talk.replies()) == seen + 1
        return talk.replies()[-1]

    async def ask(sender: str, command: str, people: tuple[str, ...] = (), rest: str = "",
                  group: bool = False) -> str:
        return await answer(talk.say(sender, command, list(people), rest, group))

    # A forged message is refused and changes nothing.
    await send(talk.forge(talk.say(USER[p], "page", [BOB[p]], "forged", False)), 401)
    assert talk.replies() == [] and (await app.get("/incidents"))["total"] == 0

    assert await ask(USER[p], "oncall") == "No on-call schedules are set up yet."
    assert "I did not understand `dance`" in await ask(USER[p], "dance")
    assert (await ask(USER[p], "help")).startswith("Vigil commands:")

    said = await ask(NOBODY[p], "page", (BOB[p],), "disk full")
    assert said.startswith(f"Your {p} account ({NOBODY[p]}) is not linked") and "nobody was paged" in said
    said = await ask(USER[p], "page", (NOBODY[p],), "disk full")
    assert said.startswith(f"Nothing was paged: {NOBODY[p]} is not linked")
    assert (await app.get("/incidents"))["total"] == 0

    page = talk.say(USER[p], "page", [BOB[p]], "disk full on db-1", False)
    said = await answer(page)
    assert said.startswith("Ann paged Bob: #") and "disk full on db-1 (Critical, channel ops)" in said
    [inc] = (await app.get("/incidents"))["items"]
    assert inc["title"] == "disk full on db-1" and [r["person_id"] for r in inc["responders"]] == [ids["Bob"]]
    detail = await app.get(f"/incidents/{inc['incident_id']}")
    [new] = [t for t in detail["timeline"] if t["kind"] == "i_new"]
    assert new["actor_id"] == ids["Ann"] and new["source"] == p

    async def bob_was_sent_the_card() -> bool:
        await app.settle()
        rows = (await app.get(f"/incidents/{inc['incident_id']}/deliveries"))["items"]
        return any(d["person_id"] == ids["Bob"] and d["state"] == "sent" for d in rows)

    await until(bob_was_sent_the_card)

    # The same message again (the platform retrying, or a replay) is answered once and pages once.
    replies = len(talk.replies())
    await send(page)
    await app.settle()
    assert len(talk.replies()) == replies and (await app.get("/incidents"))["total"] == 1

    # A member acts from chat with their own role: an observer neither pages nor acknowledges.
    said = await ask(CAT[p], "page", (BOB[p],), "x")
    assert said.startswith("Nothing was paged") and "observer" in said
    said = await ask(CAT[p], "ack", (), inc["num"])
    assert said.startswith("Nothing changed") and "observer" in said
    assert (await app.get("/incidents"))["total"] == 1

    mine = await ask(BOB[p], "mine")
    assert mine.startswith("Bob, your open incidents (1):") and "disk full on db-1" in mine
    assert await ask(BOB[p], "ack", (), inc["num"]) == f"Bob acknowledged incident #{inc['num']}."
    assert (await app.get(f"/incidents/{inc['incident_id']}"))["progress"] == "Processing"

    if p == "dingtalk":  # a robot in Stream mode gets its messages over the app's Stream connection instead
        message = dt.robot_message(DINGTALK["client_id"], USER[p], "page @Bob info streamed in", at=(BOB[p],))
        seen = len(talk.replies())
        assert (await talk.fake.push_robot_message(message))["code"] == 200
        await until(lambda: len(talk.replies()) > seen, timeout=10)
        assert talk.replies()[-1].startswith("Ann paged Bob: #") and "streamed in (Info" in talk.replies()[-1]
        await talk.fake.push_robot_message(message)  # DingTalk delivering it again: answered and paged once
        await app.settle()
        assert len(talk.replies()) == seen + 1 and (await app.get("/incidents"))["total"] == 2

    if p == "wecom":  # plain-text mentions: a member's name is as good as a userid
        said = await ask(USER[p], "page", ("bob",), "warning queue is backing up")
        assert said.startswith("Ann paged Bob: #") and "(Warning, channel ops)" in said
    else:  # the bot @mentioned in a group chat answers there
        assert await ask(USER[p], "oncall", group=True) == "No on-call schedules are set up yet."
    await app.settle()
