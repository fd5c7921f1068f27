"""Per-integration ingest rate limit (Flashduty: 100 req/s and 1000 req/min per integration)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """Fixed one-second and one-minute windows per key; pure, the caller passes the time."""

    per_second: int
    per_minute: int
    _windows: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    def allow(self, key: str, now: float) -> tuple[bool, float]:
        """Count one request for `key`; return (allowed, seconds to wait when refused)."""
        sec, minute = int(now), int(now // 60)
        s_win, s_cnt, m_win, m_cnt = self._windows.get(key, (sec, 0, minute, 0))
        if s_win != sec:
            s_win, s_cnt = sec, 0
        if m_win != minute:
            m_win, m_cnt = minute, 0
        if m_cnt >= self.per_minute:
            return False, math.ceil((minute + 1) * 60 - now)
        if s_cnt >= self.per_second:
            return False, max(1, math.ceil(sec + 1 - now))
        self._windows[key] = (s_win, s_cnt + 1, m_win, m_cnt + 1)
        if len(self._windows) > 100_000:  # bound memory against key floods
            self._windows.clear()
        return True, 0.0
