"""The delivery retry decision (core/notify.after_failure): time budget, backoff, Retry-After, handover."""

from datetime import timedelta

import pytest

from core.notify import AfterFailure, RetryPolicy, after_failure

P = RetryPolicy(budget=timedelta(minutes=10), handover_after=timedelta(seconds=60), base=1.0, cap=10.0)
S = timedelta(seconds=1)


@pytest.mark.parametrize(("attempts", "failing_for", "retryable", "retry_after", "jitter", "expected"), [
    # permanent errors: no retry, the next medium now
    (1, 0 * S, False, None, 0.0, AfterFailure(None, True)),
    (1, 0 * S, False, 30, 0.0, AfterFailure(None, True)),
    # backoff doubles from base (jittered into the upper half of each step) ...
    (1, 0 * S, True, None, 0.0, AfterFailure(0.5, False)),
    (1, 0 * S, True, None, 0.5, AfterFailure(0.75, False)),
    (2, 1 * S, True, None, 0.0, AfterFailure(1.0, False)),
    (3, 3 * S, True, None, 0.5, AfterFailure(3.0, False)),
    # ... and is capped, so a page is at most ~cap late after an outage ends
    (9, 50 * S, True, None, 0.5, AfterFailure(7.5, False)),
    (40, 300 * S, True, None, 0.0, AfterFailure(5.0, True)),
    # Retry-After is honoured when longer than the backoff
    (1, 0 * S, True, 30, 0.0, AfterFailure(30, False)),
    (5, 20 * S, True, 1, 0.5, AfterFailure(7.5, False)),
    # failing for the handover time: the next medium starts, this one keeps retrying
    (6, 59 * S, True, None, 0.0, AfterFailure(5.0, False)),
    (6, 60 * S, True, None, 0.0, AfterFailure(5.0, True)),
    # the budget: a retry that would land past it is not made
    (60, 595 * S, True, None, 0.0, AfterFailure(5.0, True)),
    (60, 596 * S, True, None, 0.0, AfterFailure(None, True)),
    (2, 100 * S, True, 3600, 0.0, AfterFailure(None, True)),  # a Retry-After beyond the budget
])
def test_after_failure(attempts, failing_for, retryable, retry_after, jitter, expected):
    got = after_failure(P, attempts=attempts, failing_for=failing_for, retryable=retryable,
                        retry_after=retry_after, jitter=jitter)
    assert got == expected


def test_the_default_budget_rides_out_minutes_and_hands_over_within_a_minute():
    d = RetryPolicy()
    assert d.budget >= timedelta(minutes=5) and d.handover_after <= timedelta(minutes=1)
