"""/api/v1/tokens: Open API bearer tokens. The plaintext is shown once; only its hash is stored."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from core.errors import InvalidInput
from core.models import ApiToken, Member
from core.secrets import digest, new_token
from core.types import Role, lower_role


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    member_id: int | None = Field(default=None, description="the member this token acts as")
    role: Role | None = Field(default=None, description="defaults to the member's role, or admin without one; "
                              "never above the member's role, which also caps the token on every request")


class TokenOut(BaseModel):
    token_id: int
    name: str
    member_id: int | None
    role: Role
    created_at: int


class TokenCreated(TokenOut):
    token: str = Field(description="shown only in this response")


def token_out(t: ApiToken) -> dict:
    return {"token_id": t.id, "name": t.name, "member_id": t.member_id, "role": t.role,
            "created_at": ts(t.created_at)}


@endpoint("POST", "/tokens", body=TokenIn, response=TokenCreated, summary="Create an API token", tag="tokens",
          need="admin", status=201)
async def create_token(c: Call) -> dict:
    role = c.body.role
    if c.body.member_id is not None:
        member = await c.session.get(Member, c.body.member_id)
        if member is None:
            raise InvalidInput(f"member_id: no member with id {c.body.member_id}")
        if role is not None and lower_role(role, Role(member.role)) is not role:
            # it would act with the member's role anyway (framework.authenticate); say so now, not later
            raise InvalidInput(f"role: {role.value} is above the role of member {member.id} ({member.role}); "
                               f"a member's token never has more power than the member")
        role = role or Role(member.role)
    plain = new_token()
    t = ApiToken(name=c.body.name, token_hash=digest(plain), member_id=c.body.member_id,
                 role=(role or Role.ADMIN).value, created_at=c.now)
    c.session.add(t)
    await c.session.commit()
    return {**token_out(t), "token": plain}


@endpoint("GET", "/tokens", query=Page, response=TokenOut, paged=True, summary="List API tokens", tag="tokens",
          need="admin")
async def list_tokens(c: Call) -> dict:
    return await paged(c.session, select(ApiToken).order_by(ApiToken.id), c.query, token_out)


@endpoint("DELETE", "/tokens/{id}", summary="Revoke an API token", tag="tokens", need="admin")
async def delete_token(c: Call) -> dict:
    t = await get_or_404(c.session, ApiToken, c.path_int("id"), "token")
    await c.session.delete(t)
    await c.session.commit()
    return {}
