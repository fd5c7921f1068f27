"""The custom fields an incident's card shows, and the ones a responder may set from it (core/custom_fields.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cards.model import FIELD_KINDS, FieldInput, FieldValue
from core import custom_fields
from core.models import Incident


async def card_fields(session: AsyncSession, incident: Incident) -> dict[str, Any]:
    """IncidentCard's `fields` and `field_inputs`: the values (set, else defaults) in definition order, and
    every select and checkbox field, unless the incident was merged (act on the one it went into)."""
    defs = await custom_fields.definitions(session)
    if not defs:
        return {}
    values = custom_fields.effective(defs, incident.fields or {})
    shown = tuple(FieldValue(d.display_name, custom_fields.display(values[d.name])) for d in defs if d.name in values)
    inputs = () if incident.merged_into_id is not None else tuple(
        FieldInput(d.id, d.display_name, d.type, tuple(d.options) if d.type != "checkbox" else (d.display_name,),
                   custom_fields.positions_of(d, values.get(d.name)))
        for d in defs if d.type in FIELD_KINDS)
    return {"fields": shown, "field_inputs": inputs}
