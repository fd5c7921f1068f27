"""Inbound alert formats by push path: /event/push/alert/<name>. A new format is one file and one line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from core.types import AlertEvent
from webhooks import prometheus, standard

Parser = Callable[[object, Mapping[str, str], datetime], list[AlertEvent]]

PARSERS: dict[str, Parser] = {
    "standard": standard.parse,
    "prometheus": prometheus.parse,
}
