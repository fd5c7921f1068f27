"""The `im` medium: a card in a direct message, on the first of the member's linked platforms that works.

The card's link carries a token that signs that member in on the incident page (core/links.py): it is sent to
them alone. Group posts (bot/group_bots/) never carry one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import Adapter, ChatTarget, MessageRef
from bot.cards import render
from bot.chat.card_view import incident_card
from core import incidents
from core.clock import utcnow
from core.errors import DeliveryError
from core.links import incident_link
from core.models import CardRef
from core.paging import Page, Recipient, Sender
from core.types import Platform
from mapping_tables.store import identities, mark_stale


def im_sender(adapters: Mapping[Platform, Adapter], sessions: async_sessionmaker[AsyncSession],
              base_url: str, secret_key: str = "") -> Sender:
    """A delivery sender for the `im` medium over the configured chat adapters; with `secret_key` (web sign-in
    on) the card links to the incident signed in as the recipient."""

    async def send(recipient: Recipient, page: Page) -> str:
        errors: list[DeliveryError] = []
        async with sessions() as session:
            rows = await identities(session, recipient.member_id)
            incident = await incidents.get(session, page.incident_id)
            card = await incident_card(session, incident, base_url, utcnow())
            card = dataclasses.replace(card, url=incident_link(base_url, secret_key, recipient.member_id,
                                                               incident.id, utcnow()))
            for row in rows:
                platform = Platform(row.platform)
                adapter = adapters.get(platform)
                if adapter is None:
                    continue
                try:
                    ref = await adapter.send_card(ChatTarget(platform, row.im_user_id, direct=True),
                                                  render(platform, card))
                except DeliveryError as exc:
                    if exc.gone:
                        await mark_stale(session, platform, row.im_user_id, utcnow())
                        await session.commit()
                    errors.append(exc)
                    continue
                record_card(session, incident.id, platform, ref)
                await session.commit()
                return f"{platform.value}:{ref.message_id}"
        if any(e.retryable for e in errors):
            raise next(e for e in errors if e.retryable)
        if errors:
            raise DeliveryError("; ".join(str(e) for e in errors), retryable=False)
        raise DeliveryError(f"{recipient.name} has no linked account on a configured chat platform",
                            retryable=False)

    return send


def record_card(session: AsyncSession, incident_id: int, platform: Platform, ref: MessageRef) -> None:
    """Remember a card the platform accepted, so card sync updates it with every change (DESIGN rule 2);
    direct messages and group chats alike. The caller commits."""
    session.add(CardRef(incident_id=incident_id, platform=platform.value, conversation_id=ref.conversation_id,
                        message_id=ref.message_id, extra=dict(ref.extra), created_at=utcnow()))
