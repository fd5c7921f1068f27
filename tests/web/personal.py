"""Fixtures for the personal center's tests: a Vigil with web sign-in on, its email medium pointed at a real
SMTP server (aiosmtpd) and its SMS medium at the Twilio fake, so verification codes travel as they would."""

from __future__ import annotations

import re

import pytest

from tests import kit
from tests.fakes.twilio import FakeTwilio
from tests.kit import Api, until

SID, TOKEN, FROM = "AC" + "cd" * 16, "twilio-token-personal", "+15005550006"
CODE = re.compile(r"verification code is (\d{6})")


class Inbox(kit.Inbox):
    """Mail with verification codes."""

    def codes_to(self, address: str) -> list[str]:
        return [CODE.search(m.get_body(("plain",)).get_content()).group(1)
                for m in self.messages if address in str(m["To"])]

    async def code_to(self, address: str, nth: int = 1) -> str:
        """The `nth` code mailed to `address` (waits for it)."""
        await until(lambda: len(self.codes_to(address)) >= nth, timeout=10)
        return self.codes_to(address)[nth - 1]


@pytest.fixture
def inbox():
    box = Inbox()
    with kit.smtp_server(box) as port:
        box.port = port  # type: ignore[attr-defined]
        yield box


@pytest.fixture
async def twilio(aiohttp_server):
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN, numbers={FROM})
    fake.base = str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")  # type: ignore[attr-defined]
    return fake


def texted_codes(twilio: FakeTwilio, number: str) -> list[str]:
    return [CODE.search(r.form["Body"]).group(1) for r in twilio.requests if r.form.get("To") == number]


@pytest.fixture
async def center(settings, aiohttp_client, inbox, twilio) -> Api:  # type: ignore[no-untyped-def]
    """A running Vigil (web sign-in on) whose email and SMS media reach the local SMTP server and Twilio fake."""
    from bot.server import create_app

    conf = settings.model_copy(update={
        "email": {"host": "127.0.0.1", "port": inbox.port, "from_addr": "vigil@example.com", "start_tls": False},
        "sms": {"provider": "twilio_sms", "account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
                "base_url": twilio.base},
    })
    return Api(await aiohttp_client(create_app(conf)), "test-admin-token-0123456789abcdef")
