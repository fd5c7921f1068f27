"""The app medium's pure parts: one delivery's outcome from its pushes, VAPID claims, subscription keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.media.web_push import origin, outcome, vapid_claims, vapid_subject
from core.errors import DeliveryError
from core.push import SubscriptionIn, new_vapid_keys
from tests.fakes.push_service import FakePushService

GONE = DeliveryError("gone", retryable=False, gone=True)
DOWN = DeliveryError("503", retryable=True, retry_after=5)
SLOW = DeliveryError("429", retryable=True, retry_after=30)
BAD = DeliveryError("400 bad request", retryable=False)

OUTCOMES = [
    # pushes to each subscription                -> sent?, retryable, gone, retry_after
    ([], (False, False, False, None)),  # no subscription: fall back at once
    (["msg-1"], (True, None, None, None)),
    ([GONE, "msg-2"], (True, None, None, None)),  # any push service accepted: delivered
    ([DOWN, "msg-3"], (True, None, None, None)),
    ([GONE], (False, False, True, None)),
    ([GONE, GONE], (False, False, True, None)),
    ([GONE, DOWN], (False, True, False, 5)),  # the live one may take it later: retry
    ([DOWN, SLOW], (False, True, False, 30)),  # waits for the longest Retry-After
    ([BAD, GONE], (False, False, False, None)),
    ([BAD, DOWN], (False, True, False, 5)),
]


@pytest.mark.parametrize(("results", "expected"), OUTCOMES)
def test_outcome_of_one_delivery(results, expected):
    got = outcome(results)
    sent, retryable, gone, retry_after = expected
    if sent:
        assert got == next(r for r in results if isinstance(r, str))
        return
    assert isinstance(got, DeliveryError)
    assert (got.retryable, got.gone, got.retry_after) == (retryable, gone, retry_after)


def test_vapid_claims_name_the_push_service_and_expire_within_a_day():
    claims = vapid_claims("https://fcm.googleapis.com/fcm/send/abc:def", "https://vigil.example", 1_000_000)
    assert claims == {"aud": "https://fcm.googleapis.com", "exp": 1_000_000 + 12 * 3600, "sub": "https://vigil.example"}
    assert origin("http://127.0.0.1:8123/push/x") == "http://127.0.0.1:8123"
    assert vapid_subject("http://localhost:8080").startswith("mailto:")


def test_new_vapid_keys_are_p256_and_distinct():
    a, b = new_vapid_keys(), new_vapid_keys()
    assert a != b and len(a.public_key) == 87 and len(a.private_key) == 43


def _sub(**keys):
    good = FakePushService(url="https://push.example").subscribe()
    return {**good, "keys": {**good["keys"], **keys}}


@pytest.mark.parametrize(("keys", "problem"), [
    ({}, None),
    ({"auth": "c2hvcnQ"}, "16 bytes"),
    ({"auth": "not base64!"}, "base64url"),
    ({"p256dh": "BA" + "A" * 85}, "point"),  # 65 bytes, but not a point on P-256
    ({"p256dh": "AAAA"}, "uncompressed P-256 point"),
])
def test_subscription_keys_are_checked(keys, problem):
    if problem is None:
        SubscriptionIn.model_validate(_sub(**keys))
        return
    with pytest.raises(ValidationError, match=problem):
        SubscriptionIn.model_validate(_sub(**keys))
