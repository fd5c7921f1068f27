"""Sessions that were signed out, as every `vigil serve` process can see them.

A web session is an encrypted cookie (bot/web/auth.py): no process holds it, so a sign-out only drops the
browser's copy. A live stream (bot/web/live.py) opened with that session may be held by another process
behind the load balancer, which never sees the sign-out request. So a sign-out also writes the session's
key (its CSRF token, random per session, hashed) to the database every process shares, in the replay
cache's table: keys refused until they expire, here once the session itself could no longer be valid.
Each process's live hub reads the keys of its open streams there now and then in one primary-key lookup
and ends the streams whose session is listed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import replay
from core.jobs import insert_for
from core.models.chat import SeenCallback

KIND = "web-session-signed-out"  # never a platform's name, so no callback key can collide with these


def key_of(session_key: str) -> str:
    return hashlib.sha256(f"{KIND}\n{session_key}".encode()).hexdigest()


async def record(db: AsyncSession, session_key: str, now: datetime, lifetime_seconds: int) -> None:
    """Remember that the session named `session_key` signed out, for as long as its cookie could live. Not
    committed."""
    table = SeenCallback.__table__  # type: ignore[attr-defined]
    key = key_of(session_key)
    stmt = insert_for(db)(table).values(key=key, expires_at=now + timedelta(seconds=lifetime_seconds))
    await db.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
    if replay.purges(key):  # expired keys go the replay cache's way: now and then, by an insert
        await db.execute(delete(table).where(table.c.expires_at <= now))


async def which(db: AsyncSession, session_keys: Iterable[str]) -> set[str]:
    """Those of `session_keys` that signed out (anywhere)."""
    by_key = {key_of(k): k for k in session_keys}
    if not by_key:
        return set()
    found = await db.execute(select(SeenCallback.key).where(SeenCallback.key.in_(sorted(by_key))))
    return {by_key[k] for k in found.scalars()}
