"""Fixtures of the Open API tests: Vigil with its e-mail medium on a real SMTP server, or its SMS medium on
the Twilio fake."""

from __future__ import annotations

import pytest

from tests.fakes.twilio import FakeTwilio
from tests.kit import Api

ADMIN = "test-admin-token-0123456789abcdef"
SID, TOKEN, FROM = "AC" + "cd" * 16, "twilio-token-api-tests", "+15005550006"


@pytest.fixture
async def emailing_app(settings, aiohttp_client, inbox) -> Api:
    """Vigil whose e-mail medium sends into the test's `inbox`."""
    from bot.server import create_app

    _, port = inbox
    conf = settings.model_copy(update={"email": {"host": "127.0.0.1", "port": port, "from_addr": "vigil@example.com",
                                                 "start_tls": False}})
    return Api(await aiohttp_client(create_app(conf)), ADMIN)


@pytest.fixture
async def paging_by_sms(settings, aiohttp_client, aiohttp_server) -> tuple[Api, FakeTwilio]:
    """Vigil whose SMS medium is Twilio, answered by the fake (which records every message in order)."""
    from bot.server import create_app

    twilio = FakeTwilio(account_sid=SID, auth_token=TOKEN, numbers={FROM})
    server = await aiohttp_server(twilio.app())
    conf = settings.model_copy(update={"sms": {
        "provider": "twilio_sms", "account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
        "base_url": str(server.make_url("")).rstrip("/")}})
    return Api(await aiohttp_client(create_app(conf)), conf.admin_token), twilio
