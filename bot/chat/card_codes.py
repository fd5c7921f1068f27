"""Single-use card update codes, kept with the card reference so any process can update the card.

WeCom updates a template card only by spending a `response_code`: message/send returns one and every
click callback carries a fresh one, each valid once for 72 hours. They live in CardRef.extra
(`update_codes`, see bot.adapters.base), never in adapter memory, so a restarted web process, or a
worker that never saw the click, can still update the card:

- the send-time code is in the extra the adapter returns, recorded with the CardRef (bot/chat/im_sender.py);
- a click's code is added to the clicked card's CardRef inside the click's transaction (`remember_click`),
  so it is there before the domain event that updates the card can run;
- card_sync claims a code before each update (`claim`): it is removed and committed before the platform
  sees it, so no two updates (tasks or processes) ever send the same code; a retryable failure gives it
  back (`give_back`), because the platform did not take it.

Each read-modify-write first writes the rows it is about to change (`_lock`), which takes the row lock on
PostgreSQL and the write lock on SQLite, so a claim and a click never both start from the same codes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import ActionEvent, update_codes, with_update_codes
from core.models import CardRef

Code = tuple[str, float]  # (code, issued at in epoch seconds)


async def remember_click(session: AsyncSession, event: ActionEvent, incident_id: int, now: datetime) -> bool:
    """Add the code a click carried (`response_code` in its context) to the clicked card's CardRef: the
    incident's card in that user's chat whose `task_id` the click names. Not committed: the caller commits it
    with the click's action. True when a card took it."""
    code = str(event.context.get("response_code") or "")
    if not code:
        return False
    task_id = str(event.context.get("task_id") or "")
    where = (
        CardRef.incident_id == incident_id,
        CardRef.platform == event.platform.value,
        CardRef.conversation_id == event.im_user_id,
    )
    await _lock(session, *where)
    refs = (
        (
            await session.execute(
                select(CardRef).where(*where).order_by(CardRef.id).execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )
    took = False
    for ref in refs:
        if task_id and str(ref.extra.get("task_id") or "") != task_id:
            continue
        ref.extra = with_update_codes(ref.extra, [(code, now.timestamp()), *update_codes(ref.extra)])
        took = True
    return took


async def claim(sessions: async_sessionmaker[AsyncSession], ref_id: int) -> Code | None:
    """Take the newest code of the card for one update, committed before it is used; None if it has none."""
    async with sessions() as session:
        await _lock(session, CardRef.id == ref_id)
        ref = await session.get(CardRef, ref_id, populate_existing=True)
        codes = update_codes(ref.extra) if ref is not None else []
        if ref is None or not codes:
            await session.rollback()
            return None
        ref.extra = with_update_codes(ref.extra, codes[1:])
        await session.commit()
        return codes[0]


async def give_back(sessions: async_sessionmaker[AsyncSession], ref_id: int, code: Code) -> None:
    """Return a claimed code the platform did not take (the update failed before it could)."""
    async with sessions() as session:
        await _lock(session, CardRef.id == ref_id)
        ref = await session.get(CardRef, ref_id, populate_existing=True)
        if ref is None:
            await session.rollback()
            return
        ref.extra = with_update_codes(ref.extra, [*update_codes(ref.extra), code])
        await session.commit()


async def _lock(session: AsyncSession, *where: Any) -> None:
    # A no-op write: PostgreSQL locks the rows (a concurrent claim waits, then reads what the other committed);
    # SQLite takes its write lock before reading, where a plain SELECT would read without any.
    await session.execute(
        update(CardRef).where(*where).values(extra=CardRef.extra).execution_options(synchronize_session=False)
    )
