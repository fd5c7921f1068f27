"""Helpers shared by the resource modules: timestamps, lookups, simple CRUD queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from bot.api.framework import Page, fits_int64, page_of
from core.errors import NotFound

T = TypeVar("T", bound=SQLModel)


def ts(value: datetime | None) -> int:
    """Unix seconds, 0 when unset (Flashduty's convention)."""
    return int(value.timestamp()) if value else 0


async def get_or_404(session: AsyncSession, model: type[T], id_: int, what: str) -> T:
    # A larger id names nothing (and SQLite cannot even bind it).
    row = await session.get(model, id_) if fits_int64(id_) else None
    if row is None:
        raise NotFound(f"{what} {id_} not found")
    return row


async def require_ids(session: AsyncSession, model: type[SQLModel], ids: list[int], field: str) -> None:
    """Raise NotFound naming `field` if any referenced id does not exist."""
    if not ids:
        return
    storable = [i for i in ids if fits_int64(i)]
    found = set((await session.execute(select(model.id).where(model.id.in_(storable))))  # type: ignore[attr-defined]
                .scalars()) if storable else set()
    for i in ids:
        if i not in found:
            raise NotFound(f"{field}: no {model.__name__.lower()} with id {i}")


async def paged(session: AsyncSession, stmt: Any, page: Page, render: Any) -> dict[str, Any]:
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = (await session.execute(stmt.offset(page.offset).limit(page.limit))).scalars()
    return page_of([render(r) for r in rows], total, page)


def patch_changes(body: Any, nullable: tuple[str, ...] = (), *, mode: str = "python") -> dict[str, Any]:
    """The fields a PATCH sets. `null` clears a nullable field and leaves any other field unchanged."""
    return {k: v for k, v in body.model_dump(mode=mode, exclude_unset=True).items() if v is not None or k in nullable}
