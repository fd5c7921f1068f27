"""Custom fields: what an admin defines once per account and responders fill in on each incident."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


class CustomField(SQLModel, table=True):
    """One field definition (core/custom_fields.py says what each type holds); the values live on the
    incident (`Incident.fields`, by `name`), so renaming is not offered: the name is the stable key."""

    __tablename__ = "custom_field"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40, unique=True)
    display_name: str = Field(max_length=100)
    description: str = Field(default="", max_length=500)
    type: str = Field(max_length=16)  # text | single_select | multi_select | checkbox
    options: list[str] = json_col([])
    default_value: Any = json_col()
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()
