"""/api/v1/members and /api/v1/teams."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, EmailStr, Field, StringConstraints, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.api.common import get_or_404, paged, patch_changes, require_ids, ts
from bot.api.framework import Call, Page, endpoint
from bot.keys import SETTINGS
from bot.media.codes import code_key, send_new_code
from core import contact_codes, passwords, sign_in
from core.errors import Conflict, InvalidInput, PermissionDenied
from core.models import Member, Team
from core.notify import DEFAULT_FALLBACK, Preferences, check_media
from core.types import Role
from core.zones import check_zone

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 \-]{3,30}$")]


class MemberIn(BaseModel):
    name: Name
    email: EmailStr | None = None
    phone: Phone | None = None
    role: Role = Role.RESPONDER
    time_zone: str = "UTC"
    preferences: Preferences = Field(default_factory=Preferences, description="media per severity")
    fallback: list[str] = Field(default_factory=lambda: list(DEFAULT_FALLBACK),
                                description="media tried in order when one fails")

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, v: list[str]) -> list[str]:
        return check_media(v)


class MemberPatch(BaseModel):
    name: Name | None = None
    email: EmailStr | None = None
    phone: Phone | None = None
    role: Role | None = None
    time_zone: str | None = None
    preferences: Preferences | None = None
    fallback: list[str] | None = None

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else check_media(v)


class MemberOut(BaseModel):
    member_id: int
    name: str
    email: str | None
    phone: str | None
    role: Role
    time_zone: str
    preferences: Preferences
    fallback: list[str]
    created_at: int
    updated_at: int


def member_out(m: Member) -> dict:
    return {"member_id": m.id, "name": m.name, "email": m.email, "phone": m.phone, "role": m.role,
            "time_zone": m.time_zone, "preferences": Preferences.model_validate(m.preferences or {}).model_dump(),
            "fallback": list(m.fallback or DEFAULT_FALLBACK), "created_at": ts(m.created_at), "updated_at": ts(m.updated_at)}


@endpoint("POST", "/members", body=MemberIn, response=MemberOut, summary="Create a member", tag="members",
          need="admin", status=201)
async def create_member(c: Call) -> dict:
    check_zone(c.body.time_zone, "time_zone")
    m = Member(**c.body.model_dump(mode="json"), created_at=c.now, updated_at=c.now)
    c.session.add(m)
    await c.session.commit()
    return member_out(m)


@endpoint("GET", "/members", query=Page, response=MemberOut, paged=True, summary="List members", tag="members")
async def list_members(c: Call) -> dict:
    return await paged(c.session, select(Member).order_by(Member.id), c.query, member_out)


@endpoint("GET", "/members/{id}", response=MemberOut, summary="Get a member", tag="members")
async def get_member(c: Call) -> dict:
    return member_out(await get_or_404(c.session, Member, c.path_int("id"), "member"))


async def _self_or_admin(c: Call, what: str) -> Member:
    """The member named in the path, when the caller is that member or an admin (else 403)."""
    member = await get_or_404(c.session, Member, c.path_int("id"), "member")
    if c.principal.role is not Role.ADMIN and c.principal.member_id != member.id:
        raise PermissionDenied(f"only the member themself or an admin {what}")
    return member


@endpoint("PATCH", "/members/{id}", body=MemberPatch, response=MemberOut, summary="Update a member",
          tag="members", need="act")
async def patch_member(c: Call) -> dict:
    """An admin changes any member; a responder changes their own contacts, notification preferences, name
    and time zone (self-service), never their role. A changed e-mail address or phone number is unverified
    until the member enters the code sent to it (POST /members/{id}/contacts/{kind}/code, then .../verify)."""
    m = await _self_or_admin(c, "changes a member")
    changes = patch_changes(c.body, ("email", "phone"), mode="json")
    if c.principal.role is not Role.ADMIN:
        if "role" in changes and changes["role"] != m.role:
            raise PermissionDenied("role: a member cannot change their own role; an admin can")
        if changes.get("email") and changes["email"].lower() != (m.email or "").lower():
            await contact_codes.check_email_free(c.session, m.id, changes["email"])
    if changes.get("time_zone"):
        check_zone(changes["time_zone"], "time_zone")
    for k, v in changes.items():
        setattr(m, k, v)
    m.updated_at = c.now
    await c.session.commit()
    return member_out(m)


@endpoint("DELETE", "/members/{id}", summary="Delete a member", tag="members", need="admin")
async def delete_member(c: Call) -> dict:
    m = await get_or_404(c.session, Member, c.path_int("id"), "member")
    member_id = m.id  # after a failed flush the row is expired and cannot be read again
    await c.session.delete(m)
    try:
        await c.session.commit()
    except IntegrityError:
        raise Conflict(f"member {member_id} is still referenced (API tokens, mapping-table rows or pages "
                       f"sent to them); remove those first") from None
    return {}


class ContactOut(BaseModel):
    kind: str = Field(description="email or phone")
    value: str | None
    verified: bool = Field(description="whether the member proved, by a code sent to it, that this value reaches "
                           "them; unverified contacts are still paged (a page is never skipped for it)")
    code_out: bool = Field(description="a code sent to this value can still be entered")
    code_expires_at: int = Field(description="when the code out expires (Unix seconds, 0 without one)")


def _contacts_out(statuses: dict[str, contact_codes.ContactStatus]) -> dict:
    items = [{"kind": s.kind, "value": s.value, "verified": s.verified, "code_out": s.code_out,
              "code_expires_at": ts(s.expires_at) if s.code_out else 0} for s in statuses.values()]
    return {"items": items, "total": len(items), "has_next_page": False}


@endpoint("GET", "/members/{id}/contacts", response=ContactOut, paged=True, tag="members",
          summary="A member's contact methods and whether each is verified (the member or an admin)")
async def list_contacts(c: Call) -> dict:
    member = await _self_or_admin(c, "reads a member's contact verification")
    return _contacts_out(await contact_codes.status_of(c.session, member, c.now))


async def _own(c: Call) -> Member:
    member = await get_or_404(c.session, Member, c.path_int("id"), "member")
    if c.principal.member_id != member.id:
        # The code proves that whoever enters it reads that inbox or phone: only the member can prove it.
        raise PermissionDenied("only the member themself verifies their contacts (with a token of their own)")
    return member


class CodeSent(BaseModel):
    kind: str
    sent_to: str
    expires_at: int


@endpoint("POST", "/members/{id}/contacts/{kind}/code", response=CodeSent, tag="members",
          path_enums={"kind": contact_codes.KINDS}, errors=(400, 401, 403, 404, 429),
          summary="Send a six-digit code to the member's e-mail address (email medium) or phone (SMS medium)")
async def send_contact_code(c: Call) -> dict:
    """The member's own token only. A code lives 10 minutes and works once; a new one replaces it. At most
    one a minute and five an hour per contact (429 beyond)."""
    member = await _own(c)
    kind = c.request.match_info["kind"]
    sent_to = await send_new_code(c.request.app, c.session, member, kind, c.now)
    return {"kind": kind, "sent_to": sent_to, "expires_at": ts(c.now + contact_codes.LIFETIME)}


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=20, description="the six digits received")


@endpoint("POST", "/members/{id}/contacts/{kind}/verify", body=CodeIn, response=ContactOut, tag="members",
          path_enums={"kind": contact_codes.KINDS}, summary="Verify a contact with the code sent to it")
async def verify_contact(c: Call) -> dict:
    """The member's own token only. Five wrong codes end the code; a used or expired code is refused."""
    member = await _own(c)
    kind = c.request.match_info["kind"]
    verdict = await contact_codes.confirm(c.session, member, kind, c.body.code, code_key(c.request.app[SETTINGS]),
                                          c.now)
    left = await contact_codes.attempts_left(c.session, member.id, kind)
    await c.session.commit()  # a wrong code stays counted
    if verdict is not contact_codes.Verdict.VERIFIED:
        raise InvalidInput(f"code: {contact_codes.explain(verdict, kind, left)}")
    return _contacts_out(await contact_codes.status_of(c.session, member, c.now))["items"][
        contact_codes.KINDS.index(kind)]


