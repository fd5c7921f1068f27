"""Replayed callbacks change nothing, on every chat platform, as an attacker would try it: a signed Close is
captured, the incident is reopened, and the captured bytes are sent again inside their time window. Each
callback is signed exactly as its platform signs it (tests/fakes), sent over HTTP to a running Vigil, on
SQLite and PostgreSQL. Also: what each adapter takes as a callback's id, and the DingTalk and Twilio cases."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.base import InboundRequest
from core.types import Platform
from tests.fakes import dingtalk as dt
from tests.fakes import feishu as fs
from tests.fakes import slack as sl
from tests.fakes import teams as tm
from tests.fakes import wecom as wc
from tests.kit import Api, until

USER = {"slack": "U0ANN1234", "feishu": "ou_7d8a6e6df7621556ce0d21922b676706", "dingtalk": "manager4711",
        "wecom": "ZhangSan", "teams": "6b0c5ad3-1111-4a4a-8b8b-aaaaaaaaaaaa"}
SLACK = {"bot_token": "xoxb-1111-2222-SlackBotTokenQ7w", "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"}
FEISHU = {"app_id": "cli_a1b2c3d4e5f60718", "app_secret": "fs-app-secret-Qm4Zx81Lw0Tr",
          "verification_token": "fs-verify-token-Hn3Kq9Ws", "encrypt_key": "fs-encrypt-key-Pz7Vb2Yc"}
DINGTALK = {"client_id": "dingappkey0123456789", "client_secret": "dt-app-secret-Xk29vLq7Wm3Zp8"}
WECOM = {"corp_id": "ww0a1b2c3d4e5f6a7b", "corp_secret": "wecom-corp-secret-Zx81Lq0pVb3", "token": "cbToken7Hk2Qw",
         "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
TEAMS = {"app_id": "8a3f2c1e-5b7d-4e9a-9c0b-1d2e3f4a5b6c", "app_password": "teams-app-password~Qz8.Wv3_Lk9"}
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TEMPLATE = "f1e2d3c4-0000-4a1b-9c8d-7e6f5a4b3c2d.schema"
ISSUER = tm.Issuer()
VERBS = {"cls": "close", "rop": "reopen", "ack": "ack", "cst": "custom"}


@dataclass(frozen=True)
class Signed:
    """One callback as the platform would POST it."""

    body: bytes
    headers: dict[str, str]
    query: dict[str, str]


@dataclass
class Kit:
    """A running platform fake, the IM app pointing at it, and how that platform signs a click."""

    platform: str
    settings: dict[str, Any]
    secrets: dict[str, str]
    sign: Callable[[str], Signed]  # packed action ("cls:7") -> a freshly signed click on it, by USER
    # Slack answers through response_url after its 200 (bolt acks first): how many answers arrived there.
    answers: Callable[[], int] | None = None


def _now() -> int:
    return int(time.time())


_last_millis = [0]


def _millis() -> int:
    # DingTalk's timestamp (ms) is all that tells its clicks apart: never the same one twice.
    _last_millis[0] = max(int(time.time() * 1000), _last_millis[0] + 1)
    return _last_millis[0]


def slack_kit(url: str, fake: Any) -> Kit:
    def sign(packed: str) -> Signed:
        # Slack gives every interaction its own trigger_id: two clicks on one button are two bodies.
        body = sl.block_actions(USER["slack"], sl.button(f"vigil.{VERBS[packed[:3]]}", packed),
                                response_url=f"{url}/response/ann", trigger_id=f"{time.time_ns()}.4711.a1b2")
        return Signed(body, sl.signed_headers(SLACK["signing_secret"], body, _now()), {})

    return Kit("slack", {"base_url": url}, SLACK, sign, lambda: len(fake.responses))


def feishu_kit(url: str, fake: Any) -> Kit:
    def sign(packed: str) -> Signed:
        body, headers = fs.signed(fs.card_action(FEISHU["verification_token"], USER["feishu"],
                                                 value={"action": packed}), FEISHU["encrypt_key"], _now())
        return Signed(body, headers, {})

    return Kit("feishu", {"base_url": url}, FEISHU, sign)


def dingtalk_kit(url: str, fake: Any) -> Kit:
    def sign(packed: str) -> Signed:
        body = json.dumps(dt.card_callback(USER["dingtalk"], packed, "track-1")).encode()
        return Signed(body, dt.signed_headers(DINGTALK["client_secret"], _millis()), {})

    return Kit("dingtalk", {"base_url": url, "oapi_base_url": url, "stream_endpoint": url,
                            "card_template_id": TEMPLATE}, DINGTALK, sign)


def wecom_kit(url: str, fake: Any) -> Kit:
    def sign(packed: str) -> Signed:
        query, body, _ = fake.click(WECOM["token"], WECOM["encoding_aes_key"], USER["wecom"], packed, "task-1")
        return Signed(body, {"Content-Type": "text/xml"}, query)

    return Kit("wecom", {"base_url": url, "agent_id": 1000002}, WECOM, sign)


def teams_kit(url: str, fake: Any) -> Kit:
    def sign(packed: str) -> Signed:
        activity = tm.invoke_activity(USER["teams"], VERBS[packed[:3]], {"action": packed}, service_url=f"{url}/",
                                      tenant_id=TENANT)
        headers, body = tm.signed_callback(ISSUER, TEAMS["app_id"], activity)
        return Signed(body, headers, {})

    return Kit("teams", {"tenant_id": TENANT, "service_url": f"{url}/",
                         "token_url": f"{url}/botframework.com/oauth2/v2.0/token",
                         "graph_token_url": f"{url}/{TENANT}/oauth2/v2.0/token",
                         "openid_metadata_url": f"{url}/v1/.well-known/openidconfiguration",
                         "graph_base_url": url}, TEAMS, sign)


FAKES: dict[str, tuple[Callable[[], Any], Callable[[str, Any], Kit]]] = {
    "slack": (lambda: sl.FakeSlack(bot_token=SLACK["bot_token"], users={USER["slack"]: "ann@example.com"}),
              slack_kit),
    "feishu": (lambda: fs.FakeFeishu(app_id=FEISHU["app_id"], app_secret=FEISHU["app_secret"],
                                     users={USER["feishu"]}), feishu_kit),
    "dingtalk": (lambda: dt.FakeDingTalk(client_id=DINGTALK["client_id"], client_secret=DINGTALK["client_secret"],
                                         templates={TEMPLATE}, users={USER["dingtalk"]}), dingtalk_kit),
    "wecom": (lambda: wc.FakeWeCom(corp_id=WECOM["corp_id"], corp_secret=WECOM["corp_secret"], agent_id=1000002,
                                   users={USER["wecom"]}), wecom_kit),
    "teams": (lambda: tm.FakeTeams(app_id=TEAMS["app_id"], app_password=TEAMS["app_password"], tenant_id=TENANT,
                                   users={}, issuer=ISSUER), teams_kit),
}


@pytest.fixture(params=sorted(FAKES))
async def kit(request: pytest.FixtureRequest, aiohttp_server: Any) -> Kit:
    make_fake, make_kit = FAKES[request.param]
    fake = make_fake()
    server = await aiohttp_server(fake.app())
    return make_kit(str(server.make_url("")).rstrip("/"), fake)


@pytest.fixture
async def vigil(settings, aiohttp_client, kit) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    # Needs `kit`, so the platform fake outlives Vigil: DingTalk's Stream connection is closed before its server.
    from bot.chat.routes import stop_adapters
    from bot.server import create_app

    api = Api(await aiohttp_client(create_app(settings.model_copy(update={"secret_key": "test-secret"}))),
              settings.admin_token)
    yield api
    # DingTalk's Stream thread is stopped while the app still runs: stopped at shutdown it takes ~50 s to end.
    await stop_adapters(api.app)


async def incident_clicked_by_ann(app: Api, kit: Kit) -> int:
    """The kit's IM app, Ann linked to the kit's user, and one Triggered incident (no cards: nothing is sent)."""
    out = await app.post("/im-apps", {"platform": kit.platform, "name": "corp", "settings": kit.settings,
                                      "secrets": kit.secrets})
    assert out["problems"] == []
    ann = await app.post("/members", {"name": "Ann"})
    await app.post(f"/mapping-tables/{kit.platform}/rows", {"member_id": ann["member_id"],
                                                            "im_user_id": USER[kit.platform]})
    _, key = await app.channel_with_integration()
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [inc] = (await app.get("/incidents"))["items"]
    return inc["incident_id"]


async def post(app: Api, kit: Kit, callback: Signed) -> int:
    resp = await app.client.post(f"/im/{kit.platform}/callback", data=callback.body, headers=callback.headers,
                                 params=callback.query)
    await resp.read()
    return resp.status


async def click(app: Api, kit: Kit, callback: Signed) -> None:
    """A fresh click, answered: once this returns, the click path is done with it (changed or refused)."""
    answered = kit.answers() if kit.answers else 0
    assert await post(app, kit, callback) == 200
    if kit.answers is not None:
        await until(lambda: kit.answers() > answered, timeout=10)  # type: ignore[misc]


async def progress(app: Api, iid: int) -> str:
    return (await app.get(f"/incidents/{iid}"))["progress"]


async def replayed(app: Api, kit: Kit, callback: Signed, caplog: pytest.LogCaptureFixture) -> None:
    """Send the captured bytes again: answered 200 like any click, taken as a copy (logged), nothing else."""
    seen = caplog.text.count("seen before")
    assert await post(app, kit, callback) == 200
    await until(lambda: caplog.text.count("seen before") == seen + 1, timeout=10)


async def test_a_replayed_close_or_reopen_changes_nothing(vigil, kit, caplog) -> None:
    app = vigil
    caplog.set_level(logging.WARNING, logger="vigil.clicks")
    iid = await incident_clicked_by_ann(app, kit)

    close = kit.sign(f"cls:{iid}")
    await click(app, kit, close)
    assert await progress(app, iid) == "Closed"
    reopen = kit.sign(f"rop:{iid}")
    await click(app, kit, reopen)
    assert await progress(app, iid) == "Triggered"

    await replayed(app, kit, close, caplog)
    assert await progress(app, iid) == "Triggered"

    await app.post(f"/incidents/{iid}/close")
    await replayed(app, kit, reopen, caplog)
    assert await progress(app, iid) == "Closed"

    kinds = [t["kind"] for t in (await app.get(f"/incidents/{iid}"))["timeline"]]
    assert kinds.count("i_rslv") == 2 and kinds.count("i_reopen") == 1  # the clicks and the API's close


async def test_a_refused_click_cannot_be_replayed_once_it_would_work(vigil, kit, caplog) -> None:
    """A Close sent while the incident is already closed changes nothing; sent again after a reopen it would
    close the incident, so it is a copy all the same."""
    app = vigil
    caplog.set_level(logging.WARNING, logger="vigil.clicks")
    iid = await incident_clicked_by_ann(app, kit)
    await app.post(f"/incidents/{iid}/close")
    close = kit.sign(f"cls:{iid}")
    await click(app, kit, close)
    assert await progress(app, iid) == "Closed"
    await app.post(f"/incidents/{iid}/reopen")
    await replayed(app, kit, close, caplog)
    assert await progress(app, iid) == "Triggered"


@pytest.mark.parametrize("kit", ["dingtalk"], indirect=True)
async def test_dingtalk_takes_each_timestamp_and_sign_once_whatever_the_body(vigil, kit, caplog) -> None:
    """DingTalk's HTTP signature covers only its timestamp: a captured pair of headers with a new body is a
    copy too."""
    app = vigil
    caplog.set_level(logging.WARNING, logger="vigil.clicks")
    iid = await incident_clicked_by_ann(app, kit)
    ack = kit.sign(f"ack:{iid}")
    await click(app, kit, ack)
    assert await progress(app, iid) == "Processing"
    forged_close = Signed(json.dumps(dt.card_callback(USER["dingtalk"], f"cls:{iid}", "track-1")).encode(),
                          ack.headers, {})
    await replayed(app, kit, forged_close, caplog)
    assert await progress(app, iid) == "Processing"


async def test_a_twilio_keypad_press_is_taken_once(settings, aiohttp_client, caplog) -> None:
    from bot.media.senders import action_token
    from bot.media.twilio import twilio_signature
    from bot.server import create_app

    voice = {"provider": "twilio_voice", "account_sid": "AC" + "0" * 32, "auth_token": "twilio-auth-token-Hq81",
             "from_number": "+15005550006"}
    configured = settings.model_copy(update={"secret_key": "test-secret", "voice": voice})
    app = Api(await aiohttp_client(create_app(configured)), settings.admin_token)
    caplog.set_level(logging.WARNING, logger="vigil.clicks")
    ann = await app.post("/members", {"name": "Ann", "phone": "+15005550001"})
    _, key = await app.channel_with_integration()
    await app.push(key, {"event_status": "Critical", "title_rule": "db-1 is down", "alert_key": "db-1"})
    [inc] = (await app.get("/incidents"))["items"]
    iid = inc["incident_id"]

    token = action_token("test-secret", iid, ann["member_id"])
    path = f"/im/voice/callback?token={token}"
    form = {"CallSid": "CA" + "1" * 32, "Digits": "1", "AccountSid": voice["account_sid"]}
    headers = {"X-Twilio-Signature": twilio_signature(voice["auth_token"], f"{configured.resolved_base_url()}{path}",
                                                      form)}
    resp = await app.client.post(path, data=form, headers=headers)
    assert resp.status == 200 and "acknowledged" in await resp.text()
    await app.post(f"/incidents/{iid}/unack")
    resp = await app.client.post(path, data=form, headers=headers)
    assert resp.status == 200 and "acknowledged" not in await resp.text()
    assert "voice callback seen before" in caplog.text
    assert await progress(app, iid) == "Triggered"


# -- what each adapter takes as a callback's id ---------------------------------------------------------------


@pytest.fixture
async def adapter(kit: Kit, session: Any) -> Any:
    from bot.adapters import ADAPTERS

    built = ADAPTERS[Platform(kit.platform)].from_app(dict(kit.settings), dict(kit.secrets), http=session)
    prepare = getattr(built, "prepare", None)  # Teams: the signing keys verify() needs
    if prepare is not None:
        await prepare()
    return built


def inbound(callback: Signed) -> InboundRequest:
    return InboundRequest(callback.body, callback.headers, callback.query)


async def test_each_click_has_its_own_id_and_a_copy_has_the_same(adapter, kit) -> None:
    now = datetime.now(UTC)
    first, again = kit.sign("ack:7"), kit.sign("ack:7")
    events = [adapter.parse_action(inbound(c)) for c in (first, first, again)]
    assert all(adapter.verify(inbound(c), now) for c in (first, again))
    ids = [e.callback for e in events]
    assert all(i is not None and i.key for i in ids)
    assert ids[0] == ids[1] and ids[0].key != ids[2].key
    # kept at least as long as a copy passes verify: the 5 minute windows both ways, or a Teams token's life
    assert ids[0].valid_for.total_seconds() >= 600
