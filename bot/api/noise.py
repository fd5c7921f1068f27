"""/api/v1/channels/{id}/{drop,silence,inhibit}-rules and /api/v1/{kind}-rules/{id}; quick silence from an incident."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from bot.api.incidents import actor, memberless_in_scope
from core import silence_similar as similar
from core.models import Channel, DropRule, InhibitRule, SilenceRule
from core.noise import DropSpec, InhibitSpec, SilenceSpec
from core.types import Platform

Status = Literal["enabled", "disabled"]


def _out(kind: str, row: SQLModel, spec: type[BaseModel]) -> dict[str, Any]:
    data = {f: getattr(row, f) for f in spec.model_fields}
    for f in ("starts_at", "ends_at"):
        if f in data:
            data[f] = data[f].isoformat() if data[f] else None
    return {**data, "rule_id": row.id, "kind": kind, "channel_id": row.channel_id, "status": row.status,  # type: ignore[attr-defined]
            "created_at": ts(row.created_at), "updated_at": ts(row.updated_at)}  # type: ignore[attr-defined]


def _crud(kind: str, model: type[SQLModel], spec: type[BaseModel]) -> None:
    """The five endpoints of one rule kind; the spec model validates (conditions compile, windows make sense)."""
    create_body = create_model(f"{spec.__name__}In", __base__=spec, status=(Status, "enabled"))
    patch_body = create_model(f"{spec.__name__}Patch", rule=(spec | None, Field(default=None, description=
                              "replaces the whole rule")), status=(Status | None, None))
    out = create_model(f"{spec.__name__}Out", __base__=spec, rule_id=(int, ...), kind=(str, ...),
                       channel_id=(int, ...), status=(str, ...), created_at=(int, ...), updated_at=(int, ...))
    tag = f"{kind}-rules"

    async def create(c: Call) -> dict:
        ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
        row = model(channel_id=ch.id, **c.body.model_dump(mode="python"), created_at=c.now, updated_at=c.now)
        c.session.add(row)
        await c.session.commit()
        return _out(kind, row, spec)

    async def list_(c: Call) -> dict:
        ch = await get_or_404(c.session, Channel, c.path_int("id"), "channel")
        stmt = select(model).where(model.channel_id == ch.id).order_by(model.id)  # type: ignore[attr-defined]
        return await paged(c.session, stmt, c.query, lambda r: _out(kind, r, spec))

    async def get(c: Call) -> dict:
        return _out(kind, await get_or_404(c.session, model, c.path_int("id"), f"{kind} rule"), spec)

    async def patch(c: Call) -> dict:
        row = await get_or_404(c.session, model, c.path_int("id"), f"{kind} rule")
        if c.body.rule is not None:
            for k, v in c.body.rule.model_dump(mode="python").items():
                setattr(row, k, v)
        if c.body.status is not None:
            row.status = c.body.status  # type: ignore[attr-defined]
        row.updated_at = c.now  # type: ignore[attr-defined]
        await c.session.commit()
        return _out(kind, row, spec)

    async def delete(c: Call) -> dict:
        row = await get_or_404(c.session, model, c.path_int("id"), f"{kind} rule")
        await c.session.delete(row)
        await c.session.commit()
        return {}

    for fn, name in ((create, "create"), (list_, "list"), (get, "get"), (patch, "update"), (delete, "delete")):
        fn.__name__ = f"{name}_{kind}_rule"
    endpoint("POST", f"/channels/{{id}}/{kind}-rules", body=create_body, response=out, status=201, need="admin",
             summary=f"Create a {kind} rule", tag=tag)(create)
    endpoint("GET", f"/channels/{{id}}/{kind}-rules", query=Page, response=out, paged=True,
             summary=f"List a channel's {kind} rules", tag=tag)(list_)
    endpoint("GET", f"/{kind}-rules/{{id}}", response=out, summary=f"Get a {kind} rule", tag=tag)(get)
    endpoint("PATCH", f"/{kind}-rules/{{id}}", body=patch_body, response=out, need="admin",
             summary=f"Replace, enable or disable a {kind} rule", tag=tag)(patch)
    endpoint("DELETE", f"/{kind}-rules/{{id}}", summary=f"Delete a {kind} rule", tag=tag, need="admin")(delete)


_crud("drop", DropRule, DropSpec)
_crud("silence", SilenceRule, SilenceSpec)
_crud("inhibit", InhibitRule, InhibitSpec)


class QuickSilence(BaseModel):
    minutes: int = Field(default=1440, ge=1, le=43200, description="how long; default one day")


@endpoint("POST", "/incidents/{id}/silence", body=QuickSilence, response=create_model(
    "SilenceCreated", rule_id=(int, ...), ends_at=(str, ...)), status=201, need="act", tag="silence-rules",
    summary="Silence alerts like this incident's (same labels) for a while: the card's 'Silence similar'. "
            "The incident's channel's team scope applies, as for every incident action",
    errors=(400, 401, 403, 404, 409))
async def silence_similar(c: Call) -> dict:
    iid = c.path_int("id")
    await memberless_in_scope(c, [iid])
    row = await similar.silence_similar(c.session, iid, actor(c), minutes=c.body.minutes, now=c.now,
                                        source=Platform.API.value)
    await c.session.commit()
    return {"rule_id": row.id, "ends_at": row.ends_at.isoformat()}
