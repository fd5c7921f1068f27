"""A member's calendar subscription URL: calendar apps fetch a URL and cannot send a bearer header, so the
URL itself carries the secret.

The secret is an HMAC of (member, generation) under a key derived from VIGIL_SECRET_KEY: nothing secret is
stored, the page can show the URL again at any time, and rotating raises the generation, so the old URL
stops working on its next fetch. No row means the member has no feed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.models.personal import CalendarFeed
from core.signing import derived_key, sign, verify

PURPOSE = "calendar-feed"


def feed_path(secret_key: str, member_id: int, generation: int) -> str:
    """The feed's path: /calendar/<member>/<secret>.ics."""
    secret = sign(derived_key(secret_key, PURPOSE), f"{member_id}:{generation}")
    return f"/calendar/{member_id}/{secret}.ics"


async def feed_of(session: AsyncSession, member_id: int) -> CalendarFeed | None:
    return await session.get(CalendarFeed, member_id)


async def rotate(session: AsyncSession, member_id: int, now: datetime) -> CalendarFeed:
    """Turn the feed on, or give it a new secret (the old URL stops working)."""
    row = await feed_of(session, member_id)
    if row is None:
        row = CalendarFeed(member_id=member_id, generation=1, created_at=now)
        session.add(row)
    else:
        row.generation, row.created_at = row.generation + 1, now
    await session.flush()
    return row


async def turn_off(session: AsyncSession, member_id: int) -> None:
    row = await feed_of(session, member_id)
    if row is not None:
        await session.delete(row)
        await session.flush()


async def opens(session: AsyncSession, secret_key: str, member_id: int, secret: str) -> bool:
    """Whether `secret` is the member's current feed secret (compared in constant time)."""
    row = await feed_of(session, member_id)
    if row is None or not secret_key:
        return False
    return verify(derived_key(secret_key, PURPOSE), f"{member_id}:{row.generation}", secret)
