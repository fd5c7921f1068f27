"""Encryption at rest for bot secrets and IM app credentials (DESIGN rule 8), with Fernet."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ValueError("VIGIL_SECRET_KEY is not set: secrets cannot be stored encrypted")
    # Any passphrase works: derive the 32-byte Fernet key from it.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest()))


def seal(secret_key: str, data: dict[str, Any]) -> str:
    """Encrypt a dict of secrets into an opaque token."""
    return _fernet(secret_key).encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def unseal(secret_key: str, token: str) -> dict[str, Any]:
    """Decrypt a token made by `seal`; raises ValueError if the key is wrong or the token damaged."""
    if not token:
        return {}
    try:
        return json.loads(_fernet(secret_key).decrypt(token.encode()))
    except InvalidToken:
        raise ValueError("stored secrets cannot be decrypted with the current VIGIL_SECRET_KEY") from None
