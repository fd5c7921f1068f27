"""Shared HTTP plumbing for media providers: one request call, status -> DeliveryError, redaction."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from bot.adapters.errors import DeliveryError
from bot.egress import EgressRefused

REDACTED = "***"
# A provider's error text is shown to operators on the timeline; keep it short.
DETAIL_LIMIT = 300


@dataclass(frozen=True)
class Reply:
    """A provider's HTTP answer, read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text` with ***, also where any of its characters were percent-encoded."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = _secret_pattern(secret).sub(REDACTED, text)
    return text


def _secret_pattern(secret: str) -> re.Pattern[str]:
    # Servers echo URLs and forms in whatever encoding their library chose (yarl keeps '/', quote_plus
    # turns ' ' into '+'), so each character may appear literally or as its %XX bytes.
    parts = []
    for char in secret:
        encoded = "".join(f"%{b:02X}" for b in char.encode("utf-8"))
        options = {re.escape(char), encoded, encoded.lower()} | ({"\\+"} if char == " " else set())
        parts.append("(?:" + "|".join(sorted(options)) + ")")
    return re.compile("".join(parts))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def is_retryable_status(status: int) -> bool:
    """Timeouts, rate limits and server errors may succeed later; other 4xx will not."""
    return status in (408, 425, 429) or status >= 500


def error_for_status(
    provider: str, reply: Reply, detail: str, secrets: Iterable[str], now: datetime | None = None
) -> DeliveryError:
    """The DeliveryError for a non-2xx reply: retryable for 408/429/5xx, with Retry-After honoured."""
    retry_after = parse_retry_after(reply.headers.get("Retry-After"), now or datetime.now(UTC))
    message = redact(f"{provider}: HTTP {reply.status}: {detail}"[:DETAIL_LIMIT], secrets)
    retryable = is_retryable_status(reply.status)
    return DeliveryError(message, retryable=retryable, retry_after=retry_after if retryable else None,
                         reason=f"{provider}: HTTP {reply.status}")


async def send_request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    provider: str,
    timeout: float,
    secrets: Iterable[str],
    **kwargs: Any,
) -> Reply:
    """Make one request and read the whole answer; network failures and timeouts become retryable errors.

    Errors raised here carry their message as `reason` too: it is all our own text, no remote body.
    """
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False, **kwargs
        ) as resp:
            body = await resp.read()
            return Reply(resp.status, dict(resp.headers), body)
    except TimeoutError:
        raise _own(f"{provider}: timed out after {timeout:g}s", retryable=True) from None
    except aiohttp.InvalidURL:
        raise _own(f"{provider}: the configured URL is invalid", retryable=False) from None
    except aiohttp.ClientConnectorCertificateError:
        # A certificate that fails verification is a configuration problem, not an outage.
        raise _own(f"{provider}: TLS certificate verification failed", retryable=False) from None
    except EgressRefused as exc:
        # The egress policy (bot/egress.py) said no before anything was sent: only the operator can change that.
        raise _own(redact(f"{provider}: {exc}", secrets)[:DETAIL_LIMIT], retryable=False) from None
    except aiohttp.ClientError as exc:
        # The exception text may carry the URL, and a URL may carry a key: name the failure kind only,
        # plus the redacted text for connection errors, which name just host and port.
        kind = type(exc).__name__
        text = redact(str(exc), secrets) if isinstance(exc, aiohttp.ClientConnectorError) else ""
        raise _own(f"{provider}: {kind} {text}".strip()[:DETAIL_LIMIT], retryable=True) from None


def _own(message: str, *, retryable: bool) -> DeliveryError:
    return DeliveryError(message, retryable=retryable, reason=message)
