"""Rate limits on failed web sign-ins, per account and per client address, over a sliding window.

Failures are rows in the database (core/models/web.py), so every `vigil serve` process counts the same
ones. The account key is the e-mail as typed, whether or not a member has it, so a refusal does not tell
which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models.web import SignInFailure


@dataclass(frozen=True)
class Limits:
    per_account: int = 5  # guesses at one password
    per_address: int = 30  # one address trying many accounts (an office behind one NAT still gets by)
    window: timedelta = timedelta(minutes=15)


def account_key(email: str) -> str:
    return "account:" + email.strip().lower()[:300]


def address_key(address: str) -> str:
    return "address:" + address[:300]


def refused(counts: dict[str, int], account: str, address: str, limits: Limits) -> bool:
    """Whether a sign-in must be refused before its password is even checked."""
    return counts.get(account, 0) >= limits.per_account or counts.get(address, 0) >= limits.per_address


async def recent_failures(session: AsyncSession, keys: list[str], now: datetime,
                          limits: Limits) -> dict[str, int]:
    stmt = (select(SignInFailure.key, func.count()).where(SignInFailure.key.in_(keys),
                                                          SignInFailure.at > now - limits.window)
            .group_by(SignInFailure.key))
    return {k: n for k, n in (await session.execute(stmt)).all()}


async def note_failure(session: AsyncSession, keys: list[str], now: datetime, limits: Limits) -> None:
    """Count one failure against each key (the caller commits); failures past the window are forgotten."""
    await session.execute(delete(SignInFailure).where(SignInFailure.at <= now - limits.window))
    session.add_all(SignInFailure(key=k, at=now) for k in keys)


async def forget_account(session: AsyncSession, account: str) -> None:
    """A successful sign-in clears the account's count (not the address's)."""
    await session.execute(delete(SignInFailure).where(SignInFailure.key == account))
