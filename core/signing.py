"""Keys derived from VIGIL_SECRET_KEY, one per purpose, and short HMAC signatures made with them.

Each use (session cookies, incident link tokens, ...) gets its own key, so a value signed for one purpose
never verifies for another, and none of them is the key that encrypts secrets at rest (core/crypto.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_BYTES = 16  # 128 bits, DESIGN rule 8


def derived_key(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for `purpose` (HMAC-SHA256 of the purpose under the operator's secret)."""
    if not secret_key:
        raise ValueError("VIGIL_SECRET_KEY is not set")
    return hmac.new(secret_key.encode(), f"vigil/{purpose}".encode(), hashlib.sha256).digest()


def sign(key: bytes, message: str) -> str:
    """A URL-safe signature of `message` (unpadded base64 of a truncated HMAC-SHA256)."""
    mac = hmac.new(key, message.encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(key: bytes, message: str, signature: str) -> bool:
    """Whether `signature` is `sign(key, message)`, compared in constant time."""
    return hmac.compare_digest(sign(key, message).encode(), signature.encode())