class PasswordIn(BaseModel):
    password: str = Field(min_length=passwords.MIN_LENGTH, max_length=passwords.MAX_LENGTH,
                          description="the member's new web sign-in password (stored as an argon2id hash)")


@endpoint("PUT", "/members/{id}/password", body=PasswordIn, summary="Set a member's web sign-in password",
          tag="members", need="admin")
async def set_member_password(c: Call) -> dict:
    """An admin gives a member an initial (or replacement) password; the member's web sessions end."""
    await get_or_404(c.session, Member, c.path_int("id"), "member")
    await sign_in.set_password(c.session, c.path_int("id"), c.body.password, c.now)
    await c.session.commit()
    return {}


class TeamIn(BaseModel):
    name: Name
    description: str = Field(default="", max_length=500)
    member_ids: list[int] = Field(default_factory=list, max_length=1000)


class TeamPatch(BaseModel):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=500)
    member_ids: list[int] | None = Field(default=None, max_length=1000)


class TeamOut(BaseModel):
    team_id: int
    name: str
    description: str
    member_ids: list[int]
    created_at: int
    updated_at: int


def team_out(t: Team) -> dict:
    return {"team_id": t.id, "name": t.name, "description": t.description, "member_ids": list(t.member_ids),
            "created_at": ts(t.created_at), "updated_at": ts(t.updated_at)}


