"""/api/v1/sso/oidc: the single sign-on provider (OpenID Connect), set by admins without a restart.

The stored provider wins over VIGIL_OIDC_*; DELETE returns to them (core/sso_provider.py). The client secret
is write-only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from bot.api.common import ts
from bot.api.framework import Call, endpoint
from bot.keys import SETTINGS
from core import sso_provider
from core.errors import Conflict
from core.types import Role


class SsoOidcIn(BaseModel):
    issuer: str = Field(min_length=1, max_length=500, description="the provider's issuer URL (https; http only for "
                        "localhost); Vigil reads its /.well-known/openid-configuration")
    client_id: str = Field(min_length=1, max_length=255, description="the client registered for Vigil; its "
                           "redirect URI is {VIGIL_BASE_URL}/login/sso/callback")
    client_secret: str | None = Field(default=None, min_length=1, max_length=1000, description="write-only; left "
                                      "out, the stored secret is kept (required when the issuer or client_id "
                                      "changes)")
    scopes: str = Field(default="openid email profile", min_length=1, max_length=500,
                        description="space-separated; must include openid")
    name: str = Field(default="single sign-on", min_length=1, max_length=60,
                      description="the sign-in button says 'Sign in with <name>'")
    auto_provision: bool = Field(default=False, description="make a member when someone with a verified e-mail "
                                 "no member has signs in")
    default_role: Role = Field(default=Role.OBSERVER, description="the role of an auto-provisioned member")


class SsoOidcOut(BaseModel):
    source: Literal["api", "env", "none"] = Field(description="where the provider in effect comes from: this API, "
                                                  "VIGIL_OIDC_* or nowhere (single sign-on off)")
    issuer: str
    client_id: str
    client_secret_set: bool = Field(description="a client secret is configured; its value is never returned")
    scopes: str
    name: str
    auto_provision: bool
    default_role: str
    problem: str = Field(description="why the provider in effect cannot be used, or empty")
    updated_at: int = Field(description="when it was set by API (Unix seconds); 0 for env or none")


async def _out(c: Call) -> dict:
    settings = c.request.app[SETTINGS]
    row = await sso_provider.stored(c.session)
    if row is not None:
        try:
            secret_set = bool(sso_provider.effective_secret(row, settings.secret_key))
            problem = ""
        except ValueError as exc:
            secret_set, problem = True, f"client_secret: {exc}"
        return {"source": "api", "issuer": row.issuer, "client_id": row.client_id, "client_secret_set": secret_set,
                "scopes": row.scopes, "name": row.name, "auto_provision": row.auto_provision,
                "default_role": row.default_role, "problem": problem, "updated_at": ts(row.updated_at)}
    env = sso_provider.from_settings(settings)
    if env is None:
        return {"source": "none", "issuer": "", "client_id": "", "client_secret_set": False,
                "scopes": settings.oidc_scopes, "name": settings.oidc_name, "auto_provision": False,
                "default_role": Role.OBSERVER.value, "problem": "", "updated_at": 0}
    return {"source": "env", "issuer": env.issuer, "client_id": env.client_id,
            "client_secret_set": bool(env.client_secret), "scopes": env.scopes, "name": env.name,
            "auto_provision": bool(env.auto_provision_role),
            "default_role": env.auto_provision_role or Role.OBSERVER.value, "problem": "", "updated_at": 0}


@endpoint("GET", "/sso/oidc", response=SsoOidcOut, need="admin", tag="sso",
          summary="The single sign-on provider in effect (the client secret is never returned)")
async def get_oidc(c: Call) -> dict:
    return await _out(c)


@endpoint("PUT", "/sso/oidc", body=SsoOidcIn, response=SsoOidcOut, need="admin", tag="sso",
          summary="Set the single sign-on provider; it wins over VIGIL_OIDC_* at once, without a restart")
async def put_oidc(c: Call) -> dict:
    b = c.body
    change = sso_provider.Change(b.issuer, b.client_id, b.client_secret, b.scopes, b.name, b.auto_provision,
                                 b.default_role.value)
    await sso_provider.store(c.session, change, c.request.app[SETTINGS].secret_key, c.now)
    try:
        await c.session.commit()
    except IntegrityError:  # another admin stored the first provider at the same moment
        raise Conflict("the provider was set by another request at the same time; read it and try again") from None
    return await _out(c)


@endpoint("DELETE", "/sso/oidc", response=SsoOidcOut, need="admin", tag="sso",
          summary="Remove the provider set by API: VIGIL_OIDC_* is in effect again (or single sign-on is off)")
async def delete_oidc(c: Call) -> dict:
    await sso_provider.remove(c.session)
    await c.session.commit()
    return await _out(c)
