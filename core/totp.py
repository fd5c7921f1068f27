"""Time-based one-time passwords (RFC 6238, 6 digits, 30 s) as the optional second factor of web sign-in.

Pure: the caller passes the time. A code is accepted one step either side of now (clock drift), and only
once: the step it matched is returned so the caller stores it, and a code of that step or earlier is
refused next time (RFC 6238 section 5.2).
"""

from __future__ import annotations

from datetime import datetime

import pyotp
from pyotp.utils import strings_equal

DRIFT_STEPS = 1
ISSUER = "Vigil"


def new_secret() -> str:
    """A random base32 secret (160 bits, RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def enrolment_uri(secret: str, account: str) -> str:
    """The otpauth:// URI authenticator apps read (typed in or opened on the phone; no QR code needed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The time step `code` is valid for at `now`, if it is later than `last_step` (already used); else None."""
    code = code.replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > last_step and strings_equal(code, totp.generate_otp(step)):
            return step
    return None
