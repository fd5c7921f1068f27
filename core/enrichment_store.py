"""Label enrichment on the ingest path: each channel's and integration's compiled rule set, cached by version.

Ingest calls `enrich_and_route` for every batch. An integration's rules run first, so routing a shared
integration's event already sees the labels they add; then the rules of the channel the event was routed
to. Both run before dedup, grouping and noise rules, which all see the enriched labels.

Cost on the hot path: a process keeps each scope's compiled rule set (or "none") and asks the database
for the current versions of the scopes a batch touches at most every `CHECK_SECONDS`, in one query; a
rule set is compiled (regexes, mapping rows) only when its version changed. Edits through the Open API
of this process are seen at once (`forget`); other processes see them within `CHECK_SECONDS`, as they
see an integration's own settings (webhooks/routes.py CACHE_TTL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.enrichment import Enricher, EnrichmentError, MappingData, compile_rules, mapping_ids
from core.models import EnrichmentMapping, EnrichmentMappingRow, LabelEnrichment
from core.models.enrichment import new_version
from core.types import AlertEvent

log = logging.getLogger("vigil.enrichment")
CHECK_SECONDS = 5.0
Scope = tuple[str, int]  # ("channel" | "integration", id)

# scope -> (checked at, monotonic; version or "" when the scope has no enabled rules; the compiled set)
_CACHE: dict[Scope, tuple[float, str, Enricher | None]] = {}
_CACHE_SIZE = 4096


def forget() -> None:
    """Drop every cached rule set: the next batch reads the versions again (called after an edit)."""
    _CACHE.clear()


async def _refresh(session: AsyncSession, scopes: Iterable[Scope], now: float) -> None:
    stale = [s for s in scopes if s not in _CACHE or now - _CACHE[s][0] >= CHECK_SECONDS]
    if not stale:
        return
    channels = [i for kind, i in stale if kind == "channel"]
    integrations = [i for kind, i in stale if kind == "integration"]
    rows = (await session.execute(select(LabelEnrichment.channel_id, LabelEnrichment.integration_id,
                                         LabelEnrichment.version).where(
        LabelEnrichment.status == "enabled",
        or_(LabelEnrichment.channel_id.in_(channels), LabelEnrichment.integration_id.in_(integrations))))).all()
    versions: dict[Scope, str] = {("channel", c) if c is not None else ("integration", i): v for c, i, v in rows}
    if len(_CACHE) + len(stale) > _CACHE_SIZE:
        _CACHE.clear()
    for scope in stale:
        version = versions.get(scope, "")
        cached = _CACHE.get(scope)
        if cached is not None and cached[1] == version:
            _CACHE[scope] = (now, version, cached[2])
            continue
        _CACHE[scope] = (now, version, await _compile(session, scope) if version else None)


async def _compile(session: AsyncSession, scope: Scope) -> Enricher | None:
    column = LabelEnrichment.channel_id if scope[0] == "channel" else LabelEnrichment.integration_id
    row = (await session.execute(select(LabelEnrichment).where(column == scope[1]))).scalar_one_or_none()
    if row is None or row.status != "enabled":
        return None
    try:
        return compile_rules(row.rules, await load_mappings(session, mapping_ids(row.rules)))
    except EnrichmentError:
        # Validated when saved; a set that no longer compiles must not stop alerts from coming in.
        log.exception("label enrichment of %s %s does not compile; events pass unenriched", *scope)
        return None


async def load_mappings(session: AsyncSession, ids: list[int]) -> dict[int, MappingData]:
    if not ids:
        return {}
    mappings = {m.id: m for m in (await session.execute(
        select(EnrichmentMapping).where(EnrichmentMapping.id.in_(ids)))).scalars()}
    rows: dict[int, dict[str, dict[str, str]]] = {i: {} for i in mappings}
    for mapping_id, key, labels in await session.execute(select(
            EnrichmentMappingRow.mapping_id, EnrichmentMappingRow.key, EnrichmentMappingRow.labels)
            .where(EnrichmentMappingRow.mapping_id.in_(list(mappings)))):
        rows[mapping_id][key] = labels
    return {i: MappingData(m.key_label, rows[i]) for i, m in mappings.items()}


def _enricher(scope: Scope) -> Enricher | None:
    cached = _CACHE.get(scope)
    return cached[2] if cached is not None else None


async def enrich_and_route(session: AsyncSession, items: list[tuple[Any, AlertEvent]],
                           route: Callable[[Any, AlertEvent], int | None]) -> list[tuple[Any, AlertEvent, int | None]]:
    """(integration ref, event) -> (ref, enriched event, channel id): integration rules, routing, channel rules."""
    now = time.monotonic()
    await _refresh(session, {("integration", ref.id) for ref, _ in items}, now)
    routed = []
    for ref, ev in items:
        enricher = _enricher(("integration", ref.id))
        if enricher is not None:
            ev = enricher.apply(ev)
        routed.append((ref, ev, route(ref, ev)))
    channels = {("channel", cid) for _, _, cid in routed if cid is not None}
    if not channels:
        return routed
    await _refresh(session, channels, now)
    if not any(_enricher(s) is not None for s in channels):
        return routed
    out = []
    for ref, ev, cid in routed:
        enricher = _enricher(("channel", cid)) if cid is not None else None
        out.append((ref, enricher.apply(ev) if enricher is not None else ev, cid))
    return out


async def touch_users_of(session: AsyncSession, mapping_id: int) -> None:
    """A mapping changed: give every rule set that maps through it a new version, so ingest recompiles it."""
    rows = (await session.execute(select(LabelEnrichment.id, LabelEnrichment.rules))).all()
    users = [i for i, rules in rows if mapping_id in mapping_ids(rules or [])]
    if users:
        await session.execute(update(LabelEnrichment).where(LabelEnrichment.id.in_(users))
                              .values(version=new_version()).execution_options(synchronize_session=False))


async def rule_sets_using(session: AsyncSession, mapping_id: int) -> list[LabelEnrichment]:
    rows = (await session.execute(select(LabelEnrichment).order_by(LabelEnrichment.id))).scalars()
    return [r for r in rows if mapping_id in mapping_ids(r.rules or [])]
