"""The one place that reads the wall clock; runners and handlers call it, decision logic never does."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
