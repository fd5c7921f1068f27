"""Plain value types shared by core, webhooks/ and bot/ (no I/O, no ORM)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Severity(str, enum.Enum):
    CRITICAL = "Critical"
    WARNING = "Warning"
    INFO = "Info"

    @property
    def rank(self) -> int:
        """Higher is more severe; used for max() over alerts of an incident."""
        return {"Info": 1, "Warning": 2, "Critical": 3}[self.value]


def urgency_of(severity: str | None) -> int:
    """A job's urgency for an incident of `severity` (core.models.Job.urgency): lower runs first."""
    try:
        return 3 - Severity(severity).rank
    except ValueError:
        return 1


class EventStatus(str, enum.Enum):
    """Status carried by one alert event; Ok means recovered."""

    CRITICAL = "Critical"
    WARNING = "Warning"
    INFO = "Info"
    OK = "Ok"

    @property
    def severity(self) -> Severity | None:
        return None if self is EventStatus.OK else Severity(self.value)


class Progress(str, enum.Enum):
    TRIGGERED = "Triggered"
    PROCESSING = "Processing"
    CLOSED = "Closed"


class Role(str, enum.Enum):
    ADMIN = "admin"
    RESPONDER = "responder"
    OBSERVER = "observer"


_ROLE_RANK = {Role.OBSERVER: 0, Role.RESPONDER: 1, Role.ADMIN: 2}


def lower_role(a: Role, b: Role) -> Role:
    """The less powerful of two roles: a member's token never does more than the member may now."""
    return a if _ROLE_RANK[a] <= _ROLE_RANK[b] else b


class Platform(str, enum.Enum):
    """Chat platforms and other action sources (rule 1 of DESIGN.md: one path for every action)."""

    API = "api"
    WEB = "web"
    SLACK = "slack"
    FEISHU = "feishu"
    DINGTALK = "dingtalk"
    WECOM = "wecom"
    TEAMS = "teams"
    TELEGRAM = "telegram"
    ZOOM = "zoom"
    VOICE = "voice"
    SYSTEM = "system"


@dataclass(frozen=True)
class Image:
    src: str
    alt: str = ""
    href: str = ""


@dataclass
class AlertEvent:
    """One normalised alert event, whatever format it arrived in (standard, Prometheus, ...).

    Parsers in webhooks/ produce these; core.ingest turns them into alerts and incidents.
    `alert_key` is always set by the parser (generated when the source gave none).
    """

    event_status: EventStatus
    title: str
    alert_key: str
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    event_time: datetime | None = None
    images: list[Image] = field(default_factory=list)
    title_rule: str = ""
