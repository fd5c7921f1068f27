"""Access log lines that carry no secrets: every query value is redacted.

aiohttp's default line logs the request target as sent, and Vigil's callers put secrets there
(`?integration_key=` on every alert push, signed tokens on voice and media callbacks), so the
target and the Referer are logged with their query values replaced, their names kept for debugging.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

REDACTED = "***"


def redact(target: str) -> str:
    """`/p?integration_key=abc&x` -> `/p?integration_key=***&***`: names stay, values go."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if eq else (REDACTED if part else part))
    return f"{path}?{'&'.join(parts)}"


class RedactedAccessLogger(AbstractAccessLogger):
    """aiohttp's access line (remote, request line, status, size, time, Referer, User-Agent), redacted."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s HTTP/%d.%d" %d %s %.6f "%s" "%s"', request.remote, request.method,
                         redact(request.path_qs), request.version.major, request.version.minor,
                         response.status, response.body_length, time,
                         redact(request.headers.get("Referer", "-")), request.headers.get("User-Agent", "-"))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
