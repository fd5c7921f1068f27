"""/api/v1/mapping-tables: per platform, rows linking IM users to members; CSV import/export; auto-match."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from bot.api.common import get_or_404, paged, ts
from bot.api.framework import Call, Page, endpoint
from bot.keys import DIRECTORIES
from core.errors import Conflict, InvalidInput, NotFound
from core.models import MappingRow, Member
from mapping_tables import csv_io
from mapping_tables.directory import auto_match
from mapping_tables.formats import ID_TYPES, PLATFORMS, check_identity, platform_of
from mapping_tables.store import upsert

PLATFORM_NAMES = tuple(p.value for p in PLATFORMS) + ("lark",)
ENUMS = {"platform": PLATFORM_NAMES}


class TableOut(BaseModel):
    platform: str
    id_types: list[str]
    rows: int
    auto_match: bool


class RowIn(BaseModel):
    member_id: int
    im_user_id: str = Field(min_length=1, max_length=200)
    id_type: str | None = Field(default=None, description="defaults to the platform's main id type")


class RowOut(BaseModel):
    row_id: int
    platform: str
    member_id: int
    im_user_id: str
    id_type: str
    stale: bool
    created_at: int
    updated_at: int


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=True, description="report only; pass dry_run=false to apply")


class Rejected(BaseModel):
    line: int
    member: str
    im_user_id: str
    reason: str


class ImportOut(BaseModel):
    dry_run: bool
    added: int
    changed: int
    unchanged: int
    rejected: list[Rejected]


class MatchOut(BaseModel):
    matched: list[dict[str, Any]]
    already_linked: int
    unmatched: list[dict[str, Any]]


def row_out(r: MappingRow) -> dict:
    return {"row_id": r.id, "platform": r.platform, "member_id": r.member_id, "im_user_id": r.im_user_id,
            "id_type": r.id_type, "stale": r.stale, "created_at": ts(r.created_at), "updated_at": ts(r.updated_at)}


def _platform(c: Call):  # type: ignore[no-untyped-def]
    return platform_of(c.request.match_info["platform"])


@endpoint("GET", "/mapping-tables", response=TableOut, paged=True, query=Page,
          summary="The mapping table of each platform, with row counts", tag="mapping-tables")
async def list_tables(c: Call) -> dict:
    directories = c.request.app[DIRECTORIES]
    items = [{"platform": p.value, "id_types": list(ID_TYPES[p]), "rows": await csv_io.count(c.session, p),
              "auto_match": p in directories} for p in PLATFORMS]
    return {"items": items, "total": len(items), "has_next_page": False}


@endpoint("GET", "/mapping-tables/{platform}/rows", query=Page, response=RowOut, paged=True, path_enums=ENUMS,
          summary="Rows of a platform's mapping table", tag="mapping-tables")
async def list_rows(c: Call) -> dict:
    stmt = select(MappingRow).where(MappingRow.platform == _platform(c).value).order_by(MappingRow.id)
    return await paged(c.session, stmt, c.query, row_out)


@endpoint("POST", "/mapping-tables/{platform}/rows", body=RowIn, response=RowOut, status=201, need="admin",
          path_enums=ENUMS, summary="Link an IM user to a member", tag="mapping-tables")
async def add_row(c: Call) -> dict:
    platform = _platform(c)
    await get_or_404(c.session, Member, c.body.member_id, "member")
    try:
        id_type = check_identity(platform, c.body.im_user_id, c.body.id_type)
    except ValueError as exc:
        raise InvalidInput(f"im_user_id: {exc}") from None
    existing = (await c.session.execute(select(MappingRow).where(
        MappingRow.platform == platform.value, MappingRow.im_user_id == c.body.im_user_id))).scalar_one_or_none()
    if existing is not None and existing.member_id != c.body.member_id and not existing.stale:
        raise Conflict(f"im_user_id: {c.body.im_user_id} is already linked to member {existing.member_id}")
    result = await upsert(c.session, platform, c.body.member_id, c.body.im_user_id, id_type, c.now)
    await c.session.commit()
    return row_out(result.row)


@endpoint("DELETE", "/mapping-tables/{platform}/rows/{id}", need="admin", path_enums=ENUMS,
          summary="Remove a row", tag="mapping-tables")
async def delete_row(c: Call) -> dict:
    row = await get_or_404(c.session, MappingRow, c.path_int("id"), "mapping row")
    if row.platform != _platform(c).value:
        raise NotFound(f"mapping row {row.id} is not in the {_platform(c).value} table")
    await c.session.delete(row)
    await c.session.commit()
    return {}


@endpoint("POST", "/mapping-tables/{platform}/import", query=ImportQuery, response=ImportOut, need="admin",
          raw_body="text/csv", path_enums=ENUMS, tag="mapping-tables",
          summary="Import rows from CSV (columns member, im_user_id, id_type); dry_run=true only reports")
async def import_rows(c: Call) -> dict:
    text = await c.request.text()
    if not text.strip():
        raise InvalidInput("body: send the CSV as the request body")
    try:
        report = await csv_io.import_csv(c.session, _platform(c), text, c.now, dry_run=c.query.dry_run)
    except ValueError as exc:
        raise InvalidInput(f"body: {exc}") from None
    await c.session.commit()
    return report.as_dict()


@endpoint("GET", "/mapping-tables/{platform}/export", path_enums=ENUMS, produces="text/csv",
          summary="Export the table as CSV (importable again)", tag="mapping-tables")
async def export_rows(c: Call) -> web.Response:
    platform = _platform(c)
    return web.Response(text=await csv_io.export_csv(c.session, platform), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{platform.value}-mapping.csv"'})


@endpoint("POST", "/mapping-tables/{platform}/auto-match", response=MatchOut, need="admin", path_enums=ENUMS,
          summary="Match members to the platform's directory by email or phone", tag="mapping-tables")
async def match_rows(c: Call) -> dict:
    platform = _platform(c)
    directory = c.request.app[DIRECTORIES].get(platform)
    if directory is None:
        raise InvalidInput(f"no {platform.value} IM app is configured, so its directory cannot be searched")
    report = await auto_match(c.session, directory, c.now)
    await c.session.commit()
    return report.as_dict()
