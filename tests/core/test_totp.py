"""core/totp.py: codes accepted one step either side of now, and only once."""

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from core import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 12, 5, 3, 0, 10, tzinfo=UTC)
STEP = pyotp.TOTP(SECRET).timecode(NOW)


def code(step: int) -> str:
    return pyotp.TOTP(SECRET).generate_otp(step)


@pytest.mark.parametrize("given, last_step, expected", [
    (code(STEP), 0, STEP),
    (code(STEP - 1), 0, STEP - 1),  # the phone's clock is a little behind
    (code(STEP + 1), 0, STEP + 1),
    (code(STEP - 2), 0, None),  # too old
    (code(STEP), STEP, None),  # already used
    (code(STEP + 1), STEP, STEP + 1),  # the next one is fine
    (code(STEP)[:3] + " " + code(STEP)[3:], 0, STEP),  # typed with a space
    ("12345", 0, None),
    ("abcdef", 0, None),
    ("", 0, None),
])
def test_matching_step(given, last_step, expected):
    assert totp.matching_step(SECRET, given, NOW, last_step) == expected


def test_enrolment():
    secret = totp.new_secret()
    assert len(secret) == 32 and totp.grouped(secret).replace(" ", "") == secret
    uri = totp.enrolment_uri(secret, "alice@example.com")
    assert uri.startswith("otpauth://totp/Vigil:alice%40example.com?") and f"secret={secret}" in uri
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(NOW + timedelta(seconds=30)), NOW, 0) == STEP + 1
