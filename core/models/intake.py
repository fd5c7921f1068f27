"""Intake beyond the Event API's happy path: events no channel took (unrouted), and e-mail integrations' rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.base import json_col, time_col


def _integration_fk() -> Any:
    # Deleting an integration deletes what it recorded: the records mean nothing without it.
    return sa.Column(sa.Integer, sa.ForeignKey("integration.id", ondelete="CASCADE"), nullable=False)


class UnroutedEvent(SQLModel, table=True):
    """An alert event an integration received but no channel took, kept so an admin can see why.

    Bounded: only the latest few per integration are kept (core/unrouted.py prunes the rest).
    """

    __tablename__ = "unrouted_event"
    __table_args__ = (sa.Index("ix_unrouted_event_integration_id_id", "integration_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    integration_id: int = Field(sa_column=_integration_fk())
    received_at: datetime | None = time_col()
    alert_key: str = Field(default="", max_length=255)
    event_status: str = Field(max_length=16)
    title: str = Field(default="", max_length=512)
    labels: dict[str, str] = json_col({})
    channel_id: int | None = None  # the channel routing chose, when it was missing or disabled
    reason: str = Field(max_length=300)


class MailRules(SQLModel, table=True):
    """How an e-mail integration turns a message into an alert event (webhooks/email.py `MailRules`)."""

    __tablename__ = "mail_rules"
    integration_id: int = Field(sa_column=sa.Column(
        sa.Integer, sa.ForeignKey("integration.id", ondelete="CASCADE"), primary_key=True))
    rules: dict[str, Any] = json_col({})
    updated_at: datetime | None = time_col()
