"""Label enrichment: rule sets per channel or integration, and the mappings their map rules look up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


def new_version() -> str:
    return uuid.uuid4().hex


class LabelEnrichment(SQLModel, table=True):
    """The enrichment rules (core.enrichment) of one channel or one integration: exactly one is set."""

    __tablename__ = "label_enrichment"
    __table_args__ = (sa.CheckConstraint("(channel_id IS NULL) != (integration_id IS NULL)",
                                         name="ck_label_enrichment_one_scope"),)
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int | None = Field(default=None, sa_column=sa.Column(
        sa.Integer, sa.ForeignKey("channel.id", ondelete="CASCADE"), unique=True, nullable=True))
    integration_id: int | None = Field(default=None, sa_column=sa.Column(
        sa.Integer, sa.ForeignKey("integration.id", ondelete="CASCADE"), unique=True, nullable=True))
    rules: list[dict[str, Any]] = json_col([])
    status: str = Field(default="enabled", max_length=16)
    # Changes with every edit of the rules or of a mapping they use: ingest compiles a set once per version.
    version: str = Field(default_factory=new_version, max_length=32)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class EnrichmentMapping(SQLModel, table=True):
    """A small table of key -> labels: the value of `key_label` (e.g. host) finds a row (e.g. team, owner)."""

    __tablename__ = "enrichment_mapping"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=500)
    key_label: str = Field(max_length=128)
    result_labels: list[str] = json_col([])
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class EnrichmentMappingRow(SQLModel, table=True):
    __tablename__ = "enrichment_mapping_row"
    __table_args__ = (sa.UniqueConstraint("mapping_id", "key", name="uq_enrichment_mapping_row_key"),)
    id: int | None = Field(default=None, primary_key=True)
    mapping_id: int = Field(sa_column=sa.Column(
        sa.Integer, sa.ForeignKey("enrichment_mapping.id", ondelete="CASCADE"), nullable=False))
    key: str = Field(max_length=255)
    labels: dict[str, str] = json_col({})
    updated_at: datetime | None = time_col()
