"""The app medium's records: members' Web Push subscriptions and the installation's VAPID key pair.

A subscription is what a browser's `PushManager.subscribe()` returns (endpoint + the keys of RFC 8291);
`SubscriptionIn` validates that JSON as browsers send it. The VAPID key pair (RFC 8292) is made once per
installation, by whichever process needs it first, and its private half is stored sealed with
VIGIL_SECRET_KEY like IM app credentials (core.crypto): pages keep working across restarts and processes,
and browsers' subscriptions (bound to the public key) stay valid.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.crypto import seal, unseal
from core.jobs import insert_for
from core.models import PushSubscription, VapidKey

VAPID_ROW = 1  # the one key pair of an installation
MAX_PER_MEMBER = 20  # devices a member may have subscribed; the oldest is dropped beyond


def b64url(data: bytes) -> str:
    """Unpadded base64url, the encoding of every key in the Push API and VAPID."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def from_b64url(text: str) -> bytes:
    """Decode base64url with or without padding; ValueError when it is not base64url."""
    if not isinstance(text, str) or any(c in text for c in "+/ \n"):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


class SubscriptionKeys(BaseModel):
    p256dh: str = Field(max_length=200, description="the browser's P-256 public key, base64url")
    auth: str = Field(max_length=100, description="the browser's 16-byte authentication secret, base64url")

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        raw = from_b64url(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("must be an uncompressed P-256 point (65 bytes, base64url)")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("is not a point on P-256") from None
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(from_b64url(value)) != 16:
            raise ValueError("must be 16 bytes, base64url")
        return value


class SubscriptionIn(BaseModel):
    """A browser's PushSubscription, as `JSON.stringify(subscription)` gives it."""

    model_config = ConfigDict(extra="ignore")  # browsers may add fields; the ones below are all we use

    endpoint: str = Field(min_length=8, max_length=1000, description="the push service URL of this browser")
    expirationTime: float | None = Field(default=None, description="ignored: a gone subscription is removed "
                                                                   "when its push service says so")
    keys: SubscriptionKeys


@dataclass(frozen=True)
class VapidKeys:
    """The installation's VAPID key pair: the public key as browsers take it (applicationServerKey) and the
    raw 32-byte private scalar, both base64url."""

    public_key: str
    private_key: str


def new_vapid_keys() -> VapidKeys:
    """A fresh P-256 key pair for VAPID."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return VapidKeys(b64url(public), b64url(key.private_numbers().private_value.to_bytes(32, "big")))


async def vapid_keys(session: AsyncSession, secret_key: str, now: datetime) -> VapidKeys:
    """The installation's VAPID keys, made and stored (sealed) the first time. Processes starting together
    all insert a candidate and keep whichever row won. Commits. ValueError without VIGIL_SECRET_KEY, or when
    the stored key cannot be unsealed with it."""
    row = await session.get(VapidKey, VAPID_ROW)
    if row is None:
        fresh = new_vapid_keys()
        table = VapidKey.__table__  # type: ignore[attr-defined]
        await session.execute(insert_for(session)(table).values(
            id=VAPID_ROW, public_key=fresh.public_key, private_key=seal(secret_key, {"d": fresh.private_key}),
            created_at=now).on_conflict_do_nothing(index_elements=["id"]))
        await session.commit()
        row = await session.get(VapidKey, VAPID_ROW, populate_existing=True)
        assert row is not None
    return VapidKeys(row.public_key, unseal(secret_key, row.private_key)["d"])


async def subscribe(session: AsyncSession, member_id: int, sub: SubscriptionIn, user_agent: str,
                    now: datetime) -> PushSubscription:
    """Store a member's subscription; the same endpoint again (re-subscribe, another member signing in on that
    browser) updates its row. Keeps a member's newest MAX_PER_MEMBER. The caller commits."""
    row = (await session.execute(select(PushSubscription).where(PushSubscription.endpoint == sub.endpoint)
                                 )).scalar_one_or_none()
    if row is None:
        row = PushSubscription(member_id=member_id, endpoint=sub.endpoint, created_at=now)
        session.add(row)
    row.member_id, row.p256dh, row.auth = member_id, sub.keys.p256dh, sub.keys.auth
    row.user_agent, row.updated_at = user_agent[:300], now
    await session.flush()
    ids = (await session.execute(select(PushSubscription.id).where(PushSubscription.member_id == member_id)
                                 .order_by(PushSubscription.updated_at.desc(), PushSubscription.id.desc())
                                 )).scalars().all()
    await remove(session, ids[MAX_PER_MEMBER:])
    return row


async def unsubscribe(session: AsyncSession, member_id: int, endpoint: str) -> bool:
    """Remove the member's subscription with this endpoint; False when there was none. The caller commits."""
    result = await session.execute(delete(PushSubscription).where(
        PushSubscription.member_id == member_id, PushSubscription.endpoint == endpoint))
    return bool(result.rowcount)


async def subscriptions_of(session: AsyncSession, member_id: int) -> list[PushSubscription]:
    """A member's subscriptions, oldest first."""
    return list((await session.execute(select(PushSubscription).where(PushSubscription.member_id == member_id)
                                       .order_by(PushSubscription.id))).scalars().all())


async def remove(session: AsyncSession, ids: Iterable[int]) -> None:
    """Delete subscriptions by id (a push service said they are gone). The caller commits."""
    ids = list(ids)
    if ids:
        await session.execute(delete(PushSubscription).where(PushSubscription.id.in_(ids))
                              .execution_options(synchronize_session=False))
