"""Subscription rules, pure: what a rule says, which rules an incident event matches, and who is told how.

A subscriber (a member, or each member of a team) is told about an incident without becoming one of its
responders: a subscription notice never stops, advances or restarts escalation (core/paging.py keeps
its deliveries apart). The store side is core/subscription_notices.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.conditions import CompiledTree, ConditionError, compile_tree
from core.notify import media_for

# The incident events a rule may notify on: a new incident always makes sense; ack and close are opt-in.
EVENTS = ("i_new", "i_ack", "i_rslv")
EventName = Literal["i_new", "i_ack", "i_rslv"]
Medium = Literal["im", "sms", "voice", "email", "app"]


class SubscriptionSpec(BaseModel):
    """A subscription rule as written through the Open API; validating it compiles its conditions."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    member_id: int | None = Field(default=None, ge=1, description="the subscribing member (or team_id)")
    team_id: int | None = Field(default=None, ge=1, description="the subscribing team: each of its members")
    channel_ids: list[int] = Field(default_factory=list, max_length=100,
                                   description="channels whose incidents count; empty: every channel")
    filters: list[list[dict[str, Any]]] = Field(
        default_factory=list, max_length=50,
        description="match conditions on the incident (core/conditions.py, either wire form): OR of AND "
                    "groups; empty: every incident of the channels")
    events: list[EventName] = Field(default_factory=lambda: ["i_new"], min_length=1,
                                    description="i_new (triggered), i_ack (acknowledged), i_rslv (closed)")
    media: list[Medium] = Field(default_factory=list, max_length=5,
                                description="how to notify; empty: each member's preferences for the severity")

    @field_validator("filters")
    @classmethod
    def _compiles(cls, v: list[Any]) -> list[Any]:
        try:
            compile_tree(v, "filters")
        except ConditionError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("channel_ids", "events", "media")
    @classmethod
    def _unique(cls, v: list[Any]) -> list[Any]:
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _one_subscriber(self) -> SubscriptionSpec:
        if (self.member_id is None) == (self.team_id is None):
            raise ValueError("give exactly one of member_id and team_id (who subscribes)")
        return self


@dataclass(frozen=True)
class CompiledRule:
    """One enabled rule, ready to match many incident events."""

    rule_id: int
    member_id: int | None
    team_id: int | None
    channels: frozenset[int]
    filters: CompiledTree
    events: frozenset[str]
    media: tuple[str, ...]

    def wants(self, kind: str, channel_id: int | None, subj: Mapping[str, Any]) -> bool:
        return (kind in self.events and (not self.channels or channel_id in self.channels)
                and self.filters.matches(subj))


def compile_rule(rule_id: int, *, member_id: int | None, team_id: int | None, channel_ids: Iterable[int],
                 filters: Any, events: Iterable[str], media: Sequence[str]) -> CompiledRule:
    """Raises ConditionError when stored filters no longer compile (they were valid when saved)."""
    return CompiledRule(rule_id, member_id, team_id, frozenset(channel_ids), compile_tree(filters),
                        frozenset(events), tuple(media))


@dataclass
class Subscriber:
    """A member to notify of one incident event, and why: the rules that matched and the media they ask."""

    member_id: int
    rule_ids: list[int] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    follows_preferences: bool = False

    def chosen_media(self, severity: str, preferences: Mapping[str, Any] | None) -> list[str]:
        """Every medium a matched rule asks for; a rule without media brings the member's own preferences."""
        chosen = list(self.media)
        if self.follows_preferences:
            chosen += media_for(severity, dict(preferences or {}), None)
        return list(dict.fromkeys(chosen))


def subscribers(matched: Iterable[CompiledRule], team_members: Mapping[int, Sequence[int]]) -> list[Subscriber]:
    """One entry per member reached by the matched rules (directly or through a team), in first-reached
    order: two rules reaching the same member still notify them once per medium."""
    found: dict[int, Subscriber] = {}
    for rule in matched:
        members = [rule.member_id] if rule.member_id is not None else list(team_members.get(rule.team_id or 0, ()))
        for member_id in dict.fromkeys(members):
            sub = found.setdefault(member_id, Subscriber(member_id))
            sub.rule_ids.append(rule.rule_id)
            if rule.media:
                sub.media += [m for m in rule.media if m not in sub.media]
            else:
                sub.follows_preferences = True
    return list(found.values())
