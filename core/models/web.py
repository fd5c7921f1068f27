"""Web sign-in: a member's password and second factor, and failed sign-ins (for rate limiting).

Kept apart from `member` so credentials are never loaded, serialised or returned with a member.
Web sessions themselves live in encrypted cookies (bot/web/), not here.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import time_col


class MemberLogin(SQLModel, table=True):
    """How one member signs in on the web; removed with the member."""

    __tablename__ = "member_login"
    member_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("member.id", ondelete="CASCADE"),
                                               primary_key=True))
    password_hash: str | None = Field(default=None, max_length=255)
    # The TOTP secret, sealed with VIGIL_SECRET_KEY (core/crypto.py) like every other secret at rest.
    totp_sealed: str | None = Field(default=None, max_length=512)
    totp_last_step: int = 0  # the last time step a code was accepted for: a code works once (core/totp.py)
    # Raised whenever the password or second factor changes: every web session of the member carries the
    # epoch it began in and ends when they differ.
    epoch: int = 0
    password_set_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class SignInFailure(SQLModel, table=True):
    """One failed sign-in, counted per account and per client address over a sliding window."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (sa.Index("ix_sign_in_failure_key_at", "key", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=320)  # "account:<e-mail>" or "address:<ip>"
    at: datetime | None = time_col(index=True, nullable=False)
