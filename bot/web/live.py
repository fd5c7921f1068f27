"""Live updates of an open incident page: GET /incidents/{id}/live, a stream of server-sent events.

How a web process learns of changes: it polls the database. With arq workers an incident's domain events
are emitted and applied in worker processes (and in other web processes behind the same load balancer), so
an in-process subscriber would miss most of them; Redis pub/sub would need a publisher on every path that
writes a timeline entry and is absent in the embedded setup (`vigil serve` alone, SQLite). The database is
shared by every process in every setup, and every change of an incident writes its row or its timeline. So
one task per web process, only while a stream is open, reads once per POLL_SECONDS the *version* of every
watched incident (its updated_at and event count, its timeline's entry count and last id) in one query,
whatever the number of open pages. A count, not only the last id: PostgreSQL hands out ids at insert and
transactions commit in any order, so an entry can appear below the last id seen.

A stream carries no incident data, only "changed" (with the new version): the page fetches itself again
with the browser's own session, so whatever a stream's session could not see it never shows.

The same tick reads each streaming member's role and credential epoch: a member demoted, removed or whose
password changed gets "signed-out" and the stream ends (the session check of every page, bot/web/auth.py).
Those are rows every process reads, so it holds wherever the stream is. A sign-out is not: the session is
a cookie, and the POST /logout may reach any process. Signing out on this process ends that session's
streams at once; for the others, the sign-out writes the session's key to the shared database
(bot/web/signed_out.py) and every process's tick looks up the keys of its open streams' sessions there once
per VIGIL_WEB_SESSION_CHECK_SECONDS (one primary-key read for all of them), so a stream held anywhere ends
within that time. Not every tick: a sign-out is rare and a stream left open meanwhile only says "changed",
which the page cannot follow without its cookie.
A member has at most MAX_STREAMS_PER_MEMBER streams per process: browsers keep six connections per site
over HTTP/1.1, and a stream holds one for as long as the page is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.keys import SESSIONS, SETTINGS
from bot.web import auth, signed_out
from bot.web.render import STATIC
from core.models import Incident, Member, TimelineEntry
from core.models.web import MemberLogin

log = logging.getLogger("vigil.web.live")

POLL_SECONDS = 1.0
SESSION_CHECK_SECONDS = 15.0  # default of VIGIL_WEB_SESSION_CHECK_SECONDS
HEARTBEAT_SECONDS = 15.0  # a comment line now and then: proxies keep the stream, and a gone browser is noticed
MAX_STREAMS_PER_MEMBER = 4
MAX_STREAMS = 1000  # per process
RETRY_MS = 3000  # how long a browser waits before reconnecting a dropped stream
SCRIPT_VERSION = str(int((STATIC / "live.js").stat().st_mtime))  # in the script's URL: a new one is fetched


@dataclass(eq=False)
class Stream:
    """One open page's stream: what it watches, whose session it is, and what it has to say next.

    An incident page watches its incident; an incident list page (bot/web/live_list.py) the incidents its rows
    show, and counts the incidents newer than the page that its filter would show (`newer`)."""

    watched: tuple[int, ...]
    member_id: int
    role: str
    epoch: int
    session_key: str  # the session's CSRF token: random per session, so it names the session
    version: str
    newer: Callable[[AsyncSession], Awaitable[int]] | None = None
    news: int = 0  # what `newer` counted last
    counted_at: int = 0  # the newest incident id when `newer` last counted: no count again until one is newer
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str = ""  # why the stream must end: "signed-out", "shutdown"

    def end(self, reason: str) -> None:
        self.ended = self.ended or reason
        self.wake.set()


def version_of(updated_at: Any, event_cnt: int, entries: int, last_entry: int | None) -> str:
    """An incident's version as the page shows it: changes whenever its row or its timeline does."""
    stamp = int(updated_at.timestamp() * 1_000_000) if updated_at is not None else 0
    return f"{stamp}.{event_cnt}.{entries}.{last_entry or 0}"


def version_of_many(current: dict[int, str], watched: tuple[int, ...]) -> str:
    """The version of what a stream watches: the incident's own for one, a digest for several (a list's rows)."""
    if len(watched) == 1:
        return current.get(watched[0], "gone")
    joined = "|".join(f"{i}:{current.get(i, 'gone')}" for i in sorted(watched))
    return hashlib.sha256(joined.encode()).hexdigest()[:20]


