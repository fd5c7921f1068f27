"""/api/v1/tokens: Open API bearer tokens. The plaintext is shown once; only its hash is stored."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from core import api_tokens
from core.models import ApiToken
from core.types import Role


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
    t, plain = await api_tokens.create(c.session, c.body.name, c.body.member_id, c.body.role, c.now)
    await c.session.commit()
    return {**token_out(t), "token": plain}


@endpoint("GET", "/tokens", query=Page, response=TokenOut, paged=True, summary="List API tokens", tag="tokens",
          need="admin")
async def list_tokens(c: Call) -> dict:
    return await paged(c.session, select(ApiToken).order_by(ApiToken.id), c.query, token_out)


@endpoint("DELETE", "/tokens/{id}", summary="Revoke an API token", tag="tokens", need="admin")
async def delete_token(c: Call) -> dict:
    await api_tokens.revoke(c.session, await get_or_404(c.session, ApiToken, c.path_int("id"), "token"))
    await c.session.commit()
    return {}
