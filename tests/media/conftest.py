"""Fixtures for media-provider tests: a contact, a message, and each fake provider on a random local port.

The client session and the secret checker come from tests/conftest.py (the chat-adapter tests use them too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bot.media.base import Contact, Message
from tests.fakes.aliyun import FakeAliyun
from tests.fakes.sms_gateway import FakeSmsGateway
from tests.fakes.twilio import FakeTwilio

TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "tw-auth-token-8f3b2c1d9e7a6b5c"
TWILIO_FROM = "+15005550006"
ALIYUN_KEY_ID = "LTAI5tTestKeyId"
ALIYUN_SECRET = "aliyun-secret-Zq9Xw2Vb7Nm4"
GATEWAY_KEY = "gw-api-key-77c1e0b4aa"


@dataclass
class Running:
    """A fake provider and the base URL it listens on."""

    fake: Any
    url: str


@pytest.fixture
def alice() -> Contact:
    return Contact(member_id=7, name="Alice Liddell", email="alice@example.com", phone="+8613800138000")


@pytest.fixture
def page() -> Message:
    return Message(
        subject="[Critical] CPU > 95% on db-1",
        text="db-1 CPU has been above 95% for 5 minutes.",
        incident_id="inc-42",
        html="<p><b>db-1</b> CPU has been above 95% for 5 minutes.</p>",
        action_token="tok-abc123",
    )


@pytest.fixture
async def twilio(aiohttp_server: Any) -> Running:
    fake = FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, numbers={TWILIO_FROM})
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def aliyun(aiohttp_server: Any) -> Running:
    fake = FakeAliyun(keys={ALIYUN_KEY_ID: ALIYUN_SECRET}, sign_names={"Vigil"}, templates={"SMS_100001"})
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def gateway(aiohttp_server: Any) -> Running:
    fake = FakeSmsGateway(api_key=GATEWAY_KEY)
    server = await aiohttp_server(fake.app())
    return Running(fake, str(server.make_url("")).rstrip("/"))
