"""The pure decisions of contact verification (core/contact_codes.py), table-tested: when a code may be
sent, when an entered code may still be checked, what counts as a code; and device names (bot/web/devices.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.web.devices import device_name
from core.contact_codes import Verdict, code_digest, judge, normalised_code, send_refusal
from core.errors import InvalidInput
from core.models.personal import ContactVerification

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def row(**kw) -> ContactVerification:  # type: ignore[no-untyped-def]
    base = {"member_id": 1, "kind": "email", "pending_value": "a@example.com", "code_hash": "h" * 64,
            "code_expires_at": NOW + timedelta(minutes=5), "attempts": 0}
    return ContactVerification(**{**base, **kw})


@pytest.mark.parametrize(("state", "refused"), [
    (None, None),
    (row(last_sent_at=NOW - timedelta(seconds=30), window_start=NOW, sends=1), "wait 31 s"),
    (row(last_sent_at=NOW - timedelta(seconds=60), window_start=NOW - timedelta(minutes=1), sends=1), None),
    (row(last_sent_at=NOW - timedelta(minutes=2), window_start=NOW - timedelta(minutes=50), sends=5),
     "5 codes were sent in the last hour"),
    (row(last_sent_at=NOW - timedelta(minutes=2), window_start=NOW - timedelta(minutes=61), sends=5), None),
    (row(last_sent_at=NOW - timedelta(minutes=2), window_start=NOW - timedelta(minutes=10), sends=4), None),
])
def test_when_a_code_may_be_sent(state, refused):
    answer = send_refusal(state, NOW)
    assert (answer is None) if refused is None else (refused in answer)


@pytest.mark.parametrize(("state", "current", "verdict"), [
    (row(), "a@example.com", None),
    (row(), "A@Example.com ", None),  # addresses compare without case
    (None, "a@example.com", Verdict.NO_CODE),
    (row(code_hash=None), "a@example.com", Verdict.NO_CODE),  # used already
    (row(), "b@example.com", Verdict.NO_CODE),  # sent to a value the member no longer has
    (row(kind="phone", pending_value="+14155550100"), "+14155550199", Verdict.NO_CODE),
    (row(code_expires_at=NOW), "a@example.com", Verdict.EXPIRED),
    (row(code_expires_at=NOW - timedelta(seconds=1)), "a@example.com", Verdict.EXPIRED),
    (row(attempts=4), "a@example.com", None),
    (row(attempts=5), "a@example.com", Verdict.LOCKED),
])
def test_whether_an_entered_code_is_checked(state, current, verdict):
    assert judge(state, current, NOW) == verdict


@pytest.mark.parametrize(("typed", "code"), [
    ("123456", "123456"), (" 123 456 ", "123456"), ("123-456", "123456"), ("000001", "000001"),
    ("12345", None), ("1234567", None), ("12345a", None), ("١٢٣٤٥٦", None), ("", None),
])
def test_what_counts_as_a_code(typed, code):
    if code is None:
        with pytest.raises(InvalidInput, match="six digits"):
            normalised_code(typed)
    else:
        assert normalised_code(typed) == code


def test_a_code_is_stored_bound_to_its_member_kind_and_value():
    key = b"k" * 32
    base = code_digest(key, 1, "email", "a@example.com", "123456")
    assert base == code_digest(key, 1, "email", "A@example.com", "123456")
    assert len({base, code_digest(key, 2, "email", "a@example.com", "123456"),
                code_digest(key, 1, "phone", "a@example.com", "123456"),
                code_digest(key, 1, "email", "b@example.com", "123456"),
                code_digest(b"j" * 32, 1, "email", "a@example.com", "123456")}) == 5


@pytest.mark.parametrize(("agent", "name"), [
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile "
     "Safari/537.36", "Chrome on Android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0",
     "Edge on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on macOS"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0 Safari/537.36",
     "Headless Chrome on Linux"),
    ("", "Unknown browser"),
])
def test_device_names(agent, name):
    assert device_name(agent) == name