def still_signed_in(stream_role: str, stream_epoch: int, row: tuple[str, int | None] | None) -> bool:
    """The rule of bot/web/auth.py `viewer`, for a session already streaming: the member still exists, with
    the role and the credential epoch the session began with."""
    return row is not None and row[0] == stream_role and (row[1] or 0) == stream_epoch


def timeline_columns() -> tuple[Any, Any]:
    """The timeline's part of an incident's version (entry count, last id), as columns of a query on Incident:
    read in the same statement as the incident, both come from one snapshot."""
    entries = (select(func.count(TimelineEntry.id)).where(TimelineEntry.incident_id == Incident.id)
               .correlate(Incident).scalar_subquery())
    last = (select(func.max(TimelineEntry.id)).where(TimelineEntry.incident_id == Incident.id)
            .correlate(Incident).scalar_subquery())
    return entries, last


async def versions(db: AsyncSession, incident_ids: set[int]) -> dict[int, str]:
    """The version of each existing incident of `incident_ids`, in one query."""
    if not incident_ids:
        return {}
    rows = await db.execute(select(Incident.id, Incident.updated_at, Incident.alert_event_cnt, *timeline_columns())
                            .where(Incident.id.in_(incident_ids)))
    return {i: version_of(u, c, n, m) for i, u, c, n, m in rows.all()}


