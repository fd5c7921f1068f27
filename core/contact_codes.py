"""Contact methods verified by code: a member proves an e-mail address or phone number reaches them by entering
the six digits sent to it.

A contact is verified while the member's current value is the one last proven (`verified_value`): a change
by any path (the personal center, the Open API, an admin) leaves it unverified until a code sent to the new
value comes back. A code lives ten minutes, works once, allows five wrong entries, and is stored only as an
HMAC under a key the caller derives from VIGIL_SECRET_KEY. At most five codes go out per contact and hour,
one a minute, so a guesser gets at most 25 tries an hour at a million values.

Unverified contacts are still paged. Vigil's first promise is that a page is never silently lost: members
created through the Open API, a directory sync or before this feature have never verified anything, and
skipping their phone at 3 a.m. would lose exactly the pages that matter. A typo is the risk verification
guards against, so instead of skipping, the personal center and GET /members/{id}/contacts show an
unverified contact as such, and the member is asked to verify it (as PagerDuty warns about a contact method
it could not test). A failed send to a wrong number still falls back to the member's next medium.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, InvalidInput, VigilError
from core.models import Member
from core.models.personal import ContactVerification

KINDS = ("email", "phone")
MEDIUM = {"email": "email", "phone": "sms"}  # how a code reaches each kind of contact
WORDS = {"email": "e-mail address", "phone": "phone number"}
LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_AFTER = timedelta(seconds=60)
SENDS_PER_HOUR = 5
HOUR = timedelta(hours=1)


class TooManyCodes(VigilError):
    status = 429
    code = "TooManyRequests"


class Verdict(enum.Enum):
    VERIFIED = "verified"
    WRONG = "wrong"
    EXPIRED = "expired"
    NO_CODE = "no_code"  # none sent, already used, or sent to a value the contact no longer has
    LOCKED = "locked"  # too many wrong codes: only a new code helps


@dataclass(frozen=True)
class ContactStatus:
    kind: str
    value: str | None
    verified: bool
    code_out: bool  # a code for the current value can still be entered
    expires_at: datetime | None


def _same(kind: str, a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return a.strip().lower() == b.strip().lower() if kind == "email" else a.strip() == b.strip()


def value_of(member: Member, kind: str) -> str | None:
    return member.email if kind == "email" else member.phone


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def code_digest(key: bytes, member_id: int, kind: str, value: str, code: str) -> str:
    """The stored form of a code, bound to the member and the value it was sent to."""
    message = f"{member_id}\x00{kind}\x00{value.strip().lower()}\x00{code}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def normalised_code(given: str) -> str:
    """The six digits of what the member typed (spaces and dashes allowed), or InvalidInput."""
    digits = "".join(ch for ch in given if ch not in " -")
    if len(digits) != 6 or not digits.isascii() or not digits.isdigit():
        raise InvalidInput("code: enter the six digits of the code")
    return digits


def send_refusal(row: ContactVerification | None, now: datetime) -> str | None:
    """Why no code may be sent now (None: send). Pure."""
    if row is None:
        return None
    if row.last_sent_at is not None and now - row.last_sent_at < RESEND_AFTER:
        wait = int((RESEND_AFTER - (now - row.last_sent_at)).total_seconds()) + 1
        return f"a code was sent less than a minute ago; wait {wait} s before asking for another"
    if row.window_start is not None and now - row.window_start < HOUR and row.sends >= SENDS_PER_HOUR:
        return f"{SENDS_PER_HOUR} codes were sent in the last hour; try again later"
    return None


def judge(row: ContactVerification | None, current: str | None, now: datetime) -> Verdict | None:
    """Whether a code may still be checked against `row` for the contact's `current` value (None: check it).
    Pure; the attempt itself is counted atomically by `confirm`."""
    if row is None or row.code_hash is None or not _same(row.kind, row.pending_value, current):
        return Verdict.NO_CODE
    if row.code_expires_at is None or now >= row.code_expires_at:
        return Verdict.EXPIRED
    if row.attempts >= MAX_ATTEMPTS:
        return Verdict.LOCKED
    return None


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"kind: use one of {', '.join(KINDS)}, not {kind!r}")


async def _row(session: AsyncSession, member_id: int, kind: str) -> ContactVerification | None:
    return await session.get(ContactVerification, (member_id, kind))


async def status_of(session: AsyncSession, member: Member, now: datetime) -> dict[str, ContactStatus]:
    rows = {r.kind: r for r in (await session.execute(
        select(ContactVerification).where(ContactVerification.member_id == member.id))).scalars()}
    out = {}
    for kind in KINDS:
        value, row = value_of(member, kind), rows.get(kind)
        verified = row is not None and _same(kind, row.verified_value, value)
        out[kind] = ContactStatus(kind, value, verified, not verified and judge(row, value, now) is None,
                                  row.code_expires_at if row else None)
    return out


async def issue(session: AsyncSession, member: Member, kind: str, key: bytes, now: datetime) -> tuple[str, str]:
    """A new code for the member's current `kind` contact: (the value it must be sent to, the code). The
    previous code stops working. The caller commits, then sends."""
    check_kind(kind)
    value = value_of(member, kind)
    if not value:
        raise InvalidInput(f"{kind}: there is no {WORDS[kind]} to verify; add one first")
    row = await _row(session, member.id, kind)
    refusal = send_refusal(row, now)
    if refusal:
        raise TooManyCodes(f"{kind}: {refusal}")
    if row is None:
        row = ContactVerification(member_id=member.id, kind=kind)
        session.add(row)
    if row.window_start is None or now - row.window_start >= HOUR:
        row.window_start, row.sends = now, 0
    code = new_code()
    row.pending_value, row.code_hash = value, code_digest(key, member.id, kind, value, code)
    row.code_expires_at, row.attempts = now + LIFETIME, 0
    row.sends, row.last_sent_at = row.sends + 1, now
    await session.flush()
    return value, code


async def confirm(session: AsyncSession, member: Member, kind: str, given: str, key: bytes,
                  now: datetime) -> Verdict:
    """Check a code the member entered. Every well-formed try is counted before it is checked, in one
    conditional UPDATE, so parallel guesses cannot get past the limit. The caller commits whatever the
    verdict (a wrong try must stay counted) and tells the member."""
    check_kind(kind)
    code = normalised_code(given)
    value = value_of(member, kind)
    table = ContactVerification.__table__  # type: ignore[attr-defined]
    row = await _row(session, member.id, kind)
    verdict = judge(row, value, now)
    if verdict is not None:
        return verdict
    assert row is not None and value is not None
    counted = (await session.execute(
        update(table).where(table.c.member_id == member.id, table.c.kind == kind,
                            table.c.code_hash == row.code_hash, table.c.attempts < MAX_ATTEMPTS)
        .values(attempts=table.c.attempts + 1).returning(table.c.attempts))).scalar_one_or_none()
    await session.refresh(row)
    if counted is None:  # another try took the last attempt, or a new code replaced this one meanwhile
        return Verdict.LOCKED if row.code_hash is not None else Verdict.NO_CODE
    if not hmac.compare_digest(row.code_hash or "", code_digest(key, member.id, kind, value, code)):
        return Verdict.WRONG
    row.verified_value, row.verified_at = value, now
    row.pending_value = row.code_hash = row.code_expires_at = None  # a code works once
    row.attempts = 0
    await session.flush()
    return Verdict.VERIFIED


def explain(verdict: Verdict, kind: str, attempts_left: int | None = None) -> str:
    """What to tell the member about a verdict."""
    what = WORDS[kind]
    return {
        Verdict.VERIFIED: f"Your {what} is verified.",
        Verdict.WRONG: "That code is not right." + (f" {attempts_left} tries left." if attempts_left else ""),
        Verdict.EXPIRED: "That code has expired. Send a new one.",
        Verdict.NO_CODE: f"No code is out for this {what}. Send one first.",
        Verdict.LOCKED: "Too many wrong codes. Send a new one.",
    }[verdict]


async def attempts_left(session: AsyncSession, member_id: int, kind: str) -> int:
    row = await _row(session, member_id, kind)
    return max(MAX_ATTEMPTS - row.attempts, 0) if row is not None and row.code_hash else 0


async def check_email_free(session: AsyncSession, member_id: int, email: str) -> None:
    """A member may not take an address another member has: it is how that member signs in (by password and
    by single sign-on), and two members with one address would leave it to chance which one is meant."""
    other = (await session.execute(select(Member.id).where(
        func.lower(Member.email) == email.strip().lower(), Member.id != member_id).limit(1))).scalar_one_or_none()
    if other is not None:
        raise Conflict(f"email: {email} belongs to another member")
