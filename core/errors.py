"""Domain errors; the HTTP layer maps each to a status and Flashduty error code."""

from __future__ import annotations


class VigilError(Exception):
    status = 400
    code = "InvalidParameter"


class InvalidInput(VigilError, ValueError):
    """A request names a bad value; the message names the field."""


class NotFound(VigilError):
    status = 404
    code = "ResourceNotFound"


class IllegalTransition(VigilError):
    """The incident is not in a state that allows the action (e.g. ack of a closed incident)."""

    status = 409
    code = "Conflict"


class Conflict(VigilError):
    """The request clashes with existing data (a name already taken, an id already linked)."""

    status = 409
    code = "Conflict"


class PermissionDenied(VigilError):
    status = 403
    code = "AccessDenied"


class DeliveryError(Exception):
    """Sending failed. `retryable` says whether the same send may succeed later.

    Transient failures (timeouts, 5xx, 429) are retryable; `retry_after` carries a
    provider's Retry-After in seconds when it gave one. Permanent failures (user not
    found, bot removed, bad token) are not, and start the fallback chain.
    Messages must never contain tokens or secrets. `reason` is the short form a test endpoint shows
    (a status, a refusal, a platform error code): never text taken from the remote answer.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None,
                 gone: bool = False, reason: str = "", recipient: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.gone = gone  # the recipient left the platform: its mapping row is marked stale
        # The error is about the recipient (a bad or unreachable number), not the provider: another provider
        # of the medium would fail the same way, so failover (bot/media/failover.py) stops there.
        self.recipient = recipient
        self.reason = reason


class DeliveryQueued(Exception):
    """The sender queued the page instead of sending it now (a group bot at its rate limit).

    The delivery stays pending and has used no attempt: the queue that took it sends it later and
    records the outcome, so the delivery runner neither retries nor fails it.
    """
