"""The only errors that leave an adapter or provider file (STYLE.md section 9).

DeliveryError is defined in core (the delivery engine classifies it) and re-exported here.
"""

from __future__ import annotations

from core.errors import DeliveryError

__all__ = ["AuthError", "DeliveryError"]


class AuthError(Exception):
    """An inbound callback failed verification (bad or missing signature, stale timestamp)."""
