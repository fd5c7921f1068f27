"""The personal center's state: contact verification by code, and each member's calendar feed.

Both are kept apart from `member` so a code's hash is never loaded, serialised or returned with a member.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import time_col


def _member_key() -> sa.Column:
    return sa.Column(sa.Integer, sa.ForeignKey("member.id", ondelete="CASCADE"), primary_key=True)


class ContactVerification(SQLModel, table=True):
    """One contact method (`email` or `phone`) of a member: the value last proven by a code, and the code
    now out for it (core/contact_codes.py). A contact is verified while the member's current value is
    `verified_value`: any change, by any path, leaves it unverified without touching this row."""

    __tablename__ = "contact_verification"
    member_id: int = Field(sa_column=_member_key())
    kind: str = Field(sa_column=sa.Column(sa.String(8), primary_key=True))
    verified_value: str | None = Field(default=None, max_length=254)
    verified_at: datetime | None = time_col()
    # The code out now: sent to `pending_value`, stored as an HMAC under a key derived from VIGIL_SECRET_KEY
    # (six digits are a million values: a plain hash would fall to brute force if the database leaked).
    pending_value: str | None = Field(default=None, max_length=254)
    code_hash: str | None = Field(default=None, max_length=64)
    code_expires_at: datetime | None = time_col()
    attempts: int = 0  # wrong codes entered for the code out now
    # Codes sent in the current hour (texts cost money and annoy): counted from `window_start`.
    window_start: datetime | None = time_col()
    sends: int = 0
    last_sent_at: datetime | None = time_col()


class CalendarFeed(SQLModel, table=True):
    """A member's calendar subscription: the feed's secret is derived from VIGIL_SECRET_KEY, the member and
    `generation` (core/calendar_feed.py), so nothing secret is stored; rotating raises the generation and the
    old URL stops working at once."""

    __tablename__ = "calendar_feed"
    member_id: int = Field(sa_column=_member_key())
    generation: int = 1
    created_at: datetime | None = time_col()
