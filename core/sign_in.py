"""Web sign-in credentials: a member's password and optional TOTP second factor (core/models/web.py).

Hashing runs in a thread (argon2 is slow on purpose). Every change of a credential raises the member's
epoch, which ends the member's other web sessions (bot/web/auth.py compares it on every request).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import passwords, totp
from core.crypto import seal, unseal
from core.errors import InvalidInput, NotFound
from core.models import Member
from core.models.web import MemberLogin


async def login_of(session: AsyncSession, member_id: int) -> MemberLogin | None:
    return await session.get(MemberLogin, member_id)


async def _login_row(session: AsyncSession, member_id: int, now: datetime) -> MemberLogin:
    if await session.get(Member, member_id) is None:
        raise NotFound(f"member {member_id} does not exist")
    row = await login_of(session, member_id)
    if row is None:
        row = MemberLogin(member_id=member_id, updated_at=now)
        session.add(row)
    return row


async def set_password(session: AsyncSession, member_id: int, password: str, now: datetime) -> MemberLogin:
    """Give the member a new password (the caller commits). The member's other web sessions end."""
    problem = passwords.check_policy(password)
    if problem:
        raise InvalidInput(f"password: {problem}")
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    row = await _login_row(session, member_id, now)
    row.password_hash, row.password_set_at, row.updated_at = hashed, now, now
    row.epoch += 1
    return row


async def member_by_email(session: AsyncSession, email: str) -> Member | None:
    """The member with this e-mail, compared without case (the oldest, should two share one)."""
    stmt = select(Member).where(func.lower(Member.email) == email.strip().lower()).order_by(Member.id).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def check_password(session: AsyncSession, email: str, password: str) -> tuple[Member, MemberLogin] | None:
    """The member and their sign-in row when `password` is theirs; None otherwise, after the same work."""
    member = await member_by_email(session, email) if email.strip() else None
    row = await login_of(session, member.id) if member is not None else None
    stored = row.password_hash if row is not None else None
    if not await asyncio.to_thread(passwords.verify, stored, password[:passwords.MAX_LENGTH]):
        return None
    assert member is not None and row is not None and stored is not None
    if passwords.needs_rehash(stored):
        row.password_hash = await asyncio.to_thread(passwords.hash_password, password)
    return member, row


async def check_password_of(row: MemberLogin, password: str) -> bool:
    """Whether `password` is the member's current one (to confirm a change of credentials)."""
    return await asyncio.to_thread(passwords.verify, row.password_hash, password[:passwords.MAX_LENGTH])


def totp_secret(row: MemberLogin, secret_key: str) -> str | None:
    """The member's TOTP secret, or None when they have no second factor."""
    return unseal(secret_key, row.totp_sealed)["totp"] if row.totp_sealed else None


def check_totp(row: MemberLogin, secret_key: str, code: str, now: datetime) -> bool:
    """Whether `code` is the member's current one and unused; an accepted code is used up (the caller
    commits)."""
    secret = totp_secret(row, secret_key)
    step = totp.matching_step(secret, code, now, row.totp_last_step) if secret else None
    if step is None:
        return False
    row.totp_last_step = step
    return True


async def enable_totp(session: AsyncSession, member_id: int, secret_key: str, secret: str, code: str,
                      now: datetime) -> MemberLogin:
    """Turn the second factor on once the member proved their app shows `code` for `secret`."""
    row = await _login_row(session, member_id, now)
    if row.password_hash is None:
        raise InvalidInput("set a password before adding a second factor")
    step = totp.matching_step(secret, code, now, 0)
    if step is None:
        raise InvalidInput("code: that is not the code your app shows now; check the key and the phone's clock")
    row.totp_sealed, row.totp_last_step, row.updated_at = seal(secret_key, {"totp": secret}), step, now
    row.epoch += 1
    return row


async def disable_totp(session: AsyncSession, member_id: int, now: datetime) -> None:
    row = await login_of(session, member_id)
    if row is not None and row.totp_sealed:
        row.totp_sealed, row.totp_last_step, row.updated_at = None, 0, now
        row.epoch += 1
