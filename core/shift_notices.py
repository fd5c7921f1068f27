"""Shift notices: each member is told when their on-call shift starts (optionally some minutes before) and when
it ends, over their preferred medium, through the same senders as pages (provider failover inside the sender,
retries within the delivery time budget, then the member's next medium).

* `shift_scan` runs every SCAN_EVERY (a chain of jobs with ids by time bucket, seeded when `vigil serve` starts
  and again whenever a schedule changes): it reads every enabled schedule, finds each member's shift starts
  and ends (core/shift_boundaries.py) whose notice is due soon, and writes one ShiftNotice row per (member,
  schedule, start/end, instant); the row's unique key makes a boundary seen by several scans told once.
* `shift_notice` sends one row when due. It checks first that the boundary still holds (the schedule may have
  been edited, disabled or overridden since) and that the member still wants notices; if not, it cancels.

A notice is no page: no incident, no escalation, nothing on an incident's timeline.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core import jobs
from core.errors import DeliveryError
from core.models import Member, OncallRole, Schedule, ShiftNotice, ShiftNoticeSetting, Team
from core.notify import RetryPolicy, after_failure
from core.paging import Page, Recipient, Sent, send
from core.schedules import ScheduleError, parse_schedule, preview
from core.shift_boundaries import (
    LEAD_MAX_MINUTES,
    MARGIN,
    Boundary,
    boundaries,
    due_at,
    next_notice_medium,
    notice_medium,
    wording,
)

log = logging.getLogger("vigil.shift_notices")

SCAN_EVERY = timedelta(minutes=5)
AHEAD = 2 * SCAN_EVERY  # a scan writes the notices due before its next two runs, so one late scan loses none
LATE = timedelta(minutes=15)  # a notice found up to this late (the scan was down, the shift was just added) still goes
UNTIL = timedelta(days=8)  # how far a starting shift's end is looked for, for "until ..."


def _bucket(at: datetime) -> int:
    return int(at.timestamp() // SCAN_EVERY.total_seconds())


def _bucket_start(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket * SCAN_EVERY.total_seconds(), UTC)


async def ensure_scan(session: Any, now: datetime) -> None:
    """Make sure the scan chain runs: this bucket's scan (a no-op if it is there). The caller commits."""
    bucket = _bucket(now)
    await jobs.schedule(session, "shift_scan", {"bucket": bucket}, due_at=now, job_id=f"shift_scan:{bucket}")


async def scan_soon(session: Any, now: datetime, schedule_id: int) -> None:
    """A schedule changed: scan now, so a shift starting within minutes is told about too. The caller commits."""
    await jobs.schedule(session, "shift_scan", {"bucket": _bucket(now), "chain": False}, due_at=now,
                        job_id=f"shift_scan:{_bucket(now)}:s{schedule_id}:{now.timestamp():.6f}")


async def _teams(session: Any) -> dict[int, list[int]]:
    return {t.id: list(t.member_ids) for t in (await session.execute(select(Team))).scalars()}


async def _settings(session: Any) -> dict[int, ShiftNoticeSetting]:
    return {s.member_id: s for s in (await session.execute(select(ShiftNoticeSetting))).scalars()}


