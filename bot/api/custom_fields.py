"""/api/v1/custom-fields: the account's custom field definitions (admins write, every member reads), and
POST /incidents/{id}/fields, which sets a value on an incident through core.custom_fields.set_value."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from bot.api.incidents import API, IncidentOut, actor, incident_view, memberless_in_scope
from core import custom_fields
from core.custom_fields import FieldSpec
from core.errors import Conflict, InvalidInput
from core.models import CustomField

TAG = "custom-fields"
SPEC_FIELDS = tuple(FieldSpec.model_fields)


class FieldPatch(BaseModel):
    """What may change; the name (the key values are stored under) and the type may not."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    options: list[str] | None = Field(default=None, max_length=custom_fields.OPTIONS_MAX,
                                      description="the whole new list; values of removed options read as unset")
    default_value: Any = Field(default=None, description="null clears the default")


class FieldOut(FieldSpec):
    field_id: int
    created_at: int
    updated_at: int


class SetFieldBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, description="the custom field's name", examples=["impact"])
    value: Any = Field(description="a string (text, single_select), a list of options (multi_select), true or "
                       "false (checkbox); null or an empty text or list clears the value")
    member_id: int | None = Field(default=None, description="act on behalf of this member (admin tokens only)")


def _out(f: CustomField) -> dict[str, Any]:
    return {**{k: getattr(f, k) for k in SPEC_FIELDS}, "field_id": f.id, "created_at": ts(f.created_at),
            "updated_at": ts(f.updated_at)}


async def _name_free(c: Call, name: str) -> None:
    if await c.session.scalar(select(CustomField.id).where(CustomField.name == name)) is not None:
        raise Conflict(f"name: a custom field named {name!r} exists already")


@endpoint("POST", "/custom-fields", body=FieldSpec, response=FieldOut, status=201, need="admin", tag=TAG,
          summary="Define a custom field of incidents: text, single_select, multi_select or checkbox")
async def create_field(c: Call) -> dict:
    body: FieldSpec = c.body
    await _name_free(c, body.name)
    count = len(await custom_fields.definitions(c.session))
    if count >= custom_fields.FIELDS_MAX:
        raise InvalidInput(f"name: at most {custom_fields.FIELDS_MAX} custom fields; delete one first")
    f = CustomField(**body.model_dump(), created_at=c.now, updated_at=c.now)
    c.session.add(f)
    await c.session.commit()
    return _out(f)


@endpoint("GET", "/custom-fields", query=Page, response=FieldOut, paged=True, tag=TAG,
          summary="List the custom fields, in the order cards and pages show them")
async def list_fields(c: Call) -> dict:
    return await paged(c.session, select(CustomField).order_by(CustomField.id), c.query, _out)


@endpoint("GET", "/custom-fields/{id}", response=FieldOut, tag=TAG, summary="Get a custom field")
async def get_field(c: Call) -> dict:
    return _out(await get_or_404(c.session, CustomField, c.path_int("id"), "custom field"))


@endpoint("PATCH", "/custom-fields/{id}", body=FieldPatch, response=FieldOut, need="admin", tag=TAG,
          summary="Change a custom field's display name, description, options or default")
async def update_field(c: Call) -> dict:
    f = await get_or_404(c.session, CustomField, c.path_int("id"), "custom field")
    changes = c.body.model_dump(exclude_unset=True)
    for key in ("display_name", "description", "options"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"body.{key}: must not be null")
    merged = {**{k: getattr(f, k) for k in SPEC_FIELDS}, **changes}
    try:
        spec = FieldSpec.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"body{'.' + where if where else ''}: {first.get('msg', 'invalid')}") from None
    for k in SPEC_FIELDS:
        setattr(f, k, getattr(spec, k))
    f.updated_at = c.now
    await c.session.commit()
    return _out(f)


@endpoint("DELETE", "/custom-fields/{id}", need="admin", tag=TAG,
          summary="Delete a custom field; incidents stop showing its values")
async def delete_field(c: Call) -> dict:
    f = await get_or_404(c.session, CustomField, c.path_int("id"), "custom field")
    await c.session.delete(f)
    await c.session.commit()
    return {}


@endpoint("POST", "/incidents/{id}/fields", body=SetFieldBody, response=IncidentOut, need="act", tag="incidents",
          summary="Set (or clear) a custom field of the incident; the value is checked against the field's type "
          "and options, written to the timeline, and every card of the incident is updated",
          errors=(400, 401, 403, 404, 409))
async def set_incident_field(c: Call) -> dict:
    b: SetFieldBody = c.body
    await memberless_in_scope(c, [c.path_int("id")])
    incident = await custom_fields.set_value(c.session, c.path_int("id"), actor(c), name=b.name, value=b.value,
                                             now=c.now, source=API)
    await c.session.commit()
    return await incident_view(c, incident)
