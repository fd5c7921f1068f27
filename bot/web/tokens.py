"""The personal center's API tokens: the member's own Open API tokens, made and revoked through the same
core.api_tokens as /api/v1/tokens. A token acts as its member with at most the member's role; its plaintext
is shown once, on the page that answers its creation, and only its hash is kept.

  POST /account/tokens                 create one (name, role up to the member's own)
  POST /account/tokens/{id}/revoke     revoke one of the member's own tokens
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import account, auth
from bot.web.render import redirect
from core import api_tokens
from core.clock import utcnow
from core.errors import InvalidInput
from core.models import ApiToken
from core.types import Role, lower_role

ROLES = (Role.OBSERVER, Role.RESPONDER, Role.ADMIN)
HINTS = {Role.OBSERVER: "read only", Role.RESPONDER: "read, and act on incidents", Role.ADMIN: "everything"}

account.DONE["token-revoked"] = ("tokens", "Token revoked: it no longer works.")


def roles_up_to(role: Role) -> list[Role]:
    """The roles a member may give their own token: their own and lower."""
    return [r for r in ROLES if lower_role(r, role) is r]


@account.section
async def context(_request: web.Request, db: AsyncSession, who: auth.Viewer) -> dict[str, Any]:
    return {"tokens": await api_tokens.tokens_of(db, who.member_id), "token_roles": roles_up_to(who.role),
            "role_hints": HINTS, "new_token": None}


@auth.members_only
async def create(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    form = await request.post()
    name = str(form.get("name", "")).strip()
    if not 1 <= len(name) <= 100:
        return await account.show(request, db, who, 400, error="Give the token a name (up to 100 characters).",
                                  at="tokens")
    try:
        role = Role(str(form.get("role", who.role.value)))
        token, plain = await api_tokens.create(db, name, who.member_id, role, utcnow())
    except (ValueError, InvalidInput):
        return await account.show(request, db, who, 400, at="tokens",
                                  error=f"A token can have your role ({who.role.value}) or a lower one.")
    await db.commit()
    # Answered here, not after a redirect: the plaintext must not travel in a URL or stay in the session.
    return await account.show(request, db, who, 201, new_token={"name": token.name, "role": token.role,
                                                                 "value": plain})


@auth.members_only
async def revoke(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
    token_id = int(request.match_info["id"])
    token = await db.get(ApiToken, token_id) if token_id < 2**63 else None
    if token is None or token.member_id != who.member_id:  # another member's token is not found, not forbidden
        return await account.show(request, db, who, 404, error="No such token of yours.", at="tokens")
    await api_tokens.revoke(db, token)
    await db.commit()
    return redirect("/account?done=token-revoked#tokens")


def setup(app: web.Application) -> None:
    app.router.add_post("/account/tokens", create)
    app.router.add_post(r"/account/tokens/{id:\d{1,19}}/revoke", revoke)
