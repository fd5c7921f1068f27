"""The `im_chat` medium: the interactive incident card, posted by an IM app into a group chat.

The same card as a member's direct message (bot/chat/im_sender.py) and the same send call: every adapter's
`send_card` takes a group target (`ChatTarget(direct=False)`). Anyone in the chat may click; the click path
(bot/chat/clicks.py) resolves the clicker through the platform's mapping table, so an unlinked clicker
changes nothing and a linked one acts with their own role and team scope. The card is recorded as a
CardRef, so card sync updates it in place with every other card of the incident. Its link signs nobody in:
a whole group reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import Adapter, ChatTarget
from bot.cards import render
from bot.chat.card_view import incident_card
from bot.chat.im_sender import record_card
from core import incidents
from core.clock import utcnow
from core.errors import DeliveryError
from core.models import Delivery, ImApp
from core.paging import Page, Recipient, Sender, Sent
from core.types import Platform


def group_card_sender(adapters: Mapping[Platform, Adapter], sessions: async_sessionmaker[AsyncSession],
                      base_url: str) -> Sender:
    """A delivery sender for the `im_chat` medium over the configured chat adapters."""

    async def send(_recipient: Recipient, page: Page) -> Sent:
        async with sessions() as session:
            d = await session.get(Delivery, page.delivery_id)
            app = await session.get(ImApp, d.im_app_id) if d is not None and d.im_app_id is not None else None
            if d is None or app is None or app.status != "enabled":
                raise DeliveryError(f"IM app {d.im_app_id if d else '?'} was removed or disabled", retryable=False)
            platform = Platform(app.platform)
            adapter = adapters.get(platform)
            if adapter is None:  # enabled, but its adapter could not be built (GET /im-apps/{id} says why)
                raise DeliveryError(f"IM app {app.id} ({platform.value}) is not working: see its problems",
                                    retryable=False)
            incident = await incidents.get(session, page.incident_id)
            card = render(platform, await incident_card(session, incident, base_url, utcnow()))
            ref = await adapter.send_card(ChatTarget(platform, d.address, direct=False), card)
            if getattr(adapter, "updates_group_cards", True):
                record_card(session, incident.id, platform, ref)
                await session.commit()
            return Sent(ref.message_id, provider=f"{platform.value} app {app.id}")

    return send
