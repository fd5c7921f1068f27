"""The per-bot rate limiter: what goes now, what is merged into a digest, when to try again. Pure, virtual time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.group_bots import BOT_TYPES, BotMessage, Mention
from bot.group_bots.pacing import DIGEST_EVENT, DIGEST_LINES, LIMITS, BotLimiter, Window, digest, plan
from core.types import Progress, Severity

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def msg(
    i: int,
    severity: Severity = Severity.INFO,
    progress: Progress = Progress.TRIGGERED,
    mentions: tuple[Mention, ...] = (),
) -> BotMessage:
    return BotMessage(
        title=f"incident {i}",
        severity=severity,
        progress=progress,
        event_type="i_new",
        text=f"body {i}",
        url=f"https://vigil.test/incidents/{i}",
        mentions=mentions,
    )


def ago(*seconds: float) -> list[datetime]:
    return [NOW - timedelta(seconds=s) for s in seconds]


@pytest.mark.parametrize(
    ("bot", "queued", "sent", "singles", "digested", "wait"),
    [
        ("dingtalk", 0, [], 0, 0, None),
        ("dingtalk", 3, [], 3, 0, None),
        ("dingtalk", 20, [], 20, 0, None),
        ("dingtalk", 25, [], 19, 6, None),  # 19 alone, the 20th slot carries the other 6
        (
            "dingtalk",
            5,
            ago(*range(59, 39, -1)),
            0,
            0,
            NOW + timedelta(seconds=1),
        ),  # full: oldest leaves in 1 s
        ("dingtalk", 5, ago(*range(80, 60, -1)), 5, 0, None),  # sends older than a minute no longer count
        ("dingtalk", 5, ago(*range(59, 41, -1)), 1, 4, None),  # 18 used: one single and one digest
        ("dingtalk", 5, ago(*range(59, 40, -1)), 0, 5, None),  # 19 used: the last slot is a digest of all
        ("feishu", 10, [], 4, 6, None),  # 5 a second
        # 100 sends 54.75 s .. 30 s ago fill the minute; the oldest leaves it in 5.25 s
        ("feishu", 3, ago(*[30 + i * 0.25 for i in range(100)]), 0, 0, NOW + timedelta(seconds=5.25)),
        ("slack", 3, ago(0.5), 0, 0, NOW + timedelta(seconds=0.5)),
        ("slack", 3, ago(1.5), 0, 3, None),
        ("wecom", 1, ago(*range(20)), 0, 0, NOW + timedelta(seconds=41)),
        ("telegram", 2, ago(0.2), 0, 0, NOW + timedelta(seconds=0.8)),
    ],
)
def test_plan(bot, queued, sent, singles, digested, wait):
    queue = [msg(i) for i in range(queued)]
    result = plan(queue, sent, LIMITS[bot], NOW)
    assert sum(1 for o in result.send_now if not o.is_digest) == singles
    assert sum(len(o.covers) for o in result.send_now if o.is_digest) == digested
    assert result.wait_until == wait
    covered = [i for o in result.send_now for i in o.covers]
    assert covered == (list(range(queued)) if result.send_now else [])  # in order, each exactly once
    assert len(result.send_now) <= LIMITS[bot].free(sent, NOW)


def test_every_bot_type_has_a_limit():
    assert set(LIMITS) == set(BOT_TYPES)


def _simulate(bot: str, arrivals: list[datetime]) -> list[tuple[datetime, tuple[int, ...]]]:
    """Drive the limiter as the escalation worker would: on every arrival and at every wait_until."""
    limiter = LIMITS[bot]
    pending: list[int] = []  # indices of messages not yet delivered
    sends: list[tuple[datetime, tuple[int, ...]]] = []
    wake: datetime | None = None
    i = 0
    while i < len(arrivals) or pending:
        candidates = [t for t in (arrivals[i] if i < len(arrivals) else None, wake) if t is not None]
        now = min(candidates)
        while i < len(arrivals) and arrivals[i] <= now:
            pending.append(i)
            i += 1
        result = limiter.plan([msg(n) for n in pending], [t for t, _ in sends], now)
        for out in result.send_now:
            sends.append((now, tuple(pending[k] for k in out.covers)))
        delivered = {pending[k] for out in result.send_now for k in out.covers}
        pending = [n for n in pending if n not in delivered]
        wake = result.wait_until
        assert result.send_now or wake or i < len(arrivals), "the limiter stalled with messages queued"
    return sends


@pytest.mark.parametrize(
    ("bot", "count", "spread", "per_window", "span"),
    [
        ("dingtalk", 50, 60.0, 20, 60.0),
        ("dingtalk", 50, 0.0, 20, 60.0),
        ("feishu", 300, 60.0, 100, 60.0),
        ("feishu", 40, 2.0, 5, 1.0),
        ("slack", 30, 3.0, 1, 1.0),
        ("wecom", 45, 30.0, 20, 60.0),
        ("telegram", 25, 10.0, 20, 60.0),
    ],
)
def test_a_burst_never_exceeds_the_limit_and_drops_nothing(bot, count, spread, per_window, span):
    arrivals = [NOW + timedelta(seconds=spread * k / count) for k in range(count)]
    sends = _simulate(bot, arrivals)
    delivered = [n for _, covers in sends for n in covers]
    assert sorted(delivered) == list(range(count))  # every incident update is mentioned exactly once
    times = [t for t, _ in sends]
    for t in times:
        assert sum(1 for u in times if t <= u < t + timedelta(seconds=span)) <= per_window


def test_fifty_dingtalk_updates_in_a_minute_make_at_most_twenty_sends_in_that_minute():
    arrivals = [NOW + timedelta(seconds=1.2 * k) for k in range(50)]
    sends = _simulate("dingtalk", arrivals)
    first_minute = [s for s in sends if s[0] < NOW + timedelta(minutes=1)]
    assert len(first_minute) <= 20
    assert sum(len(covers) for _, covers in sends) == 50
    assert any(len(covers) > 1 for _, covers in sends)  # the overflow went out merged


def test_digest_merges_headlines_mentions_and_takes_the_worst_severity():
    alice, bob = Mention("Alice", "u1"), Mention("Bob", "", "138")
    merged = digest(
        [
            msg(1, Severity.INFO, Progress.CLOSED, (alice,)),
            msg(2, Severity.CRITICAL, Progress.PROCESSING, (alice, bob)),
            msg(3, Severity.WARNING, Progress.CLOSED),
        ]
    )
    assert merged.title == "3 incident updates"
    assert merged.severity is Severity.CRITICAL
    assert merged.progress is Progress.PROCESSING
    assert merged.event_type == DIGEST_EVENT
    assert merged.mentions == (alice, bob)
    assert merged.text.splitlines() == [
        "- [Info] [Closed] incident 1 https://vigil.test/incidents/1",
        "- [Critical] [Processing] incident 2 https://vigil.test/incidents/2",
        "- [Warning] [Closed] incident 3 https://vigil.test/incidents/3",
    ]
    assert merged.url == ""


def test_a_long_digest_counts_what_it_does_not_list():
    merged = digest([msg(i) for i in range(DIGEST_LINES + 12)])
    lines = merged.text.splitlines()
    assert len(lines) == DIGEST_LINES + 1 and lines[-1] == "- ... and 12 more"
    assert merged.title == f"{DIGEST_LINES + 12} incident updates"


def test_a_digest_of_one_incident_keeps_its_link():
    assert digest([msg(7), msg(7)]).url == "https://vigil.test/incidents/7"


@pytest.mark.parametrize(
    "bad", [lambda: digest([]), lambda: Window(timedelta(seconds=1), 0), lambda: Window(timedelta(0), 5)]
)
def test_bad_input_is_refused(bad):
    with pytest.raises(ValueError):
        bad()


def test_allows_and_next_slot_agree():
    limiter = BotLimiter((Window(timedelta(seconds=10), 2),))
    sent = ago(9, 3)
    assert not limiter.allows(sent, NOW)
    slot = limiter.next_slot(sent, NOW)
    assert slot == NOW + timedelta(seconds=1)
    assert limiter.allows(sent, slot)


@pytest.mark.parametrize(
    ("bot", "sent", "alone"),
    [
        ("dingtalk", [], True),
        ("dingtalk", ago(*range(18)), True),  # 18 used: two free, one may go alone
        ("dingtalk", ago(*range(19)), False),  # the last free slot is kept for the queue's digest
        ("slack", [], False),  # one a second: every message takes the queue's single slot
    ],
)
def test_a_message_skips_the_queue_only_while_two_slots_are_free(bot, sent, alone):
    assert LIMITS[bot].skips_queue(sent, NOW) is alone


def test_split_names_the_queue_positions_plan_sends():
    sent = ago(*range(15))
    covers, wait = LIMITS["dingtalk"].split(8, sent, NOW)
    assert covers == ((0,), (1,), (2,), (3,), (4, 5, 6, 7)) and wait is None
    result = plan([msg(i) for i in range(8)], sent, LIMITS["dingtalk"], NOW)
    assert tuple(o.covers for o in result.send_now) == covers
