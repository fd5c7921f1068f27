"""Helpers for chat-adapter tests; the client session and the secret checker come from tests/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Running:
    """A fake platform and the base URL it listens on."""

    fake: Any
    url: str
