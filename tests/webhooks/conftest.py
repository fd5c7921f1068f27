"""Shared pieces for the inbound-format tests: a fixed `now` and the recorded fixtures."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.types import AlertEvent

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def now() -> datetime:
    return NOW


def fixture(fmt_dir: str, name: str) -> Any:
    return json.loads((FIXTURES / fmt_dir / f"{name}.json").read_text())


def as_json(event: AlertEvent) -> dict[str, Any]:
    """An AlertEvent as plain JSON-able data (enum values, ISO times, images as dicts)."""
    data = asdict(event)
    data["event_status"] = event.event_status.value
    data["event_time"] = event.event_time.isoformat() if event.event_time else None
    return data
