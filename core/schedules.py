"""On-call schedules, pure: layers of rotations, restrictions and overrides -> who is on call at t.

Rules (each one is tested in tests/core/test_schedules.py):

* Precedence: an override beats every layer; among layers, the one LATER in `Schedule.layers` is the
  higher layer and wins wherever it has someone on call (as in PagerDuty, where layer 2 beats layer 1).
  A layer with nobody on call at t (not started, ended, outside its restrictions) lets lower layers show.
* Overrides may not overlap each other: that is a configuration error naming both overrides.
* Turns: slot 0 of `Layer.members` is on call from `Layer.start` until the first handoff after it, then
  slot 1, and so on round-robin. Handoffs fall on the layer's handoff grid: the latest handoff at or before
  `start` is the grid's origin (so a layer starting mid-turn gives slot 0 a short first turn), and every
  `rotation.value` units after it. Without `handoff_time` (and `handoff_weekday`) the grid starts at `start`.
* Daily and weekly rotations step in the schedule's LOCAL wall time, so a 09:00 handoff stays at 09:00
  across DST changes (the turn is 23 or 25 real hours long then). Hourly rotations step in real elapsed time.
* Wall times that do not exist or exist twice are resolved as RFC 5545 section 3.3.5 and java.time do (and
  as zoneinfo's fold=0 does): a time inside a spring-forward gap is read with the offset from before the gap,
  so it moves later by the gap length (02:30 on 2026-03-08 in America/New_York is 03:30 EDT, exactly 24 h
  after the previous day's 02:30 handoff); a time inside a fall-back fold means its first occurrence.
* Restrictions cut the layer's coverage to their windows (in the schedule's time zone) but never shift turns.
  A daily window whose end is not after its start crosses midnight; a weekly window runs from
  start_weekday start_time to the next end_weekday end_time. Weekdays are 0 = Monday .. 6 = Sunday.
* Instants are compared and returned in UTC: comparing two datetimes of the same zone compares wall times,
  which is wrong inside a fold.
* Teams are opaque participants here; expanding a team to its members is the caller's job.
* Roles (primary, secondary...): a layer may fill an on-call role (`Layer.role_id`). Layers compete only with
  layers of the same role (no role is a role of its own), so with roles several people are on call at once:
  one answer per role. An override with a `role_id` replaces that role's layers only; one without replaces
  every layer of every role, as before. Asked for one role, the answer is that role's (or an every-role
  override's); asked for none, it is everyone on call. A schedule without roles answers as it always did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from core.errors import InvalidInput

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ScheduleError(InvalidInput):
    """A schedule (or a query on it) is invalid; the message names the field, e.g. `layers[0].members`."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MemberRef(_Model):
    """A member taking part in a rotation or override."""

    member_id: int = Field(ge=1)


class TeamRef(_Model):
    """A team taking part as one opaque participant; a resolver elsewhere expands it to members."""

    team_id: int = Field(ge=1)


def _participant_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = {"member_id", "team_id"} & value.keys()
        return keys.pop() if len(keys) == 1 else None
    return "member_id" if isinstance(value, MemberRef) else "team_id" if isinstance(value, TeamRef) else None


Participant = Annotated[
    Annotated[MemberRef, Tag("member_id")] | Annotated[TeamRef, Tag("team_id")],
    Discriminator(_participant_kind, custom_error_type="participant",
                  custom_error_message='must be {"member_id": <id>} or {"team_id": <id>}'),
]
Slot = tuple[Participant, ...]


def _no_duplicates(participants: tuple[MemberRef | TeamRef, ...]) -> None:
    if len(set(participants)) != len(participants):
        raise ValueError("lists the same participant twice")


def _wall_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("is a wall time in the schedule's time zone; drop the UTC offset")
    return value


