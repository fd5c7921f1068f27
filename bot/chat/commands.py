"""Chat commands every platform can offer: who is on call now, my open incidents, and the command list.

An adapter parses its platform's command (Slack: `/vigil oncall`, `/vigil mine`; elsewhere a message to the
bot, through bot/chat/words.py) into a Query and hands it to `answer`, which reads the database (`oncall_now`,
`open_incidents_of`) and words the reply with pure formatters (`oncall_text`, `mine_text`, `help_text`), so every platform says the same thing.
The person behind `mine` is resolved through the mapping table exactly as a click is; an unmapped user
gets the same "not linked" reply. Commands that change an incident (`ack <number>`...) are clicks and go
through bot/chat/clicks.py; `page` opens one (bot/chat/page_command.py) and is answered here in words too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cards.format import cut, utc_text
from bot.cards.model import PROGRESS_LOOK, SEVERITY_LOOK
from bot.chat import page_command
from core.errors import VigilError
from core.models import Incident, Member, Schedule, Team
from core.schedules import MemberRef, OnCall, TeamRef, oncall_at, parse_schedule, preview
from core.types import Platform, Progress, Severity
from mapping_tables.store import NotLinked, not_linked_message, resolve

log = logging.getLogger("vigil.chat_commands")

ONCALL, MINE, HELP, PAGE = "oncall", "mine", "help", "page"
QUERIES = frozenset({ONCALL, MINE})
MINE_SHOWN = 10  # incidents listed by `mine`; the rest are counted
SCHEDULES_SHOWN = 25
UNTIL_HORIZON = timedelta(days=14)  # how far ahead `oncall` looks for the end of the current shift
TITLE_MAX = 120

# (usage after the command prefix, what it does); the incident actions are the ones a card offers.
COMMANDS = (
    ("oncall", "who is on call now, for every schedule"),
    ("mine", "your open incidents"),
    ("ack <number>", "acknowledge an incident (also: unack, close, reopen, escalate, wake)"),
    ("snooze <number> [minutes]", "stop re-notifying for a while (default 60 minutes)"),
    ("comment <number> <text>", "add a comment to an incident's timeline"),
    ("page @someone [critical|warning|info] [channel:<name>] <title>", "open an incident and page them"),
    ("help", "this list"),
)


@dataclass(frozen=True)
class Query:
    """A command answered in words, parsed by an adapter (`/vigil oncall`, `/vigil mine`, `/vigil page ...`, or
    the same words in a message to the bot): who asks, and what."""

    platform: Platform
    im_user_id: str
    name: str  # one of QUERIES, or PAGE
    args: str = ""  # the words after the command's name, mentions taken out (PAGE's severity, channel, title)
    mentions: tuple[str, ...] = ()  # the platform user ids mentioned (PAGE's people)
    mentions_by_name: bool = False  # a mention may be a member's name (bot.adapters.base.ChatMessage)


@dataclass(frozen=True)
class OnCallNow:
    """One schedule right now: who is on call (teams expanded to their members) and until when."""

    schedule: str
    people: tuple[str, ...] = ()
    until: datetime | None = None  # the next handoff, when it falls within UNTIL_HORIZON
    override: bool = False  # an override put them there
    broken: bool = False  # the stored definition no longer validates


@dataclass(frozen=True)
class OpenIncident:
    num: str
    title: str
    severity: Severity
    progress: Progress
    url: str
    snoozed_until: datetime | None = None


# -- reading ---------------------------------------------------------------------------------------------


async def oncall_now(session: AsyncSession, now: datetime) -> list[OnCallNow]:
    """Every schedule (by name) with the members on call at `now`, through core.schedules.oncall_at."""
    rows = (await session.execute(select(Schedule).order_by(Schedule.name, Schedule.id))).scalars().all()
    names = {m.id: m.name for m in (await session.execute(select(Member.id, Member.name))).all()}
    teams = {t.id: t for t in (await session.execute(select(Team))).scalars()}
    out = []
    for row in rows:
        try:
            definition = parse_schedule(row.definition)
        except (VigilError, ValidationError, ValueError):
            log.warning("schedule %s has a definition that does not validate", row.id)
            out.append(OnCallNow(row.name, broken=True))
            continue
        who = oncall_at(definition, now) if row.status == "enabled" else OnCall()  # disabled: nobody is on call
        people: list[str] = []
        for p in who.participants:
            if isinstance(p, MemberRef):
                people.append(names.get(p.member_id, f"member {p.member_id}"))
            elif isinstance(p, TeamRef):
                team = teams.get(p.team_id)
                members = [names[m] for m in team.member_ids if m in names] if team else []
                people += members or [f"team {team.name if team else p.team_id} (no members)"]
        until = None
        if who.source is not None:
            shifts = preview(definition, now, now + UNTIL_HORIZON)
            if shifts and shifts[0].start == now and shifts[0].end < now + UNTIL_HORIZON:
                until = shifts[0].end
        out.append(
            OnCallNow(
                row.name,
                tuple(dict.fromkeys(people)),
                until,
                override=who.source is not None and who.source.kind == "override",
            )
        )
    return out


async def open_incidents_of(
    session: AsyncSession, member_id: int, base_url: str, limit: int = MINE_SHOWN
) -> tuple[list[OpenIncident], int]:
    """The member's open incidents (a responder, not closed, not merged away), newest first: up to `limit`,
    and how many there are in all."""
    candidates = await session.execute(
        select(Incident.id, Incident.responders)
        .where(Incident.progress != Progress.CLOSED.value, Incident.merged_into_id.is_(None))
        .order_by(Incident.id.desc())
    )
    ids = [
        i
        for i, responders in candidates.all()
        if any(r.get("person_id") == member_id for r in responders or [])
    ]
    shown = ids[:limit]
    rows = (
        (await session.execute(select(Incident).where(Incident.id.in_(shown)))).scalars().all()
        if shown
        else []
    )
    by_id = {r.id: r for r in rows}
    return [_open(by_id[i], base_url) for i in shown if i in by_id], len(ids)


def _open(i: Incident, base_url: str) -> OpenIncident:
    return OpenIncident(
        num=i.num or str(i.id),
        title=i.title,
        severity=Severity(i.severity),
        progress=Progress(i.progress),
        url=f"{base_url}/incidents/{i.id}",
        snoozed_until=i.snoozed_until,
    )


# -- wording (pure) --------------------------------------------------------------------------------------


def help_text(prefix: str = "/vigil ") -> str:
    """The command list, each usage after the platform's `prefix` (Slack: "/vigil ")."""
    return "Vigil commands:\n" + "\n".join(f"• `{prefix}{usage}`: {what}" for usage, what in COMMANDS)


