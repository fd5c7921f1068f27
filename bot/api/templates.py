"""/api/v1/templates: override the shipped notification templates per medium and event type."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from bot.keys import JOBS, SETTINGS
from core import incidents
from core.errors import InvalidInput, PermissionDenied
from core.events import EVENT_TYPES
from core.models import Template
from core.template_sandbox import render_all
from core.templates import MEDIA, TemplateError, TemplateSet, incident_context

MediumName = Literal[MEDIA]  # type: ignore[valid-type]
EventName = Literal[(*EVENT_TYPES, "default")]  # type: ignore[valid-type]


class TemplateIn(BaseModel):
    medium: MediumName
    event_type: EventName = "default"
    source: str = Field(min_length=1, max_length=20_000, description="sandboxed Jinja2; email templates define {% block subject %}, {% block text %} and optionally {% block html %}")


class TemplateOut(BaseModel):
    template_id: int
    medium: str
    event_type: str
    source: str
    updated_at: int


class TemplatePreviewIn(BaseModel):
    medium: MediumName
    event_type: EventName = "i_new"
    source: str | None = Field(default=None, max_length=20_000, description=(
        "a template to try instead of the stored one (needs the admin role); default: the stored template"))
    incident_id: int | None = None


class TemplatePreview(BaseModel):
    subject: str | None
    text: str
    used_fallback: bool
    error: str | None


def _out(t: Template) -> dict:
    return {"template_id": t.id, "medium": t.medium, "event_type": t.event_type, "source": t.source,
            "updated_at": ts(t.updated_at)}


def _validate(medium: str, source: str) -> None:
    try:
        TemplateSet.validate(medium, source)
    except TemplateError as exc:
        raise InvalidInput(f"source: {exc}") from None


@endpoint("POST", "/templates", body=TemplateIn, response=TemplateOut, status=201, need="admin", tag="templates",
          summary="Set the template of a medium and event type (replaces an existing one)")
async def put_template(c: Call) -> dict:
    _validate(c.body.medium, c.body.source)
    row = (await c.session.execute(select(Template).where(Template.medium == c.body.medium,
                                                          Template.event_type == c.body.event_type))).scalar_one_or_none()
    if row is None:
        row = Template(medium=c.body.medium, event_type=c.body.event_type, source=c.body.source, created_at=c.now)
        c.session.add(row)
    row.source, row.updated_at = c.body.source, c.now
    await c.session.commit()
    return _out(row)


@endpoint("GET", "/templates", query=Page, response=TemplateOut, paged=True, tag="templates",
          summary="List template overrides (media without one use the shipped default)")
async def list_templates(c: Call) -> dict:
    return await paged(c.session, select(Template).order_by(Template.id), c.query, _out)


@endpoint("DELETE", "/templates/{id}", need="admin", tag="templates", summary="Back to the shipped default")
async def delete_template(c: Call) -> dict:
    await c.session.delete(await get_or_404(c.session, Template, c.path_int("id"), "template"))
    await c.session.commit()
    return {}


@endpoint("POST", "/templates/preview", body=TemplatePreviewIn, response=TemplatePreview, tag="templates",
          summary="Render a template against an incident (or a sample) without saving it; a custom `source` needs "
                  "the admin role. A failing template falls back to the shipped default (`used_fallback`, `error`); "
                  "one over a time, CPU or memory limit answers 400 naming the limit")
async def preview(c: Call) -> dict:
    b: TemplatePreviewIn = c.body
    if b.source is not None and not c.principal.can("admin"):
        raise PermissionDenied(f"this token's role ({c.principal.role.value}) cannot preview a custom source: "
                               "that needs the admin role")
    overrides = {(t.medium, t.event_type): t.source for t in (await c.session.execute(select(Template))).scalars()}
    if b.source is not None:
        _validate(b.medium, b.source)
        overrides[(b.medium, b.event_type)] = b.source
    sample = {"incident_id": 0, "num": "000000", "title": "Sample: disk full on db-1", "incident_severity": "Critical",
              "progress": "Triggered", "alert_cnt": 3, "labels": {"service": "db"}, "channel_name": "sample"}
    if b.incident_id is not None:
        i = await incidents.get(c.session, b.incident_id)
        sample = {"incident_id": i.id, "num": i.num, "title": i.title, "description": i.description,
                  "incident_severity": i.severity, "progress": i.progress, "alert_cnt": i.alert_cnt,
                  "labels": i.labels}
    base = c.request.app[SETTINGS].resolved_base_url()
    await c.session.commit()  # no transaction held open while the template renders
    [r] = await render_all(c.request.app[JOBS].services.get("template_sandbox"), TemplateSet(overrides), [
        (b.medium, b.event_type, incident_context(sample, event_type=b.event_type, base_url=base))])
    if r.hit_limit:
        raise InvalidInput(f"{'source' if b.source is not None else f'template {b.medium}/{b.event_type}'}: {r.error}")
    return {"subject": r.subject, "text": r.text, "used_fallback": r.used_fallback, "error": r.error}