class Rotation(_Model):
    """How long a turn lasts and where handoffs fall (in the schedule's time zone)."""

    unit: Literal["hours", "days", "weeks"]
    value: int = Field(ge=1, le=1000)
    handoff_time: time | None = Field(default=None, description="default: the layer start's local time")
    handoff_weekday: int | None = Field(default=None, ge=0, le=6, validate_default=True,
                                        description="weeks only, 0 = Monday; default: the start's weekday")

    @field_validator("handoff_time")
    @classmethod
    def _handoff_time(cls, value: time | None) -> time | None:
        return None if value is None else _wall_time(value)

    @field_validator("handoff_weekday")
    @classmethod
    def _weekday_only_weekly(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("unit") not in ("weeks", None):
            raise ValueError("only weekly rotations have a handoff weekday")
        return value


class Restriction(_Model):
    """A window when the layer is on duty: daily (no weekdays) or weekly (both weekdays given)."""

    start_weekday: int | None = Field(default=None, ge=0, le=6)
    start_time: time
    end_weekday: int | None = Field(default=None, ge=0, le=6, validate_default=True)
    end_time: time

    @field_validator("start_time")
    @classmethod
    def _start_time(cls, value: time) -> time:
        return _wall_time(value)

    @field_validator("end_weekday")
    @classmethod
    def _pair(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "start_weekday" in info.data and (value is None) != (info.data["start_weekday"] is None):
            raise ValueError("give both start_weekday and end_weekday (weekly window) or neither (daily window)")
        return value

    @field_validator("end_time")
    @classmethod
    def _not_empty(cls, value: time, info: ValidationInfo) -> time:
        _wall_time(value)
        same_day = info.data.get("start_weekday") == info.data.get("end_weekday")
        if same_day and value == info.data.get("start_time"):
            raise ValueError("must differ from the start (an empty window; omit restrictions for always)")
        return value

    @property
    def weekly(self) -> bool:
        return self.start_weekday is not None


class Layer(_Model):
    """A rotation of slots of participants, active from `start` until `end` within its restrictions."""

    name: str = Field(default="", max_length=100)
    start: AwareDatetime
    end: AwareDatetime | None = None
    members: list[Slot] = Field(min_length=1, max_length=200,
                                description="rotation slots in order; a slot is one participant or a list")
    rotation: Rotation
    restrictions: list[Restriction] = Field(default_factory=list, max_length=50, description="empty: always")
    role_id: int | None = Field(default=None, ge=1, le=2**53,
                                description="the on-call role this layer fills (GET /oncall-roles); none: no role")

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError("must be after start")
        return value

    @field_validator("members", mode="before")
    @classmethod
    def _bare_participant_is_a_slot(cls, value: Any) -> Any:
        if isinstance(value, list):
            # Tuples, because strict validation (the Open API's) takes no list for a tuple in Python mode.
            return [(item,) if isinstance(item, dict | MemberRef | TeamRef) else
                    tuple(item) if isinstance(item, list) else item for item in value]
        return value

    @field_validator("members")
    @classmethod
    def _slots(cls, value: list[Slot]) -> list[Slot]:
        for i, slot in enumerate(value):
            if not slot:
                raise ValueError(f"[{i}]: an empty slot; give at least one participant")
            try:
                _no_duplicates(slot)
            except ValueError as exc:
                raise ValueError(f"[{i}]: {exc}") from None
        return value


class Override(_Model):
    """Participants who replace every layer from `start` to `end`."""

    participants: Slot = Field(min_length=1, max_length=50)
    start: AwareDatetime
    end: AwareDatetime
    note: str = Field(default="", max_length=200)
    role_id: int | None = Field(default=None, ge=1, le=2**53,
                                description="replace only this role's layers; none: every layer of every role")

    @field_validator("participants")
    @classmethod
    def _participants(cls, value: Slot) -> Slot:
        _no_duplicates(value)
        return value

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be after start")
        return value


class Schedule(_Model):
    """An on-call schedule: layers (later ones win) and overrides (win over all layers)."""

    name: str = Field(default="", max_length=100)
    time_zone: str = "UTC"
    layers: list[Layer] = Field(default_factory=list, max_length=20, description="later layers win")
    overrides: list[Override] = Field(default_factory=list, max_length=1000)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from None
        return value

    @field_validator("overrides")
    @classmethod
    def _no_overlap(cls, value: list[Override]) -> list[Override]:
        # Overrides of two different roles may overlap; an every-role override clashes with any other.
        for role in sorted({o.role_id for o in value}, key=lambda r: r or 0):
            same = [i for i, o in enumerate(value) if o.role_id in (role, None)]
            order = sorted(same, key=lambda i: value[i].start)
            for a, b in zip(order, order[1:]):
                if value[b].start < value[a].end:
                    first, second = sorted((a, b))
                    raise ValueError(f"[{second}]: overlaps overrides[{first}] ({_span(value[first])}); "
                                     "overrides may not overlap")
        return value

    def uses_roles(self) -> bool:
        return any(x.role_id is not None for x in [*self.layers, *self.overrides])


def _span(o: Override) -> str:
    return f"{o.start.astimezone(UTC):%Y-%m-%dT%H:%MZ} to {o.end.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


class Source(_Model):
    """What put participants on call: layer `index` of `Schedule.layers` or override `index`."""

    kind: Literal["layer", "override"]
    index: int
    name: str = ""


class RoleOnCall(_Model):
    """Who fills one role at one instant (role_id None: the layers without a role, or an every-role override)."""

    role_id: int | None
    participants: Slot
    source: Source


class OnCall(_Model):
    """Who is on call at one instant; no participants and no source when nobody is. With roles, `roles` says
    who fills each (empty for a schedule without roles)."""

    participants: Slot = ()
    source: Source | None = None
    roles: tuple[RoleOnCall, ...] = ()

    @property
    def member_ids(self) -> list[int]:
        return [p.member_id for p in self.participants if isinstance(p, MemberRef)]

    @property
    def team_ids(self) -> list[int]:
        return [p.team_id for p in self.participants if isinstance(p, TeamRef)]


class Shift(_Model):
    """A stretch of the final schedule with the same participants from the same source; `end` is exclusive."""

    start: AwareDatetime
    end: AwareDatetime
    participants: Slot
    source: Source
    role_id: int | None = None


# --- validation -------------------------------------------------------------------------------------------

_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "timezone_aware": "must include a UTC offset (e.g. Z or +01:00); naive datetimes are ambiguous",
    "missing": "is required",
    "extra_forbidden": "unknown field",
}


def _describe(error: Any) -> str:
    parts: list[str] = []
    for part in error["loc"]:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif not parts or parts[-1] != f".{part}":  # a union tag repeats the field name
            parts.append(f".{part}")
    where = "".join(parts).lstrip(".")
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "too_short":
        msg = "must not be empty" if ctx.get("min_length") == 1 else f"needs at least {ctx.get('min_length')} items"
    elif kind in _MESSAGES:
        msg = _MESSAGES[kind].format(**ctx)
    else:
        msg = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be", 1)
    if msg.startswith("["):  # a list validator naming its item: "overrides" + "[1]: overlaps ..."
        return f"{where}{msg}"
    return f"{where}: {msg}" if where else msg


def parse_schedule(data: Any) -> Schedule:
    """Validate a schedule definition (a dict, or JSON text or bytes), raising ScheduleError on bad input."""
    try:
        if isinstance(data, str | bytes):
            return Schedule.model_validate_json(data)
        return Schedule.model_validate(data)
    except ValidationError as exc:
        raise ScheduleError("; ".join(_describe(e) for e in exc.errors()[:5])) from None


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(f"{field}: must be timezone-aware")
    return value.astimezone(UTC)


# --- time arithmetic --------------------------------------------------------------------------------------

def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    # fold=0 is the RFC 5545 rule: gap times move later by the gap, fold times take the first occurrence.
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _wall(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None, fold=0)


def _days(first: date, last: date) -> Iterator[date]:
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


@dataclass(frozen=True)
class _Grid:
    """Handoff instants of one layer: boundary(k) starts turn k; turn 0 contains the layer start."""

    tz: ZoneInfo
    period: timedelta
    wall: bool  # daily/weekly: step in local wall time; hourly: step in real time
    origin: datetime  # naive local wall time when `wall`, else a UTC instant

    def boundary(self, k: int) -> datetime:
        if self.wall:
            return _instant(self.origin + k * self.period, self.tz)
        return self.origin + k * self.period

    def turn(self, at: datetime) -> int:
        k = ((_wall(at, self.tz) if self.wall else at) - self.origin) // self.period
        # The wall-time estimate can be one off next to a DST change; the instants decide.
        while self.boundary(k + 1) <= at:
            k += 1
        while self.boundary(k) > at:
            k -= 1
        return k


def _grid(layer: Layer, tz: ZoneInfo) -> _Grid:
    rot = layer.rotation
    start = layer.start.astimezone(UTC)
    local = _wall(start, tz)
    handoff = rot.handoff_time or local.time()
    if rot.unit == "hours":
        period = timedelta(hours=rot.value)
        first = start if rot.handoff_time is None else _instant(datetime.combine(local.date(), handoff), tz)
        return _Grid(tz, period, False, first + ((start - first) // period) * period)
    if rot.unit == "days":
        step, period = timedelta(days=1), timedelta(days=rot.value)
        origin = datetime.combine(local.date(), handoff)
    else:
        step, period = timedelta(weeks=1), timedelta(weeks=rot.value)
        weekday = local.weekday() if rot.handoff_weekday is None else rot.handoff_weekday
        origin = datetime.combine(local.date() - timedelta(days=(local.weekday() - weekday) % 7), handoff)
    while _instant(origin, tz) > start:
        origin -= step
    return _Grid(tz, period, True, origin)


def _windows(r: Restriction, tz: ZoneInfo, lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
    """UTC windows of `r` that overlap [lo, hi)."""
    # A window lasts at most 7 days, so one starting 8 local days before `lo` is the earliest that can reach it.
    for d in _days(_wall(lo, tz).date() - timedelta(days=8), _wall(hi, tz).date()):
        if r.weekly:
            if d.weekday() != r.start_weekday:
                continue
            span = (r.end_weekday - r.start_weekday) % 7  # type: ignore[operator]
            if span == 0 and r.end_time <= r.start_time:
                span = 7
        else:
            span = 0 if r.end_time > r.start_time else 1
        start = _instant(datetime.combine(d, r.start_time), tz)
        end = _instant(datetime.combine(d + timedelta(days=span), r.end_time), tz)
        # A window can shrink to nothing when a DST gap moves its start past its end.
        if start < end and start < hi and end > lo:
            yield start, end


@dataclass(frozen=True)
class _Layer:
    index: int
    layer: Layer
    grid: _Grid
    start: datetime
    end: datetime | None

    def on_duty(self, at: datetime) -> bool:
        if at < self.start or (self.end is not None and at >= self.end):
            return False
        if not self.layer.restrictions:
            return True
        tick = at + timedelta(microseconds=1)
        return any(any(True for _ in _windows(r, self.grid.tz, at, tick)) for r in self.layer.restrictions)

    def slot(self, at: datetime) -> Slot:
        members = self.layer.members
        return members[self.grid.turn(at) % len(members)]

    def edges(self, lo: datetime, hi: datetime) -> Iterator[datetime]:
        yield self.start
        if self.end is not None:
            yield self.end
        first = max(lo, self.start)
        last = hi if self.end is None else min(hi, self.end)
        if first < last:
            k = self.grid.turn(first) + 1
            while (b := self.grid.boundary(k)) < last:
                yield b
                k += 1
        for r in self.layer.restrictions:
            for start, end in _windows(r, self.grid.tz, lo, hi):
                yield start
                yield end


ANY_ROLE = 0  # `role` of a query for everyone on call (role ids start at 1)


class _Plan:
    """A schedule prepared for many queries: grids built once, instants in UTC."""

    def __init__(self, schedule: Schedule) -> None:
        tz = ZoneInfo(schedule.time_zone)
        self.uses_roles = schedule.uses_roles()
        self.overrides = [(o.start.astimezone(UTC), o.end.astimezone(UTC), i, o)
                          for i, o in enumerate(schedule.overrides)]
        self.layers = [_Layer(i, layer, _grid(layer, tz), layer.start.astimezone(UTC),
                              None if layer.end is None else layer.end.astimezone(UTC))
                       for i, layer in enumerate(schedule.layers)]
        # Roles in order of first appearance: layers first, then roles only overrides name.
        self.roles = list(dict.fromkeys([cl.layer.role_id for cl in self.layers] +
                                        [o.role_id for o in schedule.overrides if o.role_id is not None]))

    def entries(self, at: datetime, role: int | None = ANY_ROLE) -> list[RoleOnCall]:
        """Who fills each role at `at` (only `role` unless ANY_ROLE); an every-role override is one entry."""
        for start, end, i, o in self.overrides:
            if o.role_id is None and start <= at < end:
                return [RoleOnCall(role_id=None if role == ANY_ROLE else role, participants=o.participants,
                                   source=Source(kind="override", index=i, name=o.note))]
        found = []
        for r in self.roles if role == ANY_ROLE else [role]:
            entry = self._role_at(at, r)
            if entry is not None:
                found.append(entry)
        return found

    def _role_at(self, at: datetime, role: int | None) -> RoleOnCall | None:
        for start, end, i, o in self.overrides:
            if o.role_id is not None and o.role_id == role and start <= at < end:
                return RoleOnCall(role_id=role, participants=o.participants,
                                  source=Source(kind="override", index=i, name=o.note))
        for cl in reversed(self.layers):  # later layers are higher and win, among the role's layers
            if cl.layer.role_id == role and cl.on_duty(at):
                return RoleOnCall(role_id=role, participants=cl.slot(at),
                                  source=Source(kind="layer", index=cl.index, name=cl.layer.name))
        return None

    def at(self, at: datetime, role: int | None = ANY_ROLE) -> OnCall:
        found = self.entries(at, role)
        if not found:
            return OnCall()
        people = tuple(dict.fromkeys(p for e in found for p in e.participants))
        return OnCall(participants=people, source=found[0].source,
                      roles=tuple(found) if self.uses_roles else ())

    def edges(self, lo: datetime, hi: datetime) -> list[datetime]:
        """Every instant in (lo, hi) where who is on call may change, sorted."""
        found: set[datetime] = set()
        for start, end, _, _ in self.overrides:
            found.update((start, end))
        for cl in self.layers:
            found.update(cl.edges(lo, hi))
        return sorted(e for e in found if lo < e < hi)


# --- public API -------------------------------------------------------------------------------------------

def oncall_at(schedule: Schedule, at: datetime, role_id: int | None = None) -> OnCall:
    """Who is on call at `at` (timezone-aware), and which layer or override put them there; with `role_id`,
    only who fills that role (nobody if no layer of it is on duty)."""
    return _Plan(schedule).at(_aware(at, "at"), ANY_ROLE if role_id is None else role_id)


def preview(schedule: Schedule, start: datetime, end: datetime, role_id: int | None = None) -> list[Shift]:
    """The final schedule in [start, end): contiguous shifts in UTC, identical neighbours merged, gaps absent.
    With roles, each role has its own shifts (`Shift.role_id`), which may overlap other roles'; with
    `role_id`, only that role's."""
    lo, hi = _aware(start, "start"), _aware(end, "end")
    if hi <= lo:
        raise ScheduleError("end: must be after start")
    plan = _Plan(schedule)
    role = ANY_ROLE if role_id is None else role_id
    cuts = [lo, *plan.edges(lo, hi), hi]
    shifts: list[Shift] = []
    open_: dict[int | None, int] = {}  # role -> index in `shifts` of its shift ending at the current cut
    for a, b in zip(cuts, cuts[1:]):
        still: dict[int | None, int] = {}
        for e in plan.entries(a, role):
            i = open_.get(e.role_id)
            last = shifts[i] if i is not None else None
            if last and last.end == a and last.source == e.source and last.participants == e.participants:
                shifts[i] = last.model_copy(update={"end": b})  # type: ignore[index]
                still[e.role_id] = i  # type: ignore[assignment]
            else:
                still[e.role_id] = len(shifts)
                shifts.append(Shift(start=a, end=b, participants=e.participants, source=e.source,
                                    role_id=e.role_id))
        open_ = still
    return shifts
