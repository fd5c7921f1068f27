"""/api/v1/members/{id}/push-subscriptions: the browsers a member gets `app` pages on (Web Push).

Until web sessions exist this is how a subscription is registered: a script or page holding the member's own
token (or an admin's) posts the browser's PushSubscription JSON. The endpoint is never shown back: it is the
capability to push to that browser.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from bot.api.common import get_or_404, ts
from bot.api.framework import Call, endpoint
from bot.egress import require_sendable
from bot.keys import SETTINGS
from bot.media.web_push import origin
from core import push
from core.errors import NotFound, PermissionDenied
from core.models import Member, PushSubscription
from core.push import SubscriptionIn
from core.types import Role


class PushSubscriptionOut(BaseModel):
    subscription_id: int
    member_id: int
    push_service: str = Field(description="the endpoint's origin; the full endpoint is never shown")
    user_agent: str
    created_at: int
    updated_at: int


def push_subscription_out(s: PushSubscription) -> dict:
    return {"subscription_id": s.id, "member_id": s.member_id, "push_service": origin(s.endpoint),
            "user_agent": s.user_agent, "created_at": ts(s.created_at), "updated_at": ts(s.updated_at)}


async def _self_or_admin(c: Call) -> Member:
    member = await get_or_404(c.session, Member, c.path_int("id"), "member")
    if c.principal.role is not Role.ADMIN and c.principal.member_id != member.id:
        raise PermissionDenied("only the member themself or an admin manages a member's push subscriptions")
    return member


@endpoint("POST", "/members/{id}/push-subscriptions", body=SubscriptionIn, response=PushSubscriptionOut,
          summary="Register a browser's PushSubscription for the app medium", tag="members", status=201)
async def create_push_subscription(c: Call) -> dict:
    member = await _self_or_admin(c)
    require_sendable("endpoint", c.body.endpoint, c.request.app[SETTINGS].egress_policy())
    row = await push.subscribe(c.session, member.id, c.body, c.request.headers.get("User-Agent", ""), c.now)
    await c.session.commit()
    return push_subscription_out(row)


@endpoint("GET", "/members/{id}/push-subscriptions", response=PushSubscriptionOut, paged=True,
          summary="List a member's push subscriptions", tag="members")
async def list_push_subscriptions(c: Call) -> dict:
    member = await _self_or_admin(c)
    rows = await push.subscriptions_of(c.session, member.id)
    return {"items": [push_subscription_out(s) for s in rows], "total": len(rows), "has_next_page": False}


@endpoint("DELETE", "/members/{id}/push-subscriptions/{subscription_id}", summary="Remove a push subscription",
          tag="members")
async def delete_push_subscription(c: Call) -> dict:
    member = await _self_or_admin(c)
    row = await get_or_404(c.session, PushSubscription, c.path_int("subscription_id"), "push subscription")
    if row.member_id != member.id:
        raise NotFound(f"push subscription {row.id} of member {member.id} not found")
    await push.remove(c.session, [row.id])
    await c.session.commit()
    return {}
