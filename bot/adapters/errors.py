"""The only errors that leave an adapter or provider file (STYLE.md section 9)."""

from __future__ import annotations


class DeliveryError(Exception):
    """Sending failed. `retryable` says whether the same send may succeed later.

    Transient failures (timeouts, 5xx, 429) are retryable; `retry_after` carries a
    provider's Retry-After in seconds when it gave one. Permanent failures (user not
    found, bot removed, bad token) are not, and start the fallback chain.
    Messages must never contain tokens or secrets.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class AuthError(Exception):
    """An inbound callback failed verification (bad or missing signature, stale timestamp)."""
