"""The replay cache: a platform callback is taken once; a copy of it changes nothing.

A signed callback stays valid for its platform's time window, so whoever captures one (a proxy log, a
browser extension, a leaked HAR file) could send it again: a replayed Close after a Reopen would close the
incident again. Each callback's own unique id (CallbackId, set by the adapter after `verify`) is inserted
into the database, shared by every process, before the action runs: the insert is the atomic "first time
seen" test (a unique key; PostgreSQL's ON CONFLICT waits for a concurrent insert of the same key to commit),
and an id seen again while it is still valid is a replay. Ids are kept only as long as a copy could pass
verification; expired rows are deleted now and then by the inserts themselves, and an expired row whose id
comes back is simply taken as new.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import CallbackId
from core.jobs import insert_for
from core.models.chat import SeenCallback
from core.types import Platform

PURGE_ONE_IN = 16  # about one insert in 16 also deletes the expired rows (an indexed range delete)


def cache_key(platform: Platform, callback: CallbackId) -> str:
    """The stored key: fixed length, and one platform's ids never collide with another's."""
    return hashlib.sha256(f"{platform.value}\n{callback.key}".encode()).hexdigest()


def purges(key: str) -> bool:
    """Whether this insert also purges expired rows: decided by the key (uniformly spread), so no process
    needs a timer or a counter, and expired rows stay a small multiple of PURGE_ONE_IN."""
    return int(key[:8], 16) % PURGE_ONE_IN == 0


async def first_seen(session: AsyncSession, platform: Platform, callback: CallbackId, now: datetime) -> bool:
    """Record the callback's id; True the first time, False for a copy while the id is still valid.
    Not committed: the caller commits before acting, so a copy arriving meanwhile waits or sees it."""
    key = cache_key(platform, callback)
    table = SeenCallback.__table__  # type: ignore[attr-defined]
    stmt = insert_for(session)(table).values(key=key, expires_at=now + callback.valid_for)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"expires_at": stmt.excluded.expires_at},
                                      where=table.c.expires_at <= now).returning(table.c.key)
    fresh = (await session.execute(stmt)).first() is not None
    if purges(key):
        await session.execute(delete(table).where(table.c.expires_at <= now))
    return fresh


async def take_once(sessions: async_sessionmaker[AsyncSession], platform: Platform, callback: CallbackId | None,
                    now: datetime) -> bool:
    """True when this callback may act: it carries no id (nothing to replay) or its id is new; committed at once."""
    if callback is None:
        return True
    async with sessions() as session:
        fresh = await first_seen(session, platform, callback, now)
        await session.commit()
    return fresh
