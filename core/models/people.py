"""Members, teams and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


class Member(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    email: str | None = Field(default=None, max_length=254, index=True)
    phone: str | None = Field(default=None, max_length=32)
    role: str = Field(default="responder", max_length=16)
    time_zone: str = Field(default="UTC", max_length=64)
    # Personal notification preferences: media per severity, and the fallback order when one fails.
    preferences: dict[str, Any] = json_col({})
    fallback: list[str] = json_col([])
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=500)
    member_ids: list[int] = json_col([])
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class ApiToken(SQLModel, table=True):
    """An Open API bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    role: str = Field(default="admin", max_length=16)
    created_at: datetime | None = time_col()
