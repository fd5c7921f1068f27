"""/api/v1/channels, their dedicated integrations, and shared integrations with routing rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, select, update

from bot.api.common import get_or_404, paged, patch_changes, require_ids, ts
from bot.api.framework import Call, Page, endpoint
from bot.keys import INTEGRATION_CACHE, SETTINGS
from core.conditions import ConditionError, compile_tree
from core.errors import Conflict, InvalidInput
from core.grouping import GroupingRule
from core.models import Alert, Channel, Incident, Integration, Team, Template
from core.noise import Flapping
from core.secrets import digest, new_key
from webhooks.mail import address_of
from webhooks.registry import PARSERS

# The formats webhooks/registry.py knows, pushed over HTTP, and e-mail (webhooks/mail_server.py).
IntegrationType = Literal[(*PARSERS, "email")]  # type: ignore[valid-type]


TEAM_SCOPED = ("only admins and members of the channel's teams (team_ids) may act on its incidents, "
               "from the API and from cards; needs at least one team")


class ChannelIn(BaseModel):
    name: str = Field(min_length=1, max_length=59)
    description: str = Field(default="", max_length=500)
    team_ids: list[int] = Field(default_factory=list, max_length=3)
    team_scoped: bool = Field(default=False, description=TEAM_SCOPED)
    grouping: GroupingRule = Field(default_factory=GroupingRule)
    auto_close: bool = Field(default=True, description="close the incident when all its alerts recovered")
    auto_resolve_timeout: int = Field(default=0, ge=0, le=2592000, description="seconds; 0 = off")
    flapping: Flapping = Field(default_factory=Flapping)
    storm_thresholds: list[Annotated[int, Field(ge=2, le=10000)]] = Field(default_factory=list, max_length=5)


class ChannelPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=59)
    description: str | None = Field(default=None, max_length=500)
    team_ids: list[int] | None = Field(default=None, max_length=3)
    team_scoped: bool | None = Field(default=None, description=TEAM_SCOPED)
    grouping: GroupingRule | None = None
    auto_close: bool | None = None
    auto_resolve_timeout: int | None = Field(default=None, ge=0, le=2592000)
    status: Literal["enabled", "disabled"] | None = None
    flapping: Flapping | None = None
    storm_thresholds: list[Annotated[int, Field(ge=2, le=10000)]] | None = Field(default=None, max_length=5)


class ChannelOut(BaseModel):
    channel_id: int
    name: str
    description: str
    team_ids: list[int]
    team_scoped: bool
    grouping: GroupingRule
    auto_close: bool
    auto_resolve_timeout: int
    flapping: Flapping
    storm_thresholds: list[int]
    status: str
    created_at: int
    updated_at: int
    last_incident_at: int


def channel_out(ch: Channel) -> dict:
    return {"channel_id": ch.id, "name": ch.name, "description": ch.description, "team_ids": list(ch.team_ids),
            "team_scoped": ch.team_scoped,
            "grouping": GroupingRule.model_validate(ch.grouping or {}).model_dump(), "auto_close": ch.auto_close,
            "auto_resolve_timeout": ch.auto_resolve_timeout, "status": ch.status,
            "flapping": Flapping.model_validate(ch.flapping or {}).model_dump(),
            "storm_thresholds": sorted(ch.storm_thresholds or []), "created_at": ts(ch.created_at),
            "updated_at": ts(ch.updated_at), "last_incident_at": ts(ch.last_incident_at)}


def _check_scope(team_scoped: bool, team_ids: list[int]) -> None:
    if team_scoped and not team_ids:
        raise InvalidInput("team_scoped: a channel scoped to its teams needs at least one team in team_ids")


async def _unique_channel(c: Call, name: str, exclude: int | None = None) -> None:
    row = (await c.session.execute(select(Channel.id).where(Channel.name == name))).scalar_one_or_none()
    if row is not None and row != exclude:
        raise Conflict(f"name: a channel named {name!r} already exists")


@endpoint("POST", "/channels", body=ChannelIn, response=ChannelOut, summary="Create a channel", tag="channels",
          need="admin", status=201)
async def create_channel(c: Call) -> dict:
    await require_ids(c.session, Team, c.body.team_ids, "team_ids")
    _check_scope(c.body.team_scoped, c.body.team_ids)
    await _unique_channel(c, c.body.name)
    data = c.body.model_dump(mode="json")
    ch = Channel(**data, created_at=c.now, updated_at=c.now)
    c.session.add(ch)
    await c.session.commit()
    return channel_out(ch)


@endpoint("GET", "/channels", query=Page, response=ChannelOut, paged=True, summary="List channels", tag="channels")
async def list_channels(c: Call) -> dict:
    return await paged(c.session, select(Channel).order_by(Channel.id), c.query, channel_out)


@endpoint("GET", "/channels/{id}", response=ChannelOut, summary="Get a channel", tag="channels")
async def get_channel(c: Call) -> dict:
    return channel_out(await get_or_404(c.session, Channel, c.path_int("id"), "channel"))


@endpoint("PATCH", "/channels/{id}", body=ChannelPatch, response=ChannelOut, summary="Update a channel",
          tag="channels", need="admin")
async def patch_channel(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    changes = patch_changes(c.body, mode="json")
    if changes.get("team_ids") is not None:
        await require_ids(c.session, Team, changes["team_ids"], "team_ids")
    _check_scope(changes.get("team_scoped", ch.team_scoped), changes.get("team_ids", ch.team_ids))
    if changes.get("name"):
        await _unique_channel(c, changes["name"], exclude=ch.id)
    for k, v in changes.items():
        setattr(ch, k, v)
    ch.updated_at = c.now
    await c.session.commit()
    c.request.app[INTEGRATION_CACHE].clear()
    return channel_out(ch)


@endpoint("DELETE", "/channels/{id}", summary="Delete a channel (only when it holds no incidents)",
          tag="channels", need="admin")
async def delete_channel(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    used = (await c.session.execute(select(Incident.id).where(Incident.channel_id == ch.id).limit(1))).first()
    if used or (await c.session.execute(select(Alert.id).where(Alert.channel_id == ch.id).limit(1))).first():
        raise Conflict("channel holds incidents; disable it instead (PATCH status=disabled)")
    await c.session.execute(update(Integration).where(Integration.channel_id == ch.id).values(status="disabled",
                                                                                           channel_id=None))
    await c.session.execute(delete(Template).where(Template.channel_id == ch.id))
    await c.session.delete(ch)
    await c.session.commit()
    c.request.app[INTEGRATION_CACHE].clear()
    return {}


# ---- integrations -------------------------------------------------------------------------------


class RoutingCase(BaseModel):
    if_: list[list[dict[str, Any]]] = Field(alias="if", default_factory=list,
                                            description="match conditions, OR of AND groups (core/conditions.py)")
    channel_id: int

    model_config = {"populate_by_name": True}


class Routing(BaseModel):
    cases: list[RoutingCase] = Field(default_factory=list, max_length=100)
    default_channel_id: int | None = None

    @field_validator("cases")
    @classmethod
    def _compile(cls, cases: list[RoutingCase]) -> list[RoutingCase]:
        for i, case in enumerate(cases):
            try:
                compile_tree(case.if_)
            except ConditionError as exc:
                raise ValueError(f"cases[{i}].if: {exc}") from None
        return cases


class IntegrationIn(BaseModel):
    type: IntegrationType
    name: str = Field(min_length=1, max_length=100)


class SharedIntegrationIn(IntegrationIn):
    routing: Routing = Field(default_factory=Routing)


class IntegrationPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    routing: Routing | None = None
    status: Literal["enabled", "disabled"] | None = None


class IntegrationOut(BaseModel):
    integration_id: int
    name: str
    type: str
    channel_id: int | None
    push_url: str = Field(description="where to push; add ?integration_key=<key> (the key is shown only once)")
    routing: dict[str, Any]
    status: str
    last_event_at: int
    created_at: int


class IntegrationKeyOut(IntegrationOut):
    integration_key: str = Field(description="shown only in this answer (creation or rotation); only its hash "
                                             "is stored")
    push_url: str = Field(description="where to push, the key included (e-mail: a mailto: URL)")
    mail_address: str = Field(default="", description="e-mail integrations: the address to send alerts to, "
                                                      "<key>@VIGIL_MAIL_DOMAIN (it changes with the key)")


def integration_out(c: Call, i: Integration) -> dict:
    base = c.request.app[SETTINGS].resolved_base_url()
    # An e-mail integration's address holds its key: like the key, it is shown only at creation and rotation.
    push_url = "" if i.type == "email" else f"{base}/event/push/alert/{i.type}"
    return {"integration_id": i.id, "name": i.name, "type": i.type, "channel_id": i.channel_id,
            "push_url": push_url, "routing": i.routing or {}, "status": i.status,
            "last_event_at": ts(i.last_event_at), "created_at": ts(i.created_at)}


def _with_key(c: Call, i: Integration, key: str) -> dict:
    out = integration_out(c, i)
    if i.type == "email":
        address = address_of(key, c.request.app[SETTINGS].mail_domain)
        return {**out, "integration_key": key, "push_url": f"mailto:{address}", "mail_address": address}
    return {**out, "integration_key": key, "push_url": f"{out['push_url']}?integration_key={key}"}


async def _check_routing(c: Call, routing: Routing) -> dict[str, Any]:
    ids = [case.channel_id for case in routing.cases]
    if routing.default_channel_id is not None:
        ids.append(routing.default_channel_id)
    await require_ids(c.session, Channel, ids, "routing channel_id")
    return routing.model_dump(by_alias=True)


async def _new_integration(c: Call, channel_id: int | None, routing: dict[str, Any]) -> dict:
    if c.body.type == "email" and not c.request.app[SETTINGS].mail_domain:
        raise InvalidInput("type: e-mail integrations need this Vigil to receive mail: set VIGIL_MAIL_DOMAIN and "
                           "VIGIL_MAIL_PORT")
    key = new_key()
    i = Integration(name=c.body.name, type=c.body.type, channel_id=channel_id, key_hash=digest(key),
                    routing=routing, created_at=c.now, updated_at=c.now)
    c.session.add(i)
    await c.session.commit()
    return _with_key(c, i, key)


@endpoint("POST", "/channels/{id}/integrations", body=IntegrationIn, response=IntegrationKeyOut, status=201,
          summary="Create a dedicated integration of a channel", tag="integrations", need="admin")
async def create_dedicated(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    return await _new_integration(c, ch.id, {})


@endpoint("GET", "/channels/{id}/integrations", query=Page, response=IntegrationOut, paged=True,
          summary="List a channel's dedicated integrations", tag="integrations")
async def list_dedicated(c: Call) -> dict:
    ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
    stmt = select(Integration).where(Integration.channel_id == ch.id).order_by(Integration.id)
    return await paged(c.session, stmt, c.query, lambda i: integration_out(c, i))


@endpoint("POST", "/integrations", body=SharedIntegrationIn, response=IntegrationKeyOut, status=201,
          summary="Create a shared integration routed by rules", tag="integrations", need="admin")
async def create_shared(c: Call) -> dict:
    return await _new_integration(c, None, await _check_routing(c, c.body.routing))


@endpoint("GET", "/integrations", query=Page, response=IntegrationOut, paged=True,
          summary="List all integrations", tag="integrations")
async def list_integrations(c: Call) -> dict:
    return await paged(c.session, select(Integration).order_by(Integration.id), c.query,
                       lambda i: integration_out(c, i))


@endpoint("GET", "/integrations/{id}", response=IntegrationOut, summary="Get an integration", tag="integrations")
async def get_integration(c: Call) -> dict:
    return integration_out(c, await get_or_404(c.session, Integration, c.path_int("id"), "integration"))


@endpoint("PATCH", "/integrations/{id}", body=IntegrationPatch, response=IntegrationOut,
          summary="Rename, re-route or disable an integration", tag="integrations", need="admin")
async def patch_integration(c: Call) -> dict:
    i = await get_or_404(c.session, Integration, c.path_int("id"), "integration")
    changes = patch_changes(c.body)
    if "routing" in changes:
        if i.channel_id is not None:
            raise InvalidInput("routing: only shared integrations have routing rules")
        i.routing = await _check_routing(c, c.body.routing)
    for k in ("name", "status"):
        if k in changes:
            setattr(i, k, changes[k])
    i.updated_at = c.now
    await c.session.commit()
    c.request.app[INTEGRATION_CACHE].clear()
    return integration_out(c, i)


@endpoint("POST", "/integrations/{id}/rotate-key", response=IntegrationKeyOut, tag="integrations", need="admin",
          summary="Replace the integration key: the new key is shown once, the old one stops working")
async def rotate_key(c: Call) -> dict:
    i = await get_or_404(c.session, Integration, c.path_int("id"), "integration")
    key = new_key()
    i.key_hash = digest(key)
    i.updated_at = c.now
    await c.session.commit()
    c.request.app[INTEGRATION_CACHE].clear()  # other processes drop the old key when their entry expires
    return _with_key(c, i, key)


@endpoint("DELETE", "/integrations/{id}", summary="Delete an integration (disables it when it has alerts)",
          tag="integrations", need="admin")
async def delete_integration(c: Call) -> dict:
    i = await get_or_404(c.session, Integration, c.path_int("id"), "integration")
    has_alerts = (await c.session.execute(select(Alert.id).where(Alert.integration_id == i.id).limit(1))).first()
    if has_alerts:
        i.status = "disabled"  # alerts keep their history; the key stops working at once
    else:
        await c.session.delete(i)
    await c.session.commit()
    c.request.app[INTEGRATION_CACHE].clear()
    return {}
