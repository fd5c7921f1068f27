"""The incident page's custom fields: their values, and a small form per field for a member who may act on
the incident. A form posts to /incidents/{id}/fields/{field id} (bot/web/incident_actions.py) and ends in
core.custom_fields.set_value, as the Open API and a card's select do (DESIGN rule 1)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import custom_fields
from core.clock import utcnow
from core.errors import InvalidInput
from core.models import CustomField, Incident
from core.types import Platform


async def fields_view(db: AsyncSession, incident: Incident, *, editable: bool) -> dict[str, Any]:
    """Every defined field with the incident's value (set, else the default) and its words."""
    defs = await custom_fields.definitions(db)
    values = custom_fields.effective(defs, incident.fields or {})
    shown = [{"id": d.id, "name": d.name, "label": d.display_name, "description": d.description, "type": d.type,
              "options": list(d.options), "value": values.get(d.name),
              "text": custom_fields.display(values.get(d.name))} for d in defs]
    return {"custom_fields": shown, "fields_editable": editable and bool(shown),
            "text_max": custom_fields.TEXT_MAX}


def value_from_form(definition: CustomField, form: Any) -> Any:
    """What a field's form posted, as the value set_value checks: a text or the chosen option ("" clears), the
    ticked options of a multi-select, whether a checkbox is ticked."""
    if definition.type == "checkbox":
        return "value" in form
    if definition.type == "multi_select":
        return [v for v in form.getall("value", []) if isinstance(v, str)]
    raw = form.get("value", "")
    if not isinstance(raw, str):
        raise InvalidInput(f"{definition.name}: expected text")
    return raw or None


async def set_from_form(db: AsyncSession, member_id: int, incident_id: int, field_id: int,
                        form: Any) -> tuple[bool, str]:
    definition = await db.get(CustomField, field_id)
    if definition is None:
        raise InvalidInput("that custom field no longer exists")
    incident = await custom_fields.set_value(db, incident_id, member_id, name=definition.name,
                                             value=value_from_form(definition, form), now=utcnow(),
                                             source=Platform.WEB.value)
    value = custom_fields.effective([definition], incident.fields or {}).get(definition.name)
    await db.commit()
    return True, f"{definition.display_name} is now {custom_fields.display(value)}."
