"""Random keys and tokens (>= 128 bits), their hashes, and constant-time comparison (DESIGN rule 8)."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_key(nbytes: int = 16) -> str:
    """A random URL-safe key; 16 bytes = 128 bits (integration keys)."""
    return secrets.token_hex(nbytes)


def new_token() -> str:
    """A random bearer token (256 bits), prefixed so leaked tokens are recognisable."""
    return "vgl_" + secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
