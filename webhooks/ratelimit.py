"""Per-integration ingest rate limit, counted in alerts: a 500-alert push spends 500.

Flashduty limits requests (100/s, 1000/min per integration), but a request can carry a whole
Alertmanager group, so counting requests let one integration push thousands of alerts a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """Two token buckets per key, a second's and a minute's worth of alerts; pure, the caller passes the time.

    A request of n alerts needs min(n, bucket size) tokens in both buckets and then spends all n. So a
    request as large as a bucket still gets in when its integration was idle, and pays afterwards: a
    bucket in debt admits nothing until it has refilled.
    """

    per_second: int
    per_minute: int
    _buckets: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # key -> (second, minute, at)

    def _levels(self, key: str, now: float) -> tuple[float, float]:
        second, minute, at = self._buckets.get(key, (self.per_second, self.per_minute, now))
        elapsed = max(0.0, now - at)
        return (min(self.per_second, second + elapsed * self.per_second),
                min(self.per_minute, minute + elapsed * self.per_minute / 60))

    def wait(self, key: str, now: float, alerts: int = 1) -> float:
        """Seconds until `alerts` alerts of `key` would be admitted (0.0: now); spends nothing."""
        second, minute = self._levels(key, now)
        delay = max((min(alerts, self.per_second) - second) / self.per_second,
                    (min(alerts, self.per_minute) - minute) / (self.per_minute / 60))
        return delay if delay > 1e-9 else 0.0  # a refill summed in floats lands a hair short of whole

    def take(self, key: str, now: float, alerts: int) -> float:
        """Spend `alerts` of `key`'s budget and return 0.0; or spend nothing and return the seconds to wait."""
        delay = self.wait(key, now, alerts)
        if delay > 0:
            return delay
        second, minute = self._levels(key, now)
        if len(self._buckets) > 100_000:  # bound memory against key floods
            self._buckets.clear()
        self._buckets[key] = (second - alerts, minute - alerts, now)
        return 0.0


def retry_after(delay: float) -> str:
    """A Retry-After header value: whole seconds, at least one."""
    return str(max(1, math.ceil(delay)))
