"""Per-bot rate limiting for group-chat bots: send now, or merge the backlog into one digest. Pure.

Platforms throttle custom bots (DingTalk about 20 messages a minute, Feishu 5 a second and 100 a minute,
WeCom 20 a minute, Slack about 1 a second, Telegram about 20 a minute per group) and reject what goes
over. Nothing here drops a message: when the queue is longer than the free slots, the last free slot
carries a digest of everything that did not fit; when no slot is free, the caller waits until one is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.group_bots.model import BotMessage, Mention
from core.types import Progress

DIGEST_EVENT = "i_digest"
# A digest lists this many headlines; the rest are counted, so a burst cannot outgrow a platform's size limit.
DIGEST_LINES = 40


@dataclass(frozen=True)
class Window:
    """At most `count` sends in any span of `span`."""

    span: timedelta
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or self.span <= timedelta(0):
            raise ValueError("Window: count must be >= 1 and span positive")


@dataclass(frozen=True)
class Outgoing:
    """One send: the message to post and the queue positions it delivers (several when it is a digest)."""

    message: BotMessage
    covers: tuple[int, ...]

    @property
    def is_digest(self) -> bool:
        return len(self.covers) > 1


@dataclass(frozen=True)
class Plan:
    """What to post now, in order, and when to ask again if anything is still queued."""

    send_now: tuple[Outgoing, ...]
    wait_until: datetime | None


@dataclass(frozen=True)
class BotLimiter:
    """A bot's rate limits as sliding windows; decides what may go now and merges the overflow."""

    windows: tuple[Window, ...]

    @property
    def horizon(self) -> timedelta:
        """How far back send times matter: older ones may be forgotten."""
        return max(w.span for w in self.windows)

    def free(self, sent_times: Sequence[datetime], now: datetime) -> int:
        """How many sends every window still allows at `now`."""
        return min(w.count - _in_window(w, sent_times, now) for w in self.windows)

    def allows(self, sent_times: Sequence[datetime], now: datetime) -> bool:
        """Whether one more message may go now."""
        return self.free(sent_times, now) > 0

    def next_slot(self, sent_times: Sequence[datetime], now: datetime) -> datetime:
        """The earliest time at which one more send is allowed (`now` when it already is)."""
        when = now
        for w in self.windows:
            recent = sorted(t for t in sent_times if now - w.span < t <= now)
            over = len(recent) - w.count
            if over >= 0:
                when = max(when, recent[over] + w.span)
        return when

    def skips_queue(self, sent_times: Sequence[datetime], now: datetime) -> bool:
        """Whether a message may go at once on its own while nothing is queued.

        The last free slot is kept for the queue: a burst that reaches the limit then ends in one digest
        in that slot, instead of its tail waiting a whole window.
        """
        return self.free(sent_times, now) >= 2

    def split(
        self, queued: int, sent_times: Sequence[datetime], now: datetime
    ) -> tuple[tuple[tuple[int, ...], ...], datetime | None]:
        """`plan` by queue positions only: the positions each send now covers, and when to ask again."""
        if queued <= 0:
            return (), None
        free = max(0, self.free(sent_times, now))
        if free == 0:
            return (), self.next_slot(sent_times, now)
        if queued <= free:
            return tuple((i,) for i in range(queued)), None
        return tuple((i,) for i in range(free - 1)) + (tuple(range(free - 1, queued)),), None

    def plan(self, queue: Sequence[BotMessage], sent_times: Sequence[datetime], now: datetime) -> Plan:
        """Send the queue now if it fits; else send what fits with a digest of the rest in the last slot."""
        covers, wait_until = self.split(len(queue), sent_times, now)
        return Plan(tuple(Outgoing(outgoing_message([queue[i] for i in c]), c) for c in covers), wait_until)


def _in_window(window: Window, sent_times: Sequence[datetime], now: datetime) -> int:
    return sum(1 for t in sent_times if now - window.span < t <= now)


def _per_minute(count: int) -> Window:
    return Window(timedelta(minutes=1), count)


def _per_second(count: int) -> Window:
    return Window(timedelta(seconds=1), count)


# Documented limits, each a little under the platform's so clock skew does not trip them.
LIMITS: dict[str, BotLimiter] = {
    "dingtalk": BotLimiter((_per_minute(20),)),
    "feishu": BotLimiter((_per_second(5), _per_minute(100))),
    "wecom": BotLimiter((_per_minute(20),)),
    "slack": BotLimiter((_per_second(1),)),
    "telegram": BotLimiter((_per_second(1), _per_minute(20))),
    # Zoom publishes no number for incoming webhooks; Slack-like pacing has been safe.
    "zoom": BotLimiter((_per_second(1), _per_minute(30))),
}


def plan(
    queue: Sequence[BotMessage], sent_times: Sequence[datetime], limit: BotLimiter, now: datetime
) -> Plan:
    """What to post now for one bot (see BotLimiter.plan)."""
    return limit.plan(queue, sent_times, now)


def outgoing_message(messages: Sequence[BotMessage]) -> BotMessage:
    """What one send posts: the message itself, or a digest when it covers several."""
    return messages[0] if len(messages) == 1 else digest(messages)


def digest(messages: Sequence[BotMessage]) -> BotMessage:
    """One message standing for several: a headline per update, everyone's mentions, the worst severity."""
    if not messages:
        raise ValueError("digest: needs at least one message")
    lines = [
        f"- [{m.severity.value}] [{m.progress.value}] {m.title}" + (f" {m.url}" if m.url else "")
        for m in messages[:DIGEST_LINES]
    ]
    if len(messages) > DIGEST_LINES:
        lines.append(f"- ... and {len(messages) - DIGEST_LINES} more")
    mentions: dict[Mention, None] = dict.fromkeys(p for m in messages for p in m.mentions)
    urls = {m.url for m in messages}
    return BotMessage(
        title=f"{len(messages)} incident updates",
        severity=max((m.severity for m in messages), key=lambda s: s.rank),
        progress=min((m.progress for m in messages), key=_PROGRESS_ORDER.index),
        event_type=DIGEST_EVENT,
        text="\n".join(lines),
        url=urls.pop() if len(urls) == 1 else "",
        mentions=tuple(mentions),
    )


# A digest shows the least settled progress: one Triggered update keeps the whole digest urgent.
_PROGRESS_ORDER = [Progress.TRIGGERED, Progress.PROCESSING, Progress.CLOSED]
