"""/api/v1/templates: override the shipped notification templates per medium and event type, for every
incident, one channel's or one escalation rule's (the most specific scope wins: core.templates.scope_order)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, require_ids, ts
from bot.api.framework import Call, Page, endpoint, fits_int64
from bot.keys import JOBS, SETTINGS
from core import custom_fields, images, incidents
from core.errors import InvalidInput, NotFound, PermissionDenied
from core.events import EVENT_TYPES
from core.models import Channel, EscalationRule, Template
from core.template_sandbox import render_all
from core.templates import MEDIA, Scope, TemplateError, TemplateSet, incident_context

MediumName = Literal[MEDIA]  # type: ignore[valid-type]
EventName = Literal[(*EVENT_TYPES, "default")]  # type: ignore[valid-type]


SCOPE_HELP = ("without channel_id and escalation_rule_id the template holds for every incident; with channel_id "
              "for that channel's; with escalation_rule_id for the incidents that rule pages (its channel is implied)")


class ScopeIn(BaseModel):
    channel_id: int | None = Field(default=None, ge=1, le=2**53, description=SCOPE_HELP)
    escalation_rule_id: int | None = Field(default=None, ge=1, le=2**53, description=SCOPE_HELP)


class TemplateIn(ScopeIn):
    medium: MediumName
    event_type: EventName = "default"
    source: str = Field(min_length=1, max_length=20_000, description="sandboxed Jinja2; email templates define {% block subject %}, {% block text %} and optionally {% block html %}")


class TemplateOut(BaseModel):
    template_id: int
    medium: str
    event_type: str
    channel_id: int | None
    escalation_rule_id: int | None
    source: str
    updated_at: int


class TemplateQuery(Page):
    channel_id: int | None = Field(default=None, ge=0, le=2**53,
                                   description="templates of this channel and its rules; 0: those for every channel")
    escalation_rule_id: int | None = Field(default=None, ge=1, le=2**53, description="templates of this rule")


class TemplatePreviewIn(ScopeIn):
    medium: MediumName
    event_type: EventName = "i_new"
    source: str | None = Field(default=None, max_length=20_000, description=(
        "a template to try instead of the stored one (needs the admin role); default: the stored template"))
    incident_id: int | None = Field(default=None, description=(
        "render against this incident, with the templates of its channel and escalation rule (unless channel_id "
        "or escalation_rule_id is given)"))


class TemplatePreview(BaseModel):
    subject: str | None
    text: str
    used_fallback: bool
    error: str | None


def _out(t: Template) -> dict:
    return {"template_id": t.id, "medium": t.medium, "event_type": t.event_type, "channel_id": t.channel_id or None,
            "escalation_rule_id": t.escalation_rule_id or None, "source": t.source, "updated_at": ts(t.updated_at)}


async def _scope(c: Call, body: ScopeIn) -> Scope:
    """The scope a body names, checked: the channel and rule exist, and a rule given with a channel is that
    channel's."""
    if body.escalation_rule_id is not None:
        rule = await c.session.get(EscalationRule, body.escalation_rule_id) if fits_int64(body.escalation_rule_id) \
            else None
        if rule is None:
            raise NotFound(f"escalation_rule_id: no escalation rule with id {body.escalation_rule_id}")
        if body.channel_id is not None and body.channel_id != rule.channel_id:
            raise InvalidInput(f"channel_id: escalation rule {rule.id} belongs to channel {rule.channel_id}, "
                               f"not {body.channel_id}; give one of them")
        return Scope(rule.channel_id, rule.id)
    if body.channel_id is not None:
        await require_ids(c.session, Channel, [body.channel_id], "channel_id")
        return Scope(body.channel_id, 0)
    return Scope()


def _template_set(rows: list[Template]) -> TemplateSet:
    return TemplateSet({(t.medium, t.event_type, t.channel_id, t.escalation_rule_id): t.source for t in rows})


def _validate(medium: str, source: str) -> None:
    try:
        TemplateSet.validate(medium, source)
    except TemplateError as exc:
        raise InvalidInput(f"source: {exc}") from None


@endpoint("POST", "/templates", body=TemplateIn, response=TemplateOut, status=201, need="admin", tag="templates",
          summary="Set the template of a medium and event type, for every incident or one channel's or escalation "
                  "rule's (replaces the one of that scope); the most specific scope wins: the rule's, then the "
                  "channel's, then the one for every incident, and within a scope the event type's before `default`")
async def put_template(c: Call) -> dict:
    _validate(c.body.medium, c.body.source)
    scope = await _scope(c, c.body)
    row = (await c.session.execute(select(Template).where(
        Template.medium == c.body.medium, Template.event_type == c.body.event_type,
        Template.channel_id == scope.channel_id, Template.escalation_rule_id == scope.rule_id))).scalar_one_or_none()
    if row is None:
        row = Template(medium=c.body.medium, event_type=c.body.event_type, channel_id=scope.channel_id,
                       escalation_rule_id=scope.rule_id, source=c.body.source, created_at=c.now)
        c.session.add(row)
    row.source, row.updated_at = c.body.source, c.now
    await c.session.commit()
    return _out(row)


@endpoint("GET", "/templates", query=TemplateQuery, response=TemplateOut, paged=True, tag="templates",
          summary="List template overrides (media without one use the shipped default)")
async def list_templates(c: Call) -> dict:
    q: TemplateQuery = c.query
    stmt = select(Template).order_by(Template.id)
    if q.channel_id is not None:
        stmt = stmt.where(Template.channel_id == q.channel_id)
    if q.escalation_rule_id is not None:
        stmt = stmt.where(Template.escalation_rule_id == q.escalation_rule_id)
    return await paged(c.session, stmt, q, _out)


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
    scope = await _scope(c, b)
    templates = _template_set(list((await c.session.execute(select(Template))).scalars()))
    sample = {"incident_id": 0, "num": "000000", "title": "Sample: disk full on db-1", "incident_severity": "Critical",
              "progress": "Triggered", "alert_cnt": 3, "labels": {"service": "db"}, "channel_name": "sample"}
    if b.incident_id is not None:
        i = await incidents.get(c.session, b.incident_id)
        sample = {"incident_id": i.id, "num": i.num, "title": i.title, "description": i.description,
                  "incident_severity": i.severity, "progress": i.progress, "alert_cnt": i.alert_cnt,
                  "labels": i.labels, "fields": await custom_fields.values_of(c.session, i),
                  "images": (await images.of_incidents(c.session, [i.id]))[i.id]}
        if b.channel_id is None and b.escalation_rule_id is None:  # the templates its pages would use
            scope = Scope(i.channel_id or 0, i.escalation_rule_id or 0)
    if b.source is not None:  # tried in the most specific place, so it wins over every stored one
        _validate(b.medium, b.source)
        templates.overrides[(b.medium, b.event_type, scope.channel_id, scope.rule_id)] = b.source
    base = c.request.app[SETTINGS].resolved_base_url()
    await c.session.commit()  # no transaction held open while the template renders
    [r] = await render_all(c.request.app[JOBS].services.get("template_sandbox"), templates, [
        (b.medium, b.event_type, incident_context(sample, event_type=b.event_type, base_url=base), scope)])
    if r.hit_limit:
        raise InvalidInput(f"{'source' if b.source is not None else f'template {b.medium}/{b.event_type}'}: {r.error}")
    return {"subject": r.subject, "text": r.text, "used_fallback": r.used_fallback, "error": r.error}
