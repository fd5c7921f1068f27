"""core/passwords.py and the sign-in limit policy."""

import pytest

from core import passwords
from core.sign_in_limits import Limits, account_key, address_key, refused


@pytest.mark.parametrize("password, ok", [
    ("correct horse battery", True),
    ("x" * 12, True),
    ("x" * 11, False),
    (" " * 20, False),
    ("x" * 257, False),
])
def test_policy(password, ok):
    assert (passwords.check_policy(password) is None) is ok


def test_hash_and_verify():
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and not passwords.needs_rehash(stored)
    assert passwords.verify(stored, "correct horse battery")
    assert not passwords.verify(stored, "correct horse batterY")
    assert not passwords.verify(None, "vigil decoy password, never anybody's")  # no hash: never a match
    assert not passwords.verify("not a hash", "anything")


A, B = account_key(" Alice@Example.com "), address_key("198.51.100.7")


@pytest.mark.parametrize("counts, expected", [
    ({}, False),
    ({A: 4, B: 29}, False),
    ({A: 5}, True),
    ({B: 30}, True),
])
def test_refused(counts, expected):
    assert A == "account:alice@example.com"
    assert refused(counts, A, B, Limits()) is expected
