"""Which OpenID Connect provider single sign-on uses now: the one an admin stored through the Open API
(table sso_provider) wins over VIGIL_OIDC_*; without either, single sign-on is off.

Read on every sign-in request, so a provider set or removed by API takes effect in every web process at once,
without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from core.crypto import seal, unseal
from core.errors import InvalidInput
from core.models.sso import SsoProvider
from core.oidc import issuer_problem
from core.settings import Settings
from core.types import Role

ROW_ID = 1
Source = Literal["api", "env", "none"]


@dataclass(frozen=True)
class OidcConfig:
    """The provider in effect. `version` changes whenever the stored row changes (its updated_at), so caches
    of the provider's documents keyed by it follow a change."""

    source: Source
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    name: str
    auto_provision_role: str  # empty: no auto-provisioning
    version: str = ""


def from_settings(settings: Settings) -> OidcConfig | None:
    if not settings.oidc_issuer:
        return None
    return OidcConfig("env", settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
                      settings.oidc_scopes, settings.oidc_name, settings.oidc_auto_provision_role)


def effective_secret(row: SsoProvider, secret_key: str) -> str:
    """The stored client secret. A row sealed under another VIGIL_SECRET_KEY raises ValueError: single sign-on
    is then broken, and says so, rather than silently falling back to the environment's provider."""
    return str(unseal(secret_key, row.client_secret).get("client_secret", ""))


def _from_row(row: SsoProvider, secret_key: str) -> OidcConfig:
    secret = effective_secret(row, secret_key)
    return OidcConfig("api", row.issuer, row.client_id, secret, row.scopes, row.name,
                      row.default_role if row.auto_provision else "",
                      row.updated_at.isoformat() if row.updated_at else "")


async def stored(session: AsyncSession) -> SsoProvider | None:
    return await session.get(SsoProvider, ROW_ID)


async def effective(session: AsyncSession, settings: Settings) -> OidcConfig | None:
    """The provider in effect, or None when single sign-on is off. ValueError when the stored client secret
    cannot be decrypted with the current VIGIL_SECRET_KEY."""
    row = await stored(session)
    return _from_row(row, settings.secret_key) if row is not None else from_settings(settings)


@dataclass(frozen=True)
class Change:
    """What an admin asks to store; `client_secret` None keeps the stored one."""

    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    name: str
    auto_provision: bool
    default_role: str


def problem(change: Change, stored_row: SsoProvider | None) -> tuple[str, str] | None:
    """The first field that cannot be stored and why, or None. Pure."""
    issuer = change.issuer.strip()
    said = issuer_problem(issuer)
    if said:
        return "issuer", said
    if not change.client_id.strip():
        return "client_id", "must not be empty"
    if "openid" not in change.scopes.split():
        return "scopes", "must include 'openid'"
    if change.default_role not in {r.value for r in Role}:
        return "default_role", "must be observer, responder or admin"
    if change.client_secret is None:
        if stored_row is None:
            return "client_secret", "is required: no client secret is stored yet"
        # The secret belongs to one client at one provider: a new client is not given the old one's secret.
        if (stored_row.issuer, stored_row.client_id) != (issuer.rstrip("/"), change.client_id.strip()):
            return "client_secret", "is required when the issuer or client_id changes"
    elif not change.client_secret:
        return "client_secret", "must not be empty (leave it out to keep the stored one)"
    return None


async def store(session: AsyncSession, change: Change, secret_key: str, now: datetime) -> SsoProvider:
    """Store the provider (InvalidInput naming the field, nothing changed); the caller commits."""
    row = await stored(session)
    found = problem(change, row)
    if found:
        raise InvalidInput(f"{found[0]}: {found[1]}")
    if change.client_secret is not None:
        try:
            sealed = seal(secret_key, {"client_secret": change.client_secret})
        except ValueError as exc:
            raise InvalidInput(f"client_secret: {exc}") from None
    else:
        sealed = row.client_secret  # type: ignore[union-attr]  # problem() made sure there is a row
    if row is None:
        row = SsoProvider(id=ROW_ID, issuer="", client_id="", client_secret="", scopes="", name="",
                          default_role="")
        session.add(row)
    row.issuer, row.client_id, row.client_secret = change.issuer.strip().rstrip("/"), change.client_id.strip(), sealed
    row.scopes, row.name = " ".join(change.scopes.split()), change.name.strip()
    row.auto_provision, row.default_role, row.updated_at = change.auto_provision, change.default_role, now
    return row


async def remove(session: AsyncSession) -> None:
    """Forget the stored provider: VIGIL_OIDC_* (if set) is in effect again. The caller commits."""
    row = await stored(session)
    if row is not None:
        await session.delete(row)
