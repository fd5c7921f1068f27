"""core/links.py: incident link tokens (pure, table-tested)."""

from datetime import UTC, datetime, timedelta

import pytest

from core.links import LinkGrant, incident_link, make_token, read_token

KEY = "a-secret-key-for-links-000000000000000"
NOW = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
GOOD = make_token(KEY, 7, 42, NOW)


@pytest.mark.parametrize("token, incident, now, secret, grant", [
    (GOOD, 42, NOW, KEY, LinkGrant(7, 42)),
    (GOOD, 42, NOW + timedelta(hours=23, minutes=59), KEY, LinkGrant(7, 42)),
    (GOOD, 42, NOW + timedelta(hours=24), KEY, None),  # expired
    (GOOD, 43, NOW, KEY, None),  # another incident
    (GOOD, 42, NOW, "another-secret-key-0000000000000000000", None),
    (GOOD, 42, NOW, "", None),  # sign-in off
    (GOOD.replace("7.42.", "8.42.", 1), 42, NOW, KEY, None),  # member changed: signature no longer fits
    (GOOD[:-1] + ("A" if GOOD[-1] != "A" else "B"), 42, NOW, KEY, None),
    ("7.42.99999999999.", 42, NOW, KEY, None),
    ("7.42", 42, NOW, KEY, None),
    ("", 42, NOW, KEY, None),
    ("٧.42.1800000000." + GOOD.rsplit(".", 1)[1], 42, NOW, KEY, None),  # non-ASCII digits
    (GOOD + "x" * 200, 42, NOW, KEY, None),
])
def test_read_token(token, incident, now, secret, grant):
    assert read_token(secret, token, incident, now) == grant


@pytest.mark.parametrize("member, secret, url", [
    (7, KEY, f"https://vigil.example/incidents/42?t={GOOD}"),
    (None, KEY, "https://vigil.example/incidents/42"),  # nobody in particular (a group post)
    (7, "", "https://vigil.example/incidents/42"),  # web sign-in is off
])
def test_incident_link(member, secret, url):
    assert incident_link("https://vigil.example/", secret, member, 42, NOW) == url


def test_tokens_are_short_enough_for_an_sms():
    assert len(GOOD) < 50
