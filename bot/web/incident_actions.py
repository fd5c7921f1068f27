"""The incident page's actions: plain HTML forms (POST + CSRF token, then back to the page), no JavaScript.

Every action ends where a card click ends (DESIGN rule 1). The ones a card has (ack, unack, snooze, wake,
close, reopen, escalate, reassign, comment) go through the click path itself, `bot.chat.clicks.apply`, as a
click from the `web` platform acting as the signed-in member; merge, silence similar and custom actions call
the same core functions as the Open API. Core checks the member (observers and members outside a team-scoped
channel are refused), writes the timeline with source `web`, and the domain event updates every posted card.
What happened, or why nothing did, is shown on the page once (a message kept in the session).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp_session import get_session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.adapters.base import ActionEvent
from bot.cards.format import minutes_label
from bot.cards.model import ACTION_LABELS, DEFAULT_SNOOZE_CHOICES
from bot.chat import clicks
from bot.chat.actions import SNOOZE_MAX_MINUTES, Action, ActionData
from bot.keys import HTTP, SESSIONS, SETTINGS
from bot.web import auth, incident_fields
from bot.web.render import redirect
from core import incidents
from core.clock import utcnow
from core.errors import IllegalTransition, InvalidInput, NotFound, PermissionDenied
from core.models import CustomAction, Incident, Member
from core.silence_similar import SILENCE_SIMILAR, silence_similar
from core.types import Platform, Progress, Role
from webhooks.outgoing import run_on_incident

MERGE = "merge"
SNOOZE_CHOICES = DEFAULT_SNOOZE_CHOICES  # the durations the cards offer
SILENCE_CHOICES = (60, 240, 1440, 10080)
SILENCE_MAX_MINUTES = 43200  # the Open API's bound for a quick silence (30 days)
REASSIGN_LIST_MAX = 500  # members offered in the reassign list; more would make a phone page heavy
FLASH = "flash"

# Actions that are one button, and the card action each is.
_CLICKS = {a.value: a for a in (Action.ACK, Action.UNACK, Action.WAKE, Action.CLOSE, Action.REOPEN,
                                Action.ESCALATE, Action.SNOOZE, Action.REASSIGN, Action.COMMENT)}
# The words of the cards' buttons (bot/cards/model.py), so a page and a card never disagree.
LABELS = {**{a.value: text for a, text in ACTION_LABELS.items()}, MERGE: "Merge"}


def offered(progress: Progress, *, merged: bool, snoozed: bool, may_act: bool) -> tuple[str, ...]:
    """The actions the page offers now: none to a member who may not act on the incident; else those core
    allows in this state (the same rule table the cards use), and silence similar unless the incident was
    merged away (its alerts live on in the incident it was merged into)."""
    if not may_act:
        return ()
    names = [a.value for a in incidents.allowed_actions(progress, merged=merged, snoozed=snoozed)]
    if not merged:
        names.append(SILENCE_SIMILAR)
    return tuple(names)


async def actions_view(db: AsyncSession, incident: Incident, member_id: int) -> dict[str, Any]:
    """What the page's action panel needs: the actions offered, or why there are none."""
    try:
        await incidents.may_act_on(db, incident, member_id)
        refusal = ""
    except PermissionDenied as exc:
        refusal = f"You can read this incident but not act on it: {exc}."
    merged = incident.merged_into_id is not None
    names = offered(Progress(incident.progress), merged=merged, snoozed=incident.snoozed_until is not None,
                    may_act=not refusal)
    members: list[tuple[int, str]] = []
    if Action.REASSIGN.value in names:
        members = [(i, n) for i, n in (await db.execute(
            select(Member.id, Member.name).where(Member.role != Role.OBSERVER.value)
            .order_by(Member.name, Member.id).limit(REASSIGN_LIST_MAX))).all()]
    custom: list[tuple[int, str]] = []
    if not refusal and not merged:
        custom = [(i, n) for i, n in (await db.execute(
            select(CustomAction.id, CustomAction.name).where(CustomAction.channel_id == incident.channel_id)
            .order_by(CustomAction.id))).all()]
    return {**await incident_fields.fields_view(db, incident, editable=not refusal and not merged),
            "actions": names, "refusal": refusal, "assignable": members, "custom_actions": custom, "labels": LABELS,
            "comment_max": incidents.COMMENT_MAX,
            "snooze_choices": [(m, minutes_label(m)) for m in SNOOZE_CHOICES],
            "silence_choices": [(m, minutes_label(m)) for m in SILENCE_CHOICES]}


async def take_flash(request: web.Request) -> dict[str, Any] | None:
    """The message of the last action on this browser, shown once."""
    return (await get_session(request)).pop(FLASH, None)


def _whole_number(form: Any, field: str, what: str, low: int, high: int) -> int:
    raw = form.get(field)
    if not isinstance(raw, str) or not raw.strip().isdigit() or not low <= int(raw.strip()) <= high:
        raise InvalidInput(f"{what} must be a whole number from {low} to {high}")
    return int(raw.strip())


