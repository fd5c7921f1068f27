"""Fixtures for media-provider tests: a client session and each fake provider on a random local port."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from bot.adapters.errors import DeliveryError
from bot.adapters.media import Contact, Message
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
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


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


def _assert_no_secret(error: DeliveryError, *secrets: str) -> None:
    assert secrets, "name at least one secret to look for"
    for shown in (str(error), repr(error), repr(error.args)):
        for text, secret in itertools.product((shown, unquote(shown)), secrets):
            assert secret not in text, f"secret leaked into error: {text}"


@pytest.fixture
def assert_no_secret() -> Callable[..., None]:
    """A checker: neither the message nor the repr of a DeliveryError may carry any given secret."""
    return _assert_no_secret
