"""Single sign-on: the identities members signed in with at an OpenID Connect provider.

An identity is the provider's issuer and its subject (`sub`), which the provider never reassigns; the e-mail
only matches a member the first time. When the member is removed the row stays with no member, so that
identity cannot sign in again, nor come back through auto-provisioning, until an admin adds a member with
that e-mail again (core/sso.py).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import time_col


class SsoIdentity(SQLModel, table=True):
    """One account at one OpenID Connect provider, linked to the member it signs in as."""

    __tablename__ = "sso_identity"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject", name="uq_sso_identity_issuer_subject"),)
    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(max_length=500)
    subject: str = Field(max_length=255)  # OpenID Connect Core 2: at most 255 ASCII characters
    member_id: int | None = Field(default=None, sa_column=sa.Column(
        sa.Integer, sa.ForeignKey("member.id", ondelete="SET NULL"), nullable=True, index=True))
    email: str | None = Field(default=None, max_length=254)  # as last seen at the provider; never matched again
    created_at: datetime | None = time_col()
    last_sign_in_at: datetime | None = time_col()


class SsoProvider(SQLModel, table=True):
    """The OpenID Connect provider set through the Open API (PUT /sso/oidc). At most one row (id 1); while it
    exists it wins over VIGIL_OIDC_* (core/sso_provider.py). The client secret is sealed with VIGIL_SECRET_KEY
    (core.crypto), like bot secrets and app credentials."""

    __tablename__ = "sso_provider"
    __table_args__ = (sa.CheckConstraint("id = 1", name="ck_sso_provider_one_row"),)
    id: int = Field(default=1, primary_key=True)
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=255)
    client_secret: str = Field(sa_column=sa.Column(sa.Text, nullable=False))  # sealed: {"client_secret": ...}
    scopes: str = Field(max_length=500)
    name: str = Field(max_length=60)  # the sign-in button's "Sign in with <name>"
    auto_provision: bool = False
    default_role: str = Field(max_length=20)  # the role of an auto-provisioned member
    updated_at: datetime | None = time_col()