def oncall_text(rows: list[OnCallNow], now: datetime) -> str:
    if not rows:
        return "No on-call schedules are set up yet."
    lines = [f"On call now ({utc_text(now)}):"]
    for row in rows[:SCHEDULES_SHOWN]:
        if row.broken:
            who = "(this schedule cannot be read; ask a Vigil admin to fix it)"
        elif not row.people:
            who = "nobody"
        else:
            who = ", ".join(row.people) + (" (override)" if row.override else "")
            if row.until is not None:
                who += f", until {utc_text(row.until)}"
        lines.append(f"• {row.schedule}: {who}")
    if len(rows) > SCHEDULES_SHOWN:
        lines.append(f"…and {len(rows) - SCHEDULES_SHOWN} more schedules.")
    return "\n".join(lines)


def mine_text(name: str, incidents: list[OpenIncident], total: int, base_url: str) -> str:
    if not incidents:
        return f"{name}, you have no open incidents."
    lines = [f"{name}, your open incidents ({total}):"]
    for i in incidents:
        sev, prog = SEVERITY_LOOK[i.severity], PROGRESS_LOOK[i.progress]
        state = f"{prog.emoji} {prog.label}"
        if i.snoozed_until is not None:
            state += f" · 💤 until {utc_text(i.snoozed_until)}"
        lines.append(f"• {sev.emoji} #{i.num} {cut(i.title, TITLE_MAX)} · {state} · {i.url}")
    if total > len(incidents):
        lines.append(f"…and {total - len(incidents)} more: {base_url}/incidents")
    return "\n".join(lines)


# -- answering -------------------------------------------------------------------------------------------


async def answer(
    query: Query, sessions: async_sessionmaker[AsyncSession], base_url: str, now: datetime
) -> str:
    """The reply to a read-only command, for the asker only (e.g. a Slack ephemeral message)."""
    if query.name == PAGE:  # changes data, unlike the queries: it opens an incident (bot/chat/page_command.py)
        return await page_command.run(query.platform, query.im_user_id, query.args, sessions, base_url, now,
                                      mentions=query.mentions, by_name=query.mentions_by_name)
    async with sessions() as session:
        if query.name == ONCALL:
            return oncall_text(await oncall_now(session, now), now)
        if query.name == MINE:
            try:
                member = await resolve(session, query.platform, query.im_user_id)
            except NotLinked:  # a read-only command: "nothing was changed" would puzzle the asker
                return not_linked_message(query.platform, query.im_user_id,
                                          "so Vigil cannot tell which incidents are yours")
            incidents, total = await open_incidents_of(session, member.id, base_url)
            return mine_text(member.name, incidents, total, base_url)
    return help_text()
