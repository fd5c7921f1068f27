"""IM apps, mapping tables (IM user <-> member) and the cards posted for each incident."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import UTCDateTime, json_col, time_col


class ImApp(SQLModel, table=True):
    """Credentials of one chat platform app (Slack, Feishu/Lark, DingTalk, WeCom, Teams); secrets encrypted."""

    __tablename__ = "im_app"
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16, index=True)
    name: str = Field(max_length=100)
    settings: dict[str, Any] = json_col({})
    secrets: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    status: str = Field(default="enabled", max_length=16)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class MappingRow(SQLModel, table=True):
    """A row of a platform's mapping table: this IM identity is that member."""

    __tablename__ = "mapping_row"
    __table_args__ = (sa.UniqueConstraint("platform", "im_user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    member_id: int = Field(foreign_key="member.id", index=True)
    im_user_id: str = Field(max_length=200)
    id_type: str = Field(default="user_id", max_length=32)
    stale: bool = False
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class CardRef(SQLModel, table=True):
    """A card a platform accepted for an incident, so every state change can update it in place."""

    __tablename__ = "card_ref"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    platform: str = Field(max_length=16)
    conversation_id: str = Field(max_length=200)
    message_id: str = Field(max_length=200)
    extra: dict[str, Any] = json_col({})
    created_at: datetime | None = time_col()


class Bot(SQLModel, table=True):
    """A group-chat bot (Feishu, DingTalk, WeCom, Slack, Zoom, Telegram webhook); URL and secret encrypted."""

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=16)
    alias: str = Field(max_length=100)
    credentials: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    severities: list[str] = json_col([])
    event_types: list[str] = json_col([])
    at_all: bool = False
    chat_ids: list[str] = json_col([])
    # Feishu: the custom bot's security keyword; not a secret (the group sees it in every post).
    keyword: str = Field(default="", max_length=100)
    status: str = Field(default="enabled", max_length=16)
    created_at: datetime | None = time_col()
    updated_at: datetime | None = time_col()


class BotPost(SQLModel, table=True):
    """One post to a group-chat bot (a message or a digest): what the bot's rate limit counts.

    Written before the post goes out, so processes sharing the database never overbook a bot; rows
    older than the bot's longest limit window are pruned.
    """

    __tablename__ = "bot_post"
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(index=True)
    at: datetime | None = time_col()


class SeenCallback(SQLModel, table=True):
    """A chat platform callback already taken (its own unique id, hashed), kept until no copy of it could pass
    verification any more: the replay cache every process shares (bot/chat/replay.py)."""

    __tablename__ = "seen_callback"
    key: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
