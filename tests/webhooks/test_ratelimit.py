"""The per-integration ingest rate limit counts alerts, not requests."""

import pytest

from webhooks.ratelimit import RateLimiter, retry_after


def run(limiter: RateLimiter, pushes: list[tuple[float, int]]) -> list[float]:
    """(time, alerts) pushes of one integration -> what each was told: 0.0 admitted, else seconds to wait."""
    return [round(limiter.take(7, at, alerts), 3) for at, alerts in pushes]


@pytest.mark.parametrize(("per_second", "per_minute", "pushes", "told"), [
    pytest.param(100, 1000, [(0, 500), (0.1, 1)], [0.0, 3.91],
                 id="a 500-alert push spends 500: the next alert waits until the second's bucket refilled"),
    pytest.param(100, 1000, [(0, 60), (0, 40), (0, 1)], [0.0, 0.0, 0.01],
                 id="a second's budget is shared by the requests of that second"),
    pytest.param(1000, 1000, [(0, 1000), (1, 1000), (30, 1000), (60, 1000)], [0.0, 59.0, 30.0, 0.0],
                 id="a full minute's worth is admitted once a minute"),
    pytest.param(100, 100_000, [(0, 1000), (0, 1), (10, 1)], [0.0, 9.01, 0.0],
                 id="a push larger than the bucket gets in when idle, then pays its debt"),
    pytest.param(10, 1000, [(0, 10), (0, 5), (0.5, 5)], [0.0, 0.5, 0.0],
                 id="refused pushes spend nothing"),
    pytest.param(1000, 3, [(0, 1), (0, 1), (0, 1), (0, 1)], [0.0, 0.0, 0.0, 20.0],
                 id="three a minute: the fourth waits for a third of the minute"),
])
def test_alerts_count_against_both_buckets(per_second, per_minute, pushes, told):
    assert run(RateLimiter(per_second, per_minute), pushes) == told


def test_integrations_have_budgets_of_their_own():
    limiter = RateLimiter(100, 1000)
    assert limiter.take(1, 0, 100) == 0.0
    assert limiter.take(1, 0, 1) > 0
    assert limiter.take(2, 0, 100) == 0.0


def test_wait_tells_without_spending():
    limiter = RateLimiter(100, 1000)
    assert limiter.wait(1, 0) == 0.0
    assert limiter.take(1, 0, 300) == 0.0
    assert limiter.wait(1, 1) == pytest.approx(1.01)
    assert limiter.wait(1, 1) == pytest.approx(1.01)  # asking twice changed nothing
    assert limiter.wait(1, 2.01) == 0.0


@pytest.mark.parametrize(("delay", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.0, "59")])
def test_retry_after_is_whole_seconds_never_zero(delay, header):
    assert retry_after(delay) == header
