"""Label enrichment on the Open API: the rule set of a channel or an integration, a preview, and the
enrichment mappings (key -> labels) that map rules look up, with CSV import and export."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, patch_changes, ts
from bot.api.framework import Call, Page, endpoint
from core import enrichment_mappings as mappings
from core import enrichment_store
from core.enrichment import LABEL_NAME, EnrichmentError, Rule, compile_rules, mapping_ids, parse
from core.errors import Conflict, InvalidInput
from core.models import Channel, EnrichmentMapping, EnrichmentMappingRow, Integration, LabelEnrichment
from core.models.enrichment import new_version
from core.types import AlertEvent, EventStatus

TAG = "label-enrichment"


class RuleSetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(max_length=50, description="applied in order, each seeing the labels left by "
                              "the ones before: extract (RE2 named groups), map, compose ({label}), drop")
    status: Literal["enabled", "disabled"] = "enabled"


class RuleSetOut(BaseModel):
    channel_id: int | None
    integration_id: int | None
    rules: list[Rule]
    status: str
    version: str
    updated_at: int


def _out(row: LabelEnrichment | None, channel_id: int | None, integration_id: int | None) -> dict[str, Any]:
    if row is None:
        return {"channel_id": channel_id, "integration_id": integration_id, "rules": [], "status": "enabled",
                "version": "", "updated_at": 0}
    return {"channel_id": row.channel_id, "integration_id": row.integration_id, "rules": row.rules,
            "status": row.status, "version": row.version, "updated_at": ts(row.updated_at)}


async def _validated(c: Call, rules: list[Any]) -> list[dict[str, Any]]:
    """The rules as stored, checked as ingest will compile them; a map rule must name a mapping that exists."""
    stored = [r.model_dump(mode="json") for r in rules]
    try:
        parse(stored)
    except EnrichmentError as exc:
        raise InvalidInput(str(exc)) from None
    used = mapping_ids(stored)
    found = set((await c.session.execute(select(EnrichmentMapping.id).where(EnrichmentMapping.id.in_(used))))
                .scalars()) if used else set()
    for i, r in enumerate(stored):
        if r["type"] == "map" and r["mapping_id"] not in found:
            raise InvalidInput(f"rules[{i}] (map): no enrichment mapping with id {r['mapping_id']}")
    return stored


def _scope(kind: str) -> tuple[type, Any, str]:
    if kind == "channel":
        return Channel, LabelEnrichment.channel_id, "channel"
    return Integration, LabelEnrichment.integration_id, "integration"


def _crud(kind: str) -> None:
    model, column, what = _scope(kind)
    base = f"/{kind}s/{{id}}/label-enrichment"

    async def _row(c: Call) -> tuple[int, LabelEnrichment | None]:
        target = await get_or_404(c.session, model, c.path_int("id"), what)
        row = (await c.session.execute(select(LabelEnrichment).where(column == target.id))).scalar_one_or_none()
        return target.id, row

    def _ids(target_id: int) -> tuple[int | None, int | None]:
        return (target_id, None) if kind == "channel" else (None, target_id)

    async def get(c: Call) -> dict:
        target_id, row = await _row(c)
        return _out(row, *_ids(target_id))

    async def put(c: Call) -> dict:
        target_id, row = await _row(c)
        rules = await _validated(c, c.body.rules)
        if row is None:
            channel_id, integration_id = _ids(target_id)
            row = LabelEnrichment(channel_id=channel_id, integration_id=integration_id, created_at=c.now)
            c.session.add(row)
        row.rules, row.status, row.version, row.updated_at = rules, c.body.status, new_version(), c.now
        await c.session.commit()
        enrichment_store.forget()
        return _out(row, *_ids(target_id))

    async def delete(c: Call) -> dict:
        _, row = await _row(c)
        if row is not None:
            await c.session.delete(row)
            await c.session.commit()
            enrichment_store.forget()
        return {}

    for fn, name in ((get, "get"), (put, "set"), (delete, "delete")):
        fn.__name__ = f"{name}_{kind}_label_enrichment"
    order = ("runs before routing, so routing sees its labels" if kind == "integration"
             else "runs after the integration's, before dedup, grouping and noise rules")
    endpoint("GET", base, response=RuleSetOut, tag=TAG,
             summary=f"The {kind}'s label enrichment rules (none: an empty list)")(get)
    endpoint("PUT", base, body=RuleSetIn, response=RuleSetOut, need="admin", tag=TAG,
             summary=f"Set the {kind}'s label enrichment rules ({order}); each rule is checked, a bad regex "
                     "is named with its rule")(put)
    endpoint("DELETE", base, need="admin", tag=TAG, summary=f"Remove the {kind}'s label enrichment")(delete)


_crud("channel")
_crud("integration")


class SampleEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=512)
    description: str = Field(default="", max_length=2048)
    labels: dict[str, str] = Field(default_factory=dict, max_length=100)


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(max_length=50)
    event: SampleEvent


class PreviewOut(BaseModel):
    labels: dict[str, str]


@endpoint("POST", "/label-enrichment/preview", body=PreviewIn, response=PreviewOut, tag=TAG,
          summary="What rules (not saved) make of a sample event's labels")
async def preview_label_enrichment(c: Call) -> dict:
    rules = await _validated(c, c.body.rules)
    loaded = await enrichment_store.load_mappings(c.session, mapping_ids(rules))
    ev = c.body.event
    event = AlertEvent(EventStatus.WARNING, ev.title, "preview", description=ev.description, labels=dict(ev.labels))
    return {"labels": compile_rules(rules, loaded).labels(event)}


# ---- mappings ------------------------------------------------------------------------------------

MTAG = "enrichment-mappings"


class MappingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    key_label: str = Field(pattern=LABEL_NAME.pattern, description="the label whose value finds a row, e.g. host")
    result_labels: list[str] = Field(min_length=1, max_length=50, description="labels a row may add, e.g. team")


class MappingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    result_labels: list[str] | None = Field(default=None, min_length=1, max_length=50)


class MappingOut(BaseModel):
    mapping_id: int
    name: str
    description: str
    key_label: str
    result_labels: list[str]
    row_count: int
    created_at: int
    updated_at: int


class MappingRowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=mappings.KEY_MAX)
    labels: dict[str, str] = Field(max_length=50)


class MappingRowOut(BaseModel):
    row_id: int
    mapping_id: int
    key: str
    labels: dict[str, str]
    updated_at: int


class MappingRowQuery(Page):
    key: str | None = Field(default=None, max_length=mappings.KEY_MAX, description="only the row of this key")


class MappingImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replace: bool = Field(default=False, description="remove rows whose key the CSV does not list")


class MappingImportOut(BaseModel):
    added: int
    changed: int
    unchanged: int
    removed: int


async def _mapping_out(c: Call, m: EnrichmentMapping) -> dict[str, Any]:
    return {"mapping_id": m.id, "name": m.name, "description": m.description, "key_label": m.key_label,
            "result_labels": list(m.result_labels), "row_count": await mappings.row_count(c.session, m.id),  # type: ignore[arg-type]
            "created_at": ts(m.created_at), "updated_at": ts(m.updated_at)}


def _row_out(r: EnrichmentMappingRow) -> dict[str, Any]:
    return {"row_id": r.id, "mapping_id": r.mapping_id, "key": r.key, "labels": dict(r.labels),
            "updated_at": ts(r.updated_at)}


async def _name_free(c: Call, name: str, own: int | None = None) -> None:
    taken = (await c.session.execute(select(EnrichmentMapping.id).where(EnrichmentMapping.name == name))).scalar()
    if taken is not None and taken != own:
        raise Conflict(f"name: an enrichment mapping named {name!r} exists (id {taken})")


def _result_labels(c: Call, names: list[str], key_label: str) -> list[str]:
    mappings.check_label_names(names, "result_labels")
    if key_label in names:
        raise InvalidInput(f"result_labels: {key_label!r} is the key label; a row cannot change it")
    if len(set(names)) != len(names):
        raise InvalidInput("result_labels: a label is named twice")
    return names


@endpoint("POST", "/enrichment-mappings", body=MappingIn, response=MappingOut, status=201, need="admin", tag=MTAG,
          summary="Create an enrichment mapping (key label -> result labels)")
async def create_enrichment_mapping(c: Call) -> dict:
    await _name_free(c, c.body.name)
    m = EnrichmentMapping(name=c.body.name, description=c.body.description, key_label=c.body.key_label,
                          result_labels=_result_labels(c, c.body.result_labels, c.body.key_label),
                          created_at=c.now, updated_at=c.now)
    c.session.add(m)
    await c.session.commit()
    return await _mapping_out(c, m)


@endpoint("GET", "/enrichment-mappings", query=Page, response=MappingOut, paged=True, tag=MTAG,
          summary="List enrichment mappings")
async def list_enrichment_mappings(c: Call) -> dict:
    result = await paged(c.session, select(EnrichmentMapping).order_by(EnrichmentMapping.id), c.query, lambda m: m)
    result["items"] = [await _mapping_out(c, m) for m in result["items"]]
    return result


@endpoint("GET", "/enrichment-mappings/{id}", response=MappingOut, tag=MTAG, summary="Get an enrichment mapping")
async def get_enrichment_mapping(c: Call) -> dict:
    return await _mapping_out(c, await get_or_404(c.session, EnrichmentMapping, c.path_int("id"), "enrichment mapping"))


@endpoint("PATCH", "/enrichment-mappings/{id}", body=MappingPatch, response=MappingOut, need="admin", tag=MTAG,
          summary="Rename, describe or change the result labels (rows keep only labels still listed)")
async def update_enrichment_mapping(c: Call) -> dict:
    m = await get_or_404(c.session, EnrichmentMapping, c.path_int("id"), "enrichment mapping")
    changes = patch_changes(c.body)
    if "name" in changes:
        await _name_free(c, changes["name"], m.id)
    if "result_labels" in changes:
        kept = _result_labels(c, changes["result_labels"], m.key_label)
        for r in (await c.session.execute(select(EnrichmentMappingRow).where(
                EnrichmentMappingRow.mapping_id == m.id))).scalars():
            if set(r.labels) - set(kept):
                r.labels = {k: v for k, v in r.labels.items() if k in kept}
    for k, v in changes.items():
        setattr(m, k, v)
    m.updated_at = c.now
    await c.session.flush()
    await enrichment_store.touch_users_of(c.session, m.id)  # type: ignore[arg-type]
    await c.session.commit()
    enrichment_store.forget()
    return await _mapping_out(c, m)


@endpoint("DELETE", "/enrichment-mappings/{id}", need="admin", tag=MTAG,
          summary="Delete an enrichment mapping (refused while a rule set maps through it)")
async def delete_enrichment_mapping(c: Call) -> dict:
    m = await get_or_404(c.session, EnrichmentMapping, c.path_int("id"), "enrichment mapping")
    users = await enrichment_store.rule_sets_using(c.session, m.id)  # type: ignore[arg-type]
    if users:
        names = ", ".join(f"channel {u.channel_id}" if u.channel_id else f"integration {u.integration_id}"
                          for u in users)
        raise Conflict(f"enrichment mapping {m.name!r} is used by the label enrichment of {names}; "
                       "remove those map rules first")
    await c.session.delete(m)
    await c.session.commit()
    return {}


@endpoint("GET", "/enrichment-mappings/{id}/rows", query=MappingRowQuery, response=MappingRowOut, paged=True, tag=MTAG,
          summary="List a mapping's rows by key")
async def list_enrichment_mapping_rows(c: Call) -> dict:
    m = await get_or_404(c.session, EnrichmentMapping, c.path_int("id"), "enrichment mapping")
    stmt = select(EnrichmentMappingRow).where(EnrichmentMappingRow.mapping_id == m.id).order_by(
        EnrichmentMappingRow.key)
    if c.query.key is not None:
        stmt = stmt.where(EnrichmentMappingRow.key == c.query.key)
    return await paged(c.session, stmt, c.query, _row_out)


@endpoint("PUT", "/enrichment-mappings/{id}/rows", body=MappingRowIn, response=MappingRowOut, need="admin", tag=MTAG,
          summary="Add a row, or replace the labels of the row with this key")
async def put_enrichment_mapping_row(c: Call) -> dict:
    m = await get_or_404(c.session, EnrichmentMapping, c.path_int("id"), "enrichment mapping")
    row = await mappings.upsert_row(c.session, m, c.body.key, dict(c.body.labels), c.now)
    await c.session.commit()
    enrichment_store.forget()
    return _row_out(row)


@endpoint("DELETE", "/enrichment-mapping-rows/{id}", need="admin", tag=MTAG, summary="Remove a mapping row")
async def delete_enrichment_mapping_row(c: Call) -> dict:
    row = await get_or_404(c.session, EnrichmentMappingRow, c.path_int("id"), "enrichment mapping row")
    await c.session.delete(row)
    await c.session.flush()
    await enrichment_store.touch_users_of(c.session, row.mapping_id)
    await c.session.commit()
    enrichment_store.forget()
    return {}


@endpoint("POST", "/enrichment-mappings/{id}/import", query=MappingImportQuery, response=MappingImportOut, need="admin",
          raw_body="text/csv", tag=MTAG,
          summary="Import rows from CSV: header <key label>,<result labels...>; replace=true removes unlisted keys")
async def import_enrichment_mapping(c: Call) -> dict:
    m = await get_or_404(c.session, EnrichmentMapping, c.path_int("id"), "enrichment mapping")
    text = await c.request.text()
    if not text.strip():
        raise InvalidInput("body: send the CSV as the request body")
    report = await mappings.import_rows(c.session, m, mappings.parse_csv(m, text), c.now, replace=c.query.replace)
    await c.session.commit()
    enrichment_store.forget()
    return report.__dict__


@endpoint("GET", "/enrichment-mappings/{id}/export", produces="text/csv", tag=MTAG,
          summary="Export a mapping's rows as CSV (importable again)")
async def export_enrichment_mapping(c: Call) -> web.Response:
    m = await get_or_404(c.session, EnrichmentMapping, c.path_int("id"), "enrichment mapping")
    rows = list((await c.session.execute(select(EnrichmentMappingRow).where(
        EnrichmentMappingRow.mapping_id == m.id).order_by(EnrichmentMappingRow.key))).scalars())
    return web.Response(text=mappings.to_csv(m, rows), content_type="text/csv")

