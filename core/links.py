"""Incident links that sign their member in: no sign-in wall at 3 a.m. (issue 12).

A link sent *directly* to one member (their IM direct message, e-mail, SMS) may carry a token bound to that
member and that incident, valid for a day: `/incidents/{id}?t=<member>.<incident>.<expires>.<signature>`.
Opening it signs the browser in as that member with the member's role *at that moment* (the token carries
no role). Group-chat posts never carry one: everybody in the group could use it.

Pure: the caller passes the secret and the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.signing import derived_key, sign, verify

LIFETIME = timedelta(hours=24)
_PURPOSE = "incident-link"


@dataclass(frozen=True)
class LinkGrant:
    """What a valid token grants: sign `member_id` in, to look at `incident_id`."""

    member_id: int
    incident_id: int


def make_token(secret_key: str, member_id: int, incident_id: int, now: datetime,
               lifetime: timedelta = LIFETIME) -> str:
    body = f"{member_id}.{incident_id}.{int((now + lifetime).timestamp())}"
    return f"{body}.{sign(derived_key(secret_key, _PURPOSE), body)}"


def read_token(secret_key: str, token: str, incident_id: int, now: datetime) -> LinkGrant | None:
    """The grant of a genuine, unexpired token for this incident; None for anything else."""
    if not secret_key or len(token) > 120:
        return None
    parts = token.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts[:3]):
        return None
    member, incident, expires, signature = parts
    if not verify(derived_key(secret_key, _PURPOSE), f"{member}.{incident}.{expires}", signature):
        return None
    if int(incident) != incident_id or int(expires) <= now.timestamp():
        return None
    return LinkGrant(int(member), int(incident))


def incident_url(base_url: str, incident_id: int) -> str:
    """The plain incident page; what group posts, webhooks and the Open API show."""
    return f"{base_url.rstrip('/')}/incidents/{incident_id}"


def incident_link(base_url: str, secret_key: str, member_id: int | None, incident_id: int, now: datetime) -> str:
    """The incident page for one member: signed in by token when there is a member and a secret to sign with,
    the plain page otherwise (web sign-in is off without VIGIL_SECRET_KEY)."""
    url = incident_url(base_url, incident_id)
    if member_id is None or not secret_key:
        return url
    return f"{url}?t={make_token(secret_key, member_id, incident_id, now)}"