class Hub:
    """This process's open streams and the one poll that feeds them all."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], poll_seconds: float = POLL_SECONDS,
                 session_check_seconds: float = SESSION_CHECK_SECONDS) -> None:
        self.sessions, self.poll_seconds, self.session_check_seconds = sessions, poll_seconds, session_check_seconds
        self._sessions_due = 0.0  # monotonic time of the next look for signed-out sessions
        self.streams: set[Stream] = set()
        self.per_member: Counter[int] = Counter()
        self._task: asyncio.Task[None] | None = None

    def open(self, stream: Stream) -> str:
        """Register `stream`; '' when done, else why not."""
        if self.per_member[stream.member_id] >= MAX_STREAMS_PER_MEMBER:
            return (f"Live updates are on in {MAX_STREAMS_PER_MEMBER} other pages of yours already; close one, "
                    "or reload this page to see changes.")
        if len(self.streams) >= MAX_STREAMS:
            return "Too many pages are following incidents live right now; reload the page to see changes."
        self.streams.add(stream)
        self.per_member[stream.member_id] += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="vigil-live-poll")
        return ""

    def close(self, stream: Stream) -> None:
        if stream in self.streams:
            self.streams.discard(stream)
            self.per_member[stream.member_id] -= 1
            if self.per_member[stream.member_id] <= 0:
                del self.per_member[stream.member_id]

    def end_session(self, session_key: str) -> None:
        for s in list(self.streams):
            if s.session_key == session_key:
                s.end("signed-out")

    async def shutdown(self, app: web.Application | None = None) -> None:
        for s in list(self.streams):
            s.end("shutdown")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while self.streams:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.tick()
            except Exception:  # a database hiccup: the next tick tries again; pages keep what they show
                log.exception("live updates: polling the database failed")

    async def tick(self) -> None:
        """Read the versions and sign-ins of everything streamed once; wake the streams concerned."""
        streams = list(self.streams)
        if not streams:
            return
        check_sessions = time.monotonic() >= self._sessions_due
        async with self.sessions() as db:
            current = await versions(db, {i for s in streams for i in s.watched})
            members = {s.member_id for s in streams}
            rows = await db.execute(select(Member.id, Member.role, MemberLogin.epoch)
                                    .outerjoin(MemberLogin, MemberLogin.member_id == Member.id)
                                    .where(Member.id.in_(members)))
            signed = {i: (role, epoch) for i, role, epoch in rows.all()}
            gone = await signed_out.which(db, {s.session_key for s in streams}) if check_sessions else set()
            await self._count_newer(db, [s for s in streams if s.newer is not None])
        if check_sessions:
            self._sessions_due = time.monotonic() + self.session_check_seconds
        for s in streams:
            if s.session_key in gone or not still_signed_in(s.role, s.epoch, signed.get(s.member_id)):
                s.end("signed-out")
            elif (now := version_of_many(current, s.watched)) != s.version:
                s.version = now
                s.wake.set()

    @staticmethod
    async def _count_newer(db: AsyncSession, counting: list[Stream]) -> None:
        """List streams: count again (each with its own filter, so its member's scope) only when an incident
        newer than the last count exists; one max(id) on the primary key otherwise. (PostgreSQL hands out ids
        at insert: an incident committed after a newer one is counted at the next new incident.)"""
        if not counting:
            return
        newest = (await db.execute(select(func.max(Incident.id)))).scalar() or 0
        for s in counting:
            if newest > s.counted_at and s.newer is not None:
                s.counted_at = newest
                if (n := await s.newer(db)) != s.news:
                    s.news = n
                    s.wake.set()


HUB = web.AppKey("live_hub", Hub)


def _event(name: str, data: str, event_id: str = "") -> bytes:
    lines = [f"event: {name}", f"data: {data}"] + ([f"id: {event_id}"] if event_id else [])
    return ("\n".join(lines) + "\n\n").encode()


def _refused(status: int, text: str) -> web.Response:
    # Any answer but 200 text/event-stream makes a browser's EventSource give up instead of reconnecting.
    return web.Response(status=status, text=text, headers={"Cache-Control": "no-store"})


async def incident_stream(request: web.Request) -> web.StreamResponse:
    if not auth.enabled(request):
        return _refused(503, auth.OFF_MESSAGE)
    incident_id = int(request.match_info["id"])
    async with request.app[SESSIONS]() as db:
        who = await auth.viewer(request, db)
        if who is None:
            return _refused(401, "Sign in to follow this incident live.")
        now = (await versions(db, {incident_id})).get(incident_id)
    if now is None:
        return _refused(404, f"Incident {incident_id} does not exist.")
    session = await get_session(request)
    stream = Stream((incident_id,), who.member_id, session.get("role", ""), session.get("epoch", 0), who.csrf, now)
    return await serve(request, stream)


async def serve(request: web.Request, stream: Stream) -> web.StreamResponse:
    """Register `stream` and answer with it until it ends: "changed" (with the version) when what it watches
    changes, "new" (with the count) when a list's count of newer incidents does, and why it ended."""
    # The page says which version it shows; a reconnecting browser says which it saw last.
    seen = request.headers.get("Last-Event-ID") or request.query.get("v", "")
    hub = request.app[HUB]
    refusal = hub.open(stream)
    if refusal:
        return _refused(429, refusal)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})  # nginx: pass each event on at once
    said, said_news = seen, 0
    try:
        await resp.prepare(request)
        await resp.write(f"retry: {RETRY_MS}\n\n".encode())
        while not stream.ended:
            if stream.version != said:
                said = stream.version
                await resp.write(_event("changed", said, said))
            if stream.news != said_news:
                said_news = stream.news
                await resp.write(_event("new", str(said_news)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.wake.wait(), HEARTBEAT_SECONDS)
            if stream.ended:
                await resp.write(_event(stream.ended, ""))
            elif stream.wake.is_set():
                stream.wake.clear()
            else:
                await resp.write(b": still here\n\n")
    except ConnectionResetError:
        pass  # the page was closed: nothing to say to anyone
    finally:
        hub.close(stream)
    return resp


async def _after_sign_out(request: web.Request, response: web.StreamResponse) -> None:
    """A sign-out served here ends its session's streams here (bot/web/login.py signs out: the CSRF token
    its form carried, checked before the 303, names the session)."""
    if request.method == "POST" and request.path == "/logout" and response.status == 303:
        token = (await request.post()).get("csrf")
        if isinstance(token, str) and token:
            request.app[HUB].end_session(token)


def setup(app: web.Application) -> None:
    hub = Hub(app[SESSIONS], session_check_seconds=app[SETTINGS].web_session_check_seconds)
    app[HUB] = hub
    app.router.add_get(r"/incidents/{id:\d{1,18}}/live", incident_stream)
    app.on_response_prepare.append(_after_sign_out)
    app.on_shutdown.append(hub.shutdown)