@jobs.job("shift_scan")
async def scan(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    now = ctx.now()
    if args.get("chain", True):
        # The next link first, in its own commit: a scan that fails must not end the chain.
        nxt = max(args["bucket"], _bucket(now)) + 1
        async with ctx.sessionmaker() as session:
            await jobs.schedule(session, "shift_scan", {"bucket": nxt}, due_at=_bucket_start(nxt),
                                job_id=f"shift_scan:{nxt}")
            await session.commit()
    async with ctx.sessionmaker() as session:
        settings = await _settings(session)
        lead_max = max([s.lead_minutes for s in settings.values() if s.enabled] + [0])
        lo, hi = now - LATE, now + AHEAD + timedelta(minutes=min(lead_max, LEAD_MAX_MINUTES))
        teams = await _teams(session)
        wanted: list[tuple[int, Boundary, datetime]] = []
        for row in (await session.execute(select(Schedule).where(Schedule.status == "enabled")
                                          .order_by(Schedule.id))).scalars():
            try:
                shifts = preview(parse_schedule(row.definition), lo - MARGIN, hi + MARGIN)
            except ScheduleError:  # validated when saved; one bad schedule must not silence the others
                log.exception("schedule %s does not parse; no shift notices for it", row.id)
                continue
            for b in boundaries(shifts, teams, lo, hi):
                setting = settings.get(b.member_id)
                if setting is not None and not setting.enabled:
                    continue
                due = due_at(b.kind, b.at, setting.lead_minutes if setting else 0)
                if now - LATE <= due < now + AHEAD:
                    wanted.append((row.id, b, due))
        if not wanted:
            return
        members = {m.id: m for m in (await session.execute(
            select(Member).where(Member.id.in_({b.member_id for _, b, _ in wanted})))).scalars()}
        table = ShiftNotice.__table__  # type: ignore[attr-defined]
        for schedule_id, b, due in wanted:
            member = members.get(b.member_id)
            if member is None:
                continue
            medium = notice_medium(member.preferences, member.fallback)
            added = (await session.execute(
                jobs.insert_for(session)(table).values(
                    member_id=member.id, schedule_id=schedule_id, kind=b.kind, at=b.at, due_at=due, role_id=b.role_id,
                    medium=medium, tried=[], state="pending", attempts=0, provider="", provider_message_id="",
                    last_error="", created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["member_id", "schedule_id", "kind", "at"])
                .returning(table.c.id))).scalar_one_or_none()
            if added is not None:
                await jobs.schedule(session, "shift_notice", {"notice_id": added}, due_at=max(due, now),
                                    job_id=f"shift_notice:{added}:0")
        await session.commit()


async def _current(session: Any, n: ShiftNotice, schedule: Schedule | None) -> tuple[str | None, Boundary | None]:
    """Why the notice must not go out (None: send it), and the boundary as the schedule has it now."""
    if schedule is None or schedule.status != "enabled":
        return "the schedule is disabled or gone", None
    setting = await session.get(ShiftNoticeSetting, n.member_id)
    if setting is not None and not setting.enabled:
        return "the member turned shift notices off", None
    try:
        shifts = preview(parse_schedule(schedule.definition), n.at - MARGIN, n.at + UNTIL)
    except ScheduleError:  # validated when saved: retrying would not make it readable
        return "the schedule cannot be read", None
    tick = n.at + timedelta(microseconds=1)
    same = [b for b in boundaries(shifts, await _teams(session), n.at, tick, seen_until=n.at + UNTIL)
            if b.member_id == n.member_id and b.kind == n.kind]
    if not same:
        return f"the shift no longer {'starts' if n.kind == 'start' else 'ends'} then (the schedule changed)", None
    return None, same[0]


@jobs.job("shift_notice")
async def send_notice(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    now = ctx.now()
    async with ctx.sessionmaker() as session:
        n = await session.get(ShiftNotice, args["notice_id"])
        if n is None or n.state != "pending":
            return
        schedule = await session.get(Schedule, n.schedule_id)
        member = await session.get(Member, n.member_id)
        reason, boundary = await _current(session, n, schedule)
        if reason is not None or member is None or boundary is None or schedule is None:
            n.state, n.last_error, n.updated_at = "canceled", reason or "the member is gone", now
            await session.commit()
            return
        role = await session.get(OncallRole, boundary.role_id) if boundary.role_id else None
        subject, text = wording(n.kind, schedule.name, role.name if role else None, n.at, boundary.until,
                                member.time_zone)
        recipient = Recipient(member.id, member.name, member.email, member.phone, member.time_zone)
        # delivery_id keys the provider's idempotency ("vigil-delivery-<id>"): negative, so it never equals a page's.
        page = Page(0, -n.id, f"shift_{n.kind}", "Info", subject, text, None,
                    f"{ctx.services.get('base_url', '')}/account")
        medium, fallback = n.medium, list(member.fallback or [])
        await session.commit()  # no transaction is held while the provider takes its time
    outcome = await _send(ctx, medium, recipient, page)
    async with ctx.sessionmaker() as session:
        n = await session.get(ShiftNotice, args["notice_id"])
        if n is None or n.state != "pending" or n.medium != medium:
            return
        n.attempts += 1
        n.updated_at = ctx.now()
        if isinstance(outcome, DeliveryError):
            await _failed(ctx, session, n, outcome, fallback)
        else:
            n.state, n.provider_message_id, n.provider = "sent", outcome.message_id[:200], outcome.provider[:64]
            if outcome.skipped:  # sent, but a provider before it failed; else an earlier medium's error stays
                n.last_error = outcome.skipped[:2000]
        await session.commit()


async def _send(ctx: jobs.JobContext, medium: str, recipient: Recipient, page: Page) -> Sent | DeliveryError:
    sender = ctx.services.get("senders", {}).get(medium)
    outcome = await send((sender, recipient, page) if sender is not None
                         else DeliveryError(f"no {medium} provider is configured", retryable=False))
    if outcome is None:  # only group bots queue; a notice never goes to one
        return DeliveryError("queued", retryable=True)
    return outcome if isinstance(outcome, Sent | DeliveryError) else Sent(outcome)


async def _failed(ctx: jobs.JobContext, session: Any, n: ShiftNotice, exc: DeliveryError,
                  fallback: list[str]) -> None:
    """Retry within the time budget, or hand over to the member's next medium (when this one failed for good
    or for a while), or give up when none is left."""
    now = ctx.now()
    n.last_error = f"{n.medium}: {exc}"[:2000]
    policy: RetryPolicy = ctx.services.get("retry_policy") or RetryPolicy()
    plan = after_failure(policy, attempts=n.attempts, failing_for=max(now - n.due_at, timedelta(0)),
                         retryable=exc.retryable, retry_after=exc.retry_after, jitter=random.random())
    tried = [*n.tried, n.medium]
    medium = next_notice_medium(tried, fallback) if plan.hand_over else None
    if medium is not None:
        n.tried, n.medium, n.attempts, n.due_at = tried, medium, 0, now  # the new medium has its own budget
        await jobs.schedule(session, "shift_notice", {"notice_id": n.id}, due_at=now,
                            job_id=f"shift_notice:{n.id}:{medium}")
    elif plan.retry_in is not None:
        await jobs.schedule(session, "shift_notice", {"notice_id": n.id}, due_at=now + timedelta(seconds=plan.retry_in),
                            job_id=f"shift_notice:{n.id}:{n.medium}:{n.attempts}")
    else:
        n.tried, n.state = tried, "failed"
        log.warning("shift notice %s to member %s undeliverable: %s", n.id, n.member_id, n.last_error)
