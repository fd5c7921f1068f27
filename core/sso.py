"""Which member an OpenID Connect identity signs in as (core/oidc.py proved the identity).

An identity the provider vouched for before keeps its member, whatever its e-mail says now; a new one is
matched by its e-mail only when the provider says the e-mail is verified (anyone can type any address into
an unverified profile); with no such member, auto-provisioning (off unless configured) makes one. A member
removed by an admin stays out: their identity row is kept without a member (core/models/sso.py) and is not
auto-provisioned again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Member
from core.models.sso import SsoIdentity
from core.oidc import Identity
from core.sign_in import member_by_email

UNVERIFIED = ("The sign-in provider did not say your e-mail address is verified, so Vigil cannot tell which "
              "member you are. Verify your e-mail at the provider, or ask an admin.")
NO_EMAIL = ("The sign-in provider did not share your e-mail address, so Vigil cannot tell which member you are. "
            "Ask an admin to let Vigil see the e-mail (the 'email' scope).")
NO_MEMBER = ("There is no Vigil member with your e-mail address {email}. Ask an admin to add you, or sign in "
             "with the account you use in Vigil.")
REMOVED = "Your Vigil membership was removed. Ask an admin to add you again."


class Refused(Exception):
    """Nobody is signed in; the message tells the person why and what to do."""


@dataclass(frozen=True)
class Decision:
    """member_id: sign in as that member; provision: make a member with `role` first; refusal: sign nobody in."""

    member_id: int | None = None
    provision_role: str | None = None
    refusal: str | None = None


def decide(identity: Identity, known: bool, linked_member: int | None, email_member: int | None,
           auto_role: str) -> Decision:
    """The pure rule. `known`: this identity signed in before; `linked_member`: the member it is linked to
    (None once that member was removed); `email_member`: the member with the identity's verified e-mail."""
    if linked_member is not None:
        return Decision(member_id=linked_member)
    if identity.email is None and not known:
        return Decision(refusal=NO_EMAIL)
    if not identity.email_verified:
        return Decision(refusal=REMOVED if known else UNVERIFIED)
    if email_member is not None:
        # For a known identity this is an admin adding the removed member back: the link follows them.
        return Decision(member_id=email_member)
    if known:
        return Decision(refusal=REMOVED)
    if auto_role:
        return Decision(provision_role=auto_role)
    return Decision(refusal=NO_MEMBER.format(email=identity.email))


async def member_for(session: AsyncSession, identity: Identity, auto_role: str, now: datetime) -> Member:
    """The member `identity` signs in as, linking (or provisioning) on the way; Refused otherwise. The caller
    commits."""
    stmt = select(SsoIdentity).where(SsoIdentity.issuer == identity.issuer, SsoIdentity.subject == identity.subject)
    row = (await session.execute(stmt)).scalar_one_or_none()
    by_email = await member_by_email(session, identity.email) if identity.email and identity.email_verified else None
    decision = decide(identity, row is not None, row.member_id if row else None,
                      by_email.id if by_email else None, auto_role)
    if decision.refusal:
        raise Refused(decision.refusal)
    if decision.provision_role:
        member = Member(name=identity.name, email=identity.email, role=decision.provision_role,
                        created_at=now, updated_at=now)
        session.add(member)
        await session.flush()
    else:
        member = await session.get(Member, decision.member_id)
        if member is None:  # removed between the two reads
            raise Refused(REMOVED)
    if row is None:
        row = SsoIdentity(issuer=identity.issuer, subject=identity.subject, created_at=now)
        session.add(row)
    row.member_id, row.email, row.last_sign_in_at = member.id, identity.email, now
    return member