Result = tuple[bool, str]
Runner = Callable[[web.Request, AsyncSession, auth.Viewer, int, Any], Awaitable[Result]]


async def _click(request: web.Request, who: auth.Viewer, incident_id: int, action: Action,
                 inputs: dict[str, str] | None = None, **fields: int) -> Result:
    """Run a card action through the click path, as a click from the web by the signed-in member."""
    payload = ActionData.for_action(action, incident_id, **fields).pack()
    event = ActionEvent(Platform.WEB, f"member:{who.member_id}", payload, inputs or {})
    outcome = await clicks.apply(event, request.app[SESSIONS], auth.base_url(request), utcnow(),
                                 member_id=who.member_id)
    return outcome.ok, outcome.text


async def _card_action(request: web.Request, db: AsyncSession, who: auth.Viewer, incident_id: int,
                       form: Any) -> Result:
    action = _CLICKS[request.match_info["action"]]
    if action is Action.SNOOZE:
        minutes = _whole_number(form, "minutes", "Snooze minutes", 1, SNOOZE_MAX_MINUTES)
        return await _click(request, who, incident_id, action, minutes=minutes)
    if action is Action.REASSIGN:
        member_id = _whole_number(form, "member_id", "The member to reassign to", 1, 2**63 - 1)
        return await _click(request, who, incident_id, action, member_id=member_id)
    if action is Action.COMMENT:
        text = form.get("comment")
        return await _click(request, who, incident_id, action, {"comment": text if isinstance(text, str) else ""})
    return await _click(request, who, incident_id, action)


async def _merge(request: web.Request, db: AsyncSession, who: auth.Viewer, incident_id: int, form: Any) -> Result:
    raw = form.get("into")
    number = raw.strip().removeprefix("#").strip() if isinstance(raw, str) else ""
    if not number.isdigit() or len(number) > 18:
        raise InvalidInput("merge: give the number of the incident to merge into, e.g. 42")
    target = await incidents.merge(db, int(number), [incident_id], who.member_id, now=utcnow(),
                                   source=Platform.WEB.value)
    await db.commit()
    return True, f"Merged into incident #{target.num or target.id}: act on that one from now on."


async def _silence_similar(request: web.Request, db: AsyncSession, who: auth.Viewer, incident_id: int,
                           form: Any) -> Result:
    minutes = _whole_number(form, "minutes", "Silence minutes", 1, SILENCE_MAX_MINUTES)
    now = utcnow()
    rule = await silence_similar(db, incident_id, who.member_id, minutes=minutes, now=now,
                                 source=Platform.WEB.value)
    await db.commit()
    return True, f"Alerts like these are silenced for {minutes_label(minutes)} (silence rule {rule.id})."


async def _custom(request: web.Request, db: AsyncSession, who: auth.Viewer, incident_id: int, form: Any) -> Result:
    settings = request.app[SETTINGS]
    action, _incident, ok, what = await run_on_incident(
        request.app[HTTP], db, int(request.match_info["action_id"]), incident_id, who.member_id,
        settings.resolved_base_url(), settings.secret_key, utcnow(), source=Platform.WEB.value)
    await db.commit()
    return ok, (f"{action.name}: done ({what})." if ok else f"{action.name} failed: {what}.")


async def _field(request: web.Request, db: AsyncSession, who: auth.Viewer, incident_id: int, form: Any) -> Result:
    return await incident_fields.set_from_form(db, who.member_id, incident_id, int(request.match_info["field_id"]),
                                               form)


async def _act(request: web.Request, db: AsyncSession, who: auth.Viewer, run: Runner) -> web.StreamResponse:
    incident_id = int(request.match_info["id"])
    form = await request.post()
    await db.rollback()  # end the sign-in check's read: the action runs in a transaction of its own
    try:
        ok, text = await run(request, db, who, incident_id, form)
    except (IllegalTransition, PermissionDenied, InvalidInput, NotFound) as exc:
        await db.rollback()
        ok, text = False, f"Nothing changed: {exc}."
    (await get_session(request))[FLASH] = {"ok": ok, "text": text}
    return redirect(f"/incidents/{incident_id}")


def _handler(run: Runner) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @auth.members_only
    async def handle(request: web.Request, db: AsyncSession, who: auth.Viewer) -> web.StreamResponse:
        return await _act(request, db, who, run)
    return handle


def setup(app: web.Application) -> None:
    incident = r"/incidents/{id:\d{1,18}}"
    app.router.add_post(incident + "/{action:" + "|".join(_CLICKS) + "}", _handler(_card_action))
    app.router.add_post(incident + "/merge", _handler(_merge))
    app.router.add_post(incident + "/silence-similar", _handler(_silence_similar))
    app.router.add_post(incident + r"/custom-actions/{action_id:\d{1,18}}", _handler(_custom))
    app.router.add_post(incident + r"/fields/{field_id:\d{1,18}}", _handler(_field))
