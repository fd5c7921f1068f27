"""`page`: open an incident from chat and page the people named (Slack: `/vigil page @ann disk full on db-1`,
elsewhere the same words in a message to the bot).

    page @someone [@someone-else ...] [critical|warning|info] [channel:<name> | channel:"<name>"] <title>

Each adapter takes the mentions out of the words (their markup is the platform's) and hands over the platform
user ids mentioned. `parse` reads the remaining words (pure); `run` resolves the asker and every person named
through the platform's mapping table, exactly as a click resolves its clicker, and opens the incident through
core.manual_incidents.create, the Open API's own path, so escalation, cards, bots and webhooks follow.
Without `channel:` the incident goes to the only channel there is; with several, the asker must name one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import manual_incidents
from core.errors import VigilError
from core.models import Channel
from core.types import Platform, Severity
from mapping_tables.store import NotLinked, not_linked_message, resolve, resolve_mention

USAGE = 'page @someone [critical|warning|info] [channel:<name>] <title>'
DEFAULT_SEVERITY = Severity.CRITICAL  # paging a person by hand is urgent unless the asker says otherwise
CHANNELS_LISTED = 10
WORDS = re.compile(r'(?i:channel:)"[^"]*"|\S+')  # channel:"two words" is one word


@dataclass(frozen=True)
class PageRequest:
    im_user_ids: tuple[str, ...]
    title: str
    severity: Severity = DEFAULT_SEVERITY
    channel: str | None = None


class PageSyntaxError(ValueError):
    """The words do not make a page; the message says what is missing."""


def parse(text: str, mentions: Sequence[str] = ()) -> PageRequest:
    """The words after `page` with the mentions taken out (`mentions`, the people to page): an optional
    severity and channel, then the title."""
    words = WORDS.findall(text)  # not shlex: a title like "can't log in" has a lone quote
    users = [m for m in mentions if m]
    if not users:
        first = words[0] if words else ""
        if first.startswith("@"):
            raise PageSyntaxError(f"{first} is not a mention Vigil can read; pick the person from the list your "
                                  "chat offers as you type")
        raise PageSyntaxError("name the person to page first, as @someone")
    severity, channel = DEFAULT_SEVERITY, None
    while words:
        word = words[0]
        if word.capitalize() in Severity._value2member_map_:
            severity = Severity(word.capitalize())
        elif word.lower().startswith("channel:"):
            channel = word[len("channel:"):].strip().strip('"').strip()
            if not channel:
                raise PageSyntaxError("channel: needs a channel name, e.g. channel:payments")
        else:
            break
        words.pop(0)
    title = " ".join(words).strip()
    if not title:
        raise PageSyntaxError("say what is wrong after the people named: that is the incident's title")
    return PageRequest(tuple(dict.fromkeys(users)), title, severity, channel)


async def _channel(session: AsyncSession, name: str | None) -> Channel:
    rows = list((await session.execute(
        select(Channel).where(Channel.status == "enabled").order_by(Channel.name))).scalars())
    if name is not None:
        found = [c for c in rows if c.name.casefold() == name.casefold()]
        if found:
            return found[0]
        raise PageSyntaxError(f"there is no channel named {name!r}; {_listed(rows)}")
    if len(rows) == 1:
        return rows[0]
    if not rows:
        raise PageSyntaxError("Vigil has no channel yet; ask an admin to create one")
    raise PageSyntaxError(f"name the channel with channel:<name>; {_listed(rows)}")


def _listed(rows: list[Channel]) -> str:
    names = ", ".join(c.name for c in rows[:CHANNELS_LISTED])
    more = f" and {len(rows) - CHANNELS_LISTED} more" if len(rows) > CHANNELS_LISTED else ""
    return f"channels: {names}{more}" if rows else "there are no channels"


async def run(platform: Platform, im_user_id: str, text: str, sessions: async_sessionmaker[AsyncSession],
              base_url: str, now: datetime, *, mentions: Sequence[str] = (), by_name: bool = False) -> str:
    """Open the incident and page; the reply says what happened or what to fix. `by_name`: a mention may be a
    member's name as well as a user id (platforms whose mentions are plain text)."""
    try:
        request = parse(text, mentions)
    except PageSyntaxError as exc:
        return f"Nothing was paged: {exc}.\nUsage: `{USAGE}`"
    async with sessions() as session:
        try:
            asker = await resolve(session, platform, im_user_id)
        except NotLinked:
            return not_linked_message(platform, im_user_id, "so nobody was paged")
        responders = []
        for uid in request.im_user_ids:
            try:
                responders.append(await (resolve_mention(session, platform, uid) if by_name
                                         else resolve(session, platform, uid)))
            except NotLinked:
                return (f"Nothing was paged: {uid} is not linked to a Vigil member, so Vigil cannot reach them. "
                        f"Ask a Vigil admin to add them to the {platform.value} mapping table.")
        try:
            channel = await _channel(session, request.channel)
            incident = await manual_incidents.create(
                session, asker.id, channel_id=channel.id, title=request.title, severity=request.severity.value,
                responder_ids=[m.id for m in responders], now=now, source=platform.value)
            await session.commit()
        except (PageSyntaxError, VigilError) as exc:
            await session.rollback()
            return f"Nothing was paged: {exc}."
        names = ", ".join(m.name for m in responders)
        return (f"{asker.name} paged {names}: #{incident.num} {incident.title} ({request.severity.value}, "
                f"channel {channel.name}) · {base_url}/incidents/{incident.id}")
