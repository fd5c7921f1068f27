"""Escalation decisions, pure: which rule applies, what a step pages, when the next step is due.

An escalation rule (stored as EscalationRule.definition) is validated by `RuleDefinition`.
The engine (core/paging.py) freezes the definition onto the incident when escalation starts
(the snapshot), so editing a rule never changes escalations already running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from core.conditions import ConditionError, compile_tree
from core.types import Progress
from core.zones import check_zone

MEDIA = ("im", "sms", "voice", "email", "app")  # app: Web Push to the Vigil app (bot/media/web_push.py)
Medium = Literal["im", "sms", "voice", "email", "app"]


class ScheduleRole(BaseModel):
    """One on-call role of a schedule: whoever fills that role now (core/schedules.py)."""

    schedule_id: int = Field(ge=1, le=2**53)
    role_id: int = Field(ge=1, le=2**53, description="an on-call role (GET /oncall-roles)")


class Targets(BaseModel):
    member_ids: list[int] = Field(default_factory=list, max_length=100)
    team_ids: list[int] = Field(default_factory=list, max_length=20)
    schedule_ids: list[int] = Field(default_factory=list, max_length=20, description="everyone on call in them")
    schedule_roles: list[ScheduleRole] = Field(default_factory=list, max_length=20,
                                               description="one role of a schedule each, e.g. its secondary")

    def empty(self) -> bool:
        return not (self.member_ids or self.team_ids or self.schedule_ids or self.schedule_roles)


class ImChat(BaseModel):
    """A group chat of an IM app that gets the interactive card (bot/chat/group_cards.py); which ids a platform
    takes is checked against the app's platform where the rule is saved (core/im_chats.py)."""

    im_app_id: int = Field(ge=1, le=2**53)
    chat_id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$",
                         description="Slack channel id, Feishu/Lark chat_id, DingTalk openConversationId, "
                         "WeCom appchat chatid, Teams channel or group chat conversation id")


class Level(BaseModel):
    """One escalation level: whom to page, how, which group-chat bots and IM app group chats to post to, how long
    to wait."""

    targets: Targets = Field(default_factory=Targets)
    media: list[Medium] | None = Field(default=None, description="None: follow each member's preferences")
    bot_ids: list[int] = Field(default_factory=list, max_length=20)
    im_chats: list[ImChat] = Field(default_factory=list, max_length=20,
                                   description="group chats into which the IM app posts the interactive card")
    wait_minutes: float = Field(default=30, ge=0, le=720, description="before the next level")

    @model_validator(mode="after")
    def _someone(self) -> Level:
        if self.targets.empty() and not self.bot_ids and not self.im_chats:
            raise ValueError("a level needs at least one target (member, team, schedule), bot or IM group chat")
        chats = [(c.im_app_id, c.chat_id) for c in self.im_chats]
        if len(set(chats)) != len(chats):
            raise ValueError("im_chats: each group chat once")
        if self.media is not None and not self.media:
            raise ValueError("media: give at least one medium, or null to follow preferences")
        return self


class TimeWindow(BaseModel):
    """When a rule applies: from `start` to `end` (HH:MM, may cross midnight) on `days` (0 = Monday)."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    days: list[int] = Field(default_factory=lambda: list(range(7)))
    time_zone: str = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[int]) -> list[int]:
        if not days or any(d not in range(7) for d in days):
            raise ValueError("days: list of weekdays 0 (Monday) .. 6 (Sunday), at least one")
        return days

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, tz: str) -> str:
        check_zone(tz, "time_zone")
        return tz

    def contains(self, at: datetime) -> bool:
        from zoneinfo import ZoneInfo

        local = at.astimezone(ZoneInfo(self.time_zone))
        start, end = time.fromisoformat(self.start), _end(self.end)
        t = local.time()
        if start < end:
            return local.weekday() in self.days and start <= t < end
        # crosses midnight: the part after midnight belongs to the previous day's window
        if t >= start:
            return local.weekday() in self.days
        return t < end and (local.weekday() - 1) % 7 in self.days


def _end(s: str) -> time:
    return time.max if s == "24:00" else time.fromisoformat(s)


class RuleDefinition(BaseModel):
    """A channel's escalation rule."""

    filters: list[list[dict[str, Any]]] = Field(default_factory=list, description="OR of AND conditions")
    time_windows: list[TimeWindow] = Field(default_factory=list, description="empty: always")
    levels: list[Level] = Field(min_length=1, max_length=10)
    repeat: int = Field(default=0, ge=0, le=100, description="times to repeat the last level")
    repeat_until_ack: bool = Field(default=False, description="repeat the last level with no cap")
    repeat_interval_minutes: float = Field(default=10, ge=1, le=1440)
    stop_on: Literal["ack", "close"] = "ack"
    delay_seconds: int = Field(default=0, ge=0, le=3600, description="wait before the first page")

    @field_validator("filters")
    @classmethod
    def _filters(cls, filters: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        try:
            compile_tree(filters)
        except ConditionError as exc:
            raise ValueError(str(exc)) from None
        return filters

    def applies(self, subject: dict[str, Any], now: datetime) -> bool:
        if self.time_windows and not any(w.contains(now) for w in self.time_windows):
            return False
        return compile_tree(self.filters).matches(subject)


def select_rule(rules: list[tuple[int, int, RuleDefinition]], subject: dict[str, Any], now: datetime) -> int | None:
    """The id of the first rule (lowest priority value, then id) that applies, or None."""
    for rule_id, _prio, definition in sorted(rules, key=lambda r: (r[1], r[0])):
        if definition.applies(subject, now):
            return rule_id
    return None


@dataclass(frozen=True)
class Position:
    level: int
    loop: int


@dataclass(frozen=True)
class Step:
    """What an escalation step does now: page `page`, then move to `after` at `due` (None: finished)."""

    page: Position
    after: Position | None
    due: datetime | None


def plan_step(rule: RuleDefinition, at: Position, now: datetime) -> Step:
    """Page level `at` now and decide where escalation goes next, and when."""
    level = rule.levels[at.level]
    if at.level + 1 < len(rule.levels):
        return Step(at, Position(at.level + 1, 0), now + timedelta(minutes=level.wait_minutes))
    if rule.repeat_until_ack or at.loop < rule.repeat:
        return Step(at, Position(at.level, at.loop + 1), now + timedelta(minutes=rule.repeat_interval_minutes))
    return Step(at, None, None)


def next_level(rule: RuleDefinition, at: Position) -> Position:
    """Where a manual escalate jumps: the next level, or another round of the last one."""
    if at.level + 1 < len(rule.levels):
        return Position(at.level + 1, 0)
    return Position(at.level, at.loop + 1)


Gate = Literal["go", "stop", "wait"]


def gate(rule: RuleDefinition, progress: Progress, snoozed_until: datetime | None, now: datetime) -> Gate:
    """Whether paging may go on now: stop when closed (or acknowledged, if the rule stops at ack),
    wait while snoozed."""
    if progress is Progress.CLOSED:
        return "stop"
    if snoozed_until is not None and snoozed_until > now:
        return "wait"
    if progress is Progress.PROCESSING and rule.stop_on == "ack":
        return "stop"
    return "go"
