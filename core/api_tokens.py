"""Open API bearer tokens: made, listed and revoked here for the Open API (/api/v1/tokens) and the personal
center alike. The plaintext is returned once, at creation; only its SHA-256 is stored (core/secrets.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput
from core.models import ApiToken, Member
from core.secrets import digest, new_token
from core.types import Role, lower_role


async def create(session: AsyncSession, name: str, member_id: int | None, role: Role | None,
                 now: datetime) -> tuple[ApiToken, str]:
    """A new token (flushed, not committed) and its plaintext. A member's token defaults to the member's
    role and may not ask for more; a token of no member defaults to admin."""
    if member_id is not None:
        member = await session.get(Member, member_id)
        if member is None:
            raise InvalidInput(f"member_id: no member with id {member_id}")
        if role is not None and lower_role(role, Role(member.role)) is not role:
            # it would act with the member's role anyway (bot/api/framework.authenticate); say so now, not later
            raise InvalidInput(f"role: {role.value} is above the role of member {member.id} ({member.role}); "
                               f"a member's token never has more power than the member")
        role = role or Role(member.role)
    plain = new_token()
    token = ApiToken(name=name, token_hash=digest(plain), member_id=member_id, role=(role or Role.ADMIN).value,
                     created_at=now)
    session.add(token)
    await session.flush()
    return token, plain


async def tokens_of(session: AsyncSession, member_id: int) -> list[ApiToken]:
    return list((await session.execute(
        select(ApiToken).where(ApiToken.member_id == member_id).order_by(ApiToken.id))).scalars())


async def revoke(session: AsyncSession, token: ApiToken) -> None:
    await session.delete(token)
    await session.flush()
