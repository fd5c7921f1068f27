"""Password hashing for web sign-in: argon2id (argon2-cffi's defaults, RFC 9106's second recommendation).

Hashing costs ~64 MiB and tens of milliseconds on purpose; callers on an event loop run it in a thread.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12  # NIST SP 800-63B asks for at least 8; a pager account deserves more
MAX_LENGTH = 256  # long enough for any pass phrase; short enough that nobody feeds us megabytes to hash

_HASHER = PasswordHasher()
# Verified against when the account does not exist or has no password, so a wrong e-mail costs the same
# time as a wrong password and the response time does not tell which accounts exist.
_DECOY = _HASHER.hash("vigil decoy password, never anybody's")


def check_policy(password: str) -> str | None:
    """Why `password` may not be used, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    if not password.strip():
        return "a password cannot be only spaces"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches `stored_hash`; with no hash, spends the same time and answers False."""
    try:
        return _HASHER.verify(stored_hash or _DECOY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash it after a good sign-in)."""
    return _HASHER.check_needs_rehash(stored_hash)
