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
    """SHA-256 of a key or token, the only form stored and the one looked up.

    A plain, unsalted hash is enough here: the keys hashed are random with >= 128 bits, so neither a
    dictionary nor brute force can invert one, and a deterministic hash lets the database find a key by
    its hash in one index lookup. (Slow, salted hashes are for low-entropy passwords.)
    """
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
