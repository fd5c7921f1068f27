"""Fixtures for group-bot tests: the six-platform fake on a random port, a session, and one config per type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.egress import client_session
from bot.group_bots import BotConfig, BotMessage, Mention
from core.egress import EgressPolicy
from core.types import Progress, Severity
from tests.fakes.group_bots import FakeGroupBots
from tests.kit import LOCAL_FAKES

FEISHU_TOKEN = "5e3d587e-d78e-4a07-bd07-265f269f86fd"
FEISHU_SECRET = "fs-sign-secret-nIMtb7r3N9pk"
DINGTALK_TOKEN = "dt-access-token-8c1f0e9a7b6d5c4e"
DINGTALK_SECRET = "SECdingtalk9f8e7d6c5b4a3f2e1d0c"
WECOM_KEY = "693a91f6-7aoc-4bc4-97a0-0ec2sifa5aaa"
SLACK_PATH = "T0001/B0002/slackhookSECRET123456"
ZOOM_ID = "zoomEndpointId42"
ZOOM_TOKEN = "zoom-verify-token-Qx81"
TELEGRAM_TOKEN = "123456:ABC-telegramBotToken_xyz"
TELEGRAM_CHATS = ("-1001", "-1002")

SECRETS = (FEISHU_TOKEN, FEISHU_SECRET, DINGTALK_TOKEN, DINGTALK_SECRET, WECOM_KEY, "slackhookSECRET123456",
           ZOOM_TOKEN, TELEGRAM_TOKEN)


@dataclass
class Running:
    """The fake and the base URL it listens on."""

    fake: FakeGroupBots
    url: str

    def config(self, bot_type: str, **overrides: Any) -> BotConfig:
        """A working config of this bot type pointing at the fake (fields overridable)."""
        base: dict[str, Any] = {
            "feishu": dict(url=f"{self.url}/open-apis/bot/v2/hook/{FEISHU_TOKEN}", secret=FEISHU_SECRET),
            "dingtalk": dict(url=f"{self.url}/robot/send?access_token={DINGTALK_TOKEN}", secret=DINGTALK_SECRET),
            "wecom": dict(url=f"{self.url}/cgi-bin/webhook/send?key={WECOM_KEY}"),
            "slack": dict(url=f"{self.url}/services/{SLACK_PATH}"),
            "zoom": dict(url=f"{self.url}/chat/webhooks/incomingwebhook/{ZOOM_ID}", secret=ZOOM_TOKEN),
            "telegram": dict(url=f"{self.url}/bot{TELEGRAM_TOKEN}", chat_ids=TELEGRAM_CHATS),
        }[bot_type]
        return BotConfig(type=bot_type, **({"alias": f"{bot_type} ops", "timeout": 2.0} | base | overrides))


@pytest.fixture
async def bots(aiohttp_server: Any) -> Running:
    fake = FakeGroupBots(
        feishu={FEISHU_TOKEN: FEISHU_SECRET},
        dingtalk={DINGTALK_TOKEN: DINGTALK_SECRET},
        wecom={WECOM_KEY},
        slack={SLACK_PATH},
        zoom={ZOOM_ID: ZOOM_TOKEN},
        telegram={TELEGRAM_TOKEN: set(TELEGRAM_CHATS)},
    )
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Vigil's own kind of session (bot/egress.py), opened to the local fake only."""
    async with client_session(EgressPolicy.parse(LOCAL_FAKES)) as session:
        yield session


@pytest.fixture
def page() -> BotMessage:
    return BotMessage(
        title="CPU > 95% on db-1",
        severity=Severity.CRITICAL,
        progress=Progress.TRIGGERED,
        event_type="i_new",
        text="db-1 CPU above 95% for 5 min & rising <fast>",
        url="https://vigil.example.com/incidents/42",
        mentions=(
            Mention("Alice", im_user_id="111", phone="13800000001"),
            Mention("Bob", im_user_id="", phone="13800000002"),
            Mention("Carol", im_user_id="333", phone=""),
        ),
    )


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    """Neither the message nor the repr of an error may carry any of the secrets (also percent-encoded)."""
    from urllib.parse import quote, unquote

    for shown in (str(error), repr(error)):
        for secret in secrets or SECRETS:
            assert secret not in shown and secret not in unquote(shown) and quote(secret, safe="") not in shown, \
                f"secret leaked into error: {shown}"
