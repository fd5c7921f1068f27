"""The app medium's state: each member's Web Push subscriptions, and this installation's VAPID key pair."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import time_col


class PushSubscription(SQLModel, table=True):
    """One browser's or installed app's PushSubscription (W3C Push API), owned by a member.

    The endpoint is the push service's URL for that browser and is unique: a browser that subscribes again
    (or for another member after a sign-in) replaces its row. Deleting the member deletes its subscriptions.
    """

    __tablename__ = "push_subscription"
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("member.id", ondelete="CASCADE"),
                                               nullable=False, index=True))
    endpoint: str = Field(max_length=1000, unique=True)
    p256dh: str = Field(max_length=200)  # the browser's P-256 public key, base64url (RFC 8291)
    auth: str = Field(max_length=100)  # the browser's 16-byte authentication secret, base64url
    user_agent: str = Field(default="", max_length=300)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class VapidKey(SQLModel, table=True):
    """The installation's VAPID key pair (RFC 8292); one row, id 1. The private key is sealed (core.crypto)."""

    __tablename__ = "vapid_key"
    id: int | None = Field(default=None, primary_key=True)
    public_key: str = Field(max_length=100)  # uncompressed P-256 point, base64url: the applicationServerKey
    private_key: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime | None = time_col()