async def _unique_team(c: Call, name: str, exclude: int | None = None) -> None:
    row = (await c.session.execute(select(Team.id).where(Team.name == name))).scalar_one_or_none()
    if row is not None and row != exclude:
        raise Conflict(f"name: a team named {name!r} already exists")


@endpoint("POST", "/teams", body=TeamIn, response=TeamOut, summary="Create a team", tag="teams", need="admin",
          status=201)
async def create_team(c: Call) -> dict:
    await require_ids(c.session, Member, c.body.member_ids, "member_ids")
    await _unique_team(c, c.body.name)
    t = Team(name=c.body.name, description=c.body.description, member_ids=list(dict.fromkeys(c.body.member_ids)),
             created_at=c.now, updated_at=c.now)
    c.session.add(t)
    await c.session.commit()
    return team_out(t)


@endpoint("GET", "/teams", query=Page, response=TeamOut, paged=True, summary="List teams", tag="teams")
async def list_teams(c: Call) -> dict:
    return await paged(c.session, select(Team).order_by(Team.id), c.query, team_out)


@endpoint("GET", "/teams/{id}", response=TeamOut, summary="Get a team", tag="teams")
async def get_team(c: Call) -> dict:
    return team_out(await get_or_404(c.session, Team, c.path_int("id"), "team"))


@endpoint("PATCH", "/teams/{id}", body=TeamPatch, response=TeamOut, summary="Update a team", tag="teams",
          need="admin")
async def patch_team(c: Call) -> dict:
    t = await get_or_404(c.session, Team, c.path_int("id"), "team")
    changes = patch_changes(c.body)
    if changes.get("member_ids") is not None:
        await require_ids(c.session, Member, changes["member_ids"], "member_ids")
        changes["member_ids"] = list(dict.fromkeys(changes["member_ids"]))
    if changes.get("name"):
        await _unique_team(c, changes["name"], exclude=t.id)
    for k, v in changes.items():
        setattr(t, k, v)
    t.updated_at = c.now
    await c.session.commit()
    return team_out(t)


@endpoint("DELETE", "/teams/{id}", summary="Delete a team", tag="teams", need="admin")
async def delete_team(c: Call) -> dict:
    t = await get_or_404(c.session, Team, c.path_int("id"), "team")
    await c.session.delete(t)
    await c.session.commit()
    return {}

