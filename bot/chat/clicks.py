"""Every click goes through one path (DESIGN rule 1):

verify -> parse -> resolve the IM user through the mapping table -> core action (which checks that
observers cannot act) -> answer the platform, with the clicking platform's card re-rendered. The
domain event the action emits then updates every other card of the incident (bot/chat/card_sync.py).
A forged or unsigned callback gets 401 and changes nothing; a copy of a callback already taken (a replay,
or the platform's own retry) is answered as done and changes nothing either (bot/chat/replay.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.adapters.base import ActionEvent, Adapter, Heard, HttpReply, InboundRequest, Outcome
from bot.cards import RENDERERS, render, render_timeline
from bot.chat import card_codes, replay
from bot.chat.actions import Action, ActionData, ActionPayloadError
from bot.chat.card_view import incident_card
from core import custom_fields, incidents, silence_similar
from core.errors import IllegalTransition, InvalidInput, NotFound, PermissionDenied
from core.models import CustomField, Incident, Member
from mapping_tables.store import NotLinked, resolve
from webhooks.outgoing import run_on_incident

log = logging.getLogger("vigil.clicks")

DONE = {
    Action.ACK: "acknowledged", Action.UNACK: "un-acknowledged", Action.CLOSE: "closed", Action.REOPEN: "reopened",
    Action.ESCALATE: "escalated", Action.SNOOZE: "snoozed", Action.WAKE: "woke", Action.REASSIGN: "reassigned",
    Action.COMMENT: "commented on", Action.REFRESH: "refreshed", Action.SILENCE_SIMILAR: "silenced alerts like",
    Action.SET_FIELD: "set a custom field of",
}
UNAUTHORIZED = HttpReply(401, orjson.dumps({"error": "callback signature verification failed"}))
# Success-shaped, so the platform does not retry, and empty, so a replayer learns nothing about the incident.
SEEN_BEFORE = Outcome(True, "")


@dataclass(frozen=True)
class CustomActions:
    """What running a channel's custom action from a card needs beyond the database: the shared HTTP session
    (held to the egress policy) and the key that unseals the action's headers. Without it, a custom-action
    click is refused and runs nothing."""

    http: aiohttp.ClientSession
    secret_key: str


async def handle(adapter: Adapter, req: InboundRequest, sessions: async_sessionmaker[AsyncSession],
                 base_url: str, now: datetime, heard: Heard | None = None, *,
                 custom: CustomActions | None = None) -> HttpReply:
    """The whole click path for one platform callback. A verified callback that is no click but a message to
    the bot (an adapter with `parse_message`) goes to `heard` (bot.chat.messages.answer) before the answer."""
    if not adapter.verify(req, now):
        log.warning("%s callback failed verification", adapter.platform.value)
        return UNAUTHORIZED
    challenge = adapter.handshake(req)
    if challenge is not None:
        return challenge
    event = adapter.parse_action(req)
    if event is None:
        parse_message = getattr(adapter, "parse_message", None)
        message = parse_message(req) if parse_message is not None and heard is not None else None
        if message is not None and heard is not None:
            await heard(message)
        return adapter.reply(req, Outcome(True, ""))
    outcome = await apply(event, sessions, base_url, now, custom=custom)
    return adapter.reply(req, outcome)


async def apply(event: ActionEvent, sessions: async_sessionmaker[AsyncSession], base_url: str,
                now: datetime, *, member_id: int | None = None, custom: CustomActions | None = None) -> Outcome:
    """Resolve the clicking user (or take `member_id`, e.g. from a signed voice token) and run the action
    in core; never raises for bad clicks. A single-use card update code the click carried (WeCom) is stored
    on the card's CardRef whatever the outcome, with the action when there is one. The callback's id is
    recorded first, whatever the outcome, so not even a click refused now can be replayed later."""
    if not await replay.take_once(sessions, event.platform, event.callback, now):
        log.warning("%s callback seen before (a replay, or the platform retrying): answered, nothing changed",
                    event.platform.value)
        return SEEN_BEFORE
    try:
        data = ActionData.unpack(event.inputs.get("snooze") or event.payload)
    except ActionPayloadError as exc:
        return Outcome(False, f"This button is not valid any more ({exc}).")
    async with sessions() as session:
        try:
            member = (await session.get(Member, member_id) if member_id is not None
                      else await resolve(session, event.platform, event.im_user_id))
            if member is None:
                raise PermissionDenied("that member no longer exists")
            if data.action is Action.TIMELINE:
                return await _timeline(session, data, member, event, base_url, now)
            text = ""
            if data.action is Action.CUSTOM:
                incident, ok, text = await _custom(session, data, member, event, base_url, now, custom)
            else:
                incident, ok = await _run(session, data, member.id, event, now), True
            await card_codes.remember_click(session, event, data.incident_id, now)
            await session.commit()
        except NotLinked as exc:
            await _keep_code(session, event, data.incident_id, now)
            return Outcome(False, str(exc))
        except (IllegalTransition, PermissionDenied, InvalidInput) as exc:
            await _keep_code(session, event, data.incident_id, now)
            card = await _current_card(session, event, data.incident_id, base_url, now)
            return Outcome(False, f"Nothing changed: {exc}.", card)
        except NotFound:
            return Outcome(False, f"Incident {data.incident_id} no longer exists.")
        card = None
        if event.platform in RENDERERS:
            card = render(event.platform, await incident_card(session, incident, base_url, now))
        return Outcome(ok, text or f"{member.name} {DONE.get(data.action, 'updated')} incident #{incident.num}.", card)


async def _timeline(session: AsyncSession, data: ActionData, member: Member, event: ActionEvent, base_url: str,
                    now: datetime) -> Outcome:
    """Read the latest timeline entries for the clicker: a mapped member who may see the incident (on a
    team-scoped channel, an admin or a member of its teams; observers read too). Changes nothing."""
    incident = await incidents.get(session, data.incident_id)
    await incidents.check_team_scope(session, incident, member)
    card = await incident_card(session, incident, base_url, now, timeline=True)
    view = render_timeline(event.platform, card) if event.platform in RENDERERS else None
    if view is None:
        return Outcome(True, f"The timeline of incident #{incident.num} is on its page: {card.url}#timeline")
    return Outcome(True, "", view=view)


async def _custom(session: AsyncSession, data: ActionData, member: Member, event: ActionEvent, base_url: str,
                  now: datetime, custom: CustomActions | None) -> tuple[Incident, bool, str]:
    """Run the channel's custom action as the web page does (webhooks.outgoing.run_on_incident: the same checks,
    the outcome on the timeline with this platform as its source)."""
    if custom is None:
        raise InvalidInput("custom actions run from chat cards and the incident page")
    action, incident, ok, what = await run_on_incident(
        custom.http, session, data.action_id, data.incident_id, member.id, base_url,  # type: ignore[attr-defined]
        custom.secret_key, now, source=event.platform.value)
    if ok:
        return incident, True, f"{member.name} ran {action.name} on incident #{incident.num}: {what}."
    return incident, False, f"{action.name} failed on incident #{incident.num}: {what}."


async def _run(session: AsyncSession, data: ActionData, actor: int, event: ActionEvent, now: datetime):  # type: ignore[no-untyped-def]
    iid, src = data.incident_id, event.platform.value
    match data.action:
        case Action.ACK:
            return await incidents.ack(session, iid, actor, now=now, source=src)
        case Action.UNACK:
            return await incidents.unack(session, iid, actor, now=now, source=src)
        case Action.CLOSE:
            return await incidents.close(session, iid, actor, now=now, source=src)
        case Action.REOPEN:
            return await incidents.reopen(session, iid, actor, now=now, source=src)
        case Action.ESCALATE:
            return await incidents.escalate(session, iid, actor, now=now, source=src)
        case Action.SNOOZE:
            return await incidents.snooze(session, iid, actor, minutes=data.minutes, now=now, source=src)  # type: ignore[attr-defined]
        case Action.WAKE:
            return await incidents.wake(session, iid, actor, now=now, source=src)
        case Action.REASSIGN:
            member_id = getattr(data, "member_id", None) or _int(event.inputs.get("member_id"))
            if member_id is None and event.inputs.get("assignee_im_user_id"):
                # a platform user picker (Slack users_select) names an IM user: the mapping table says who
                member_id = (await resolve(session, event.platform, event.inputs["assignee_im_user_id"])).id
            if member_id is None:
                raise InvalidInput("pick a member to reassign to")
            return await incidents.reassign(session, iid, actor, member_ids=[member_id], now=now, source=src)
        case Action.COMMENT:
            return await incidents.comment(session, iid, actor, text=event.inputs.get("comment", ""), now=now,
                                           source=src)
        case Action.REFRESH:  # Teams asks for the current card; reading needs no permission beyond the link
            return await incidents.get(session, iid)
        case Action.SET_FIELD:
            return await _set_field(session, data, actor, event, now)
        case Action.SILENCE_SIMILAR:  # a day, as the Open API's default: the card has no place to ask
            await silence_similar.silence_similar(session, iid, actor, minutes=silence_similar.DEFAULT_MINUTES,
                                                  now=now, source=src)
            return await incidents.get(session, iid)
    raise InvalidInput(f"{data.action.value} is not available from a card yet")


async def _set_field(session: AsyncSession, data: ActionData, actor: int, event: ActionEvent, now: datetime) -> Incident:
    """A custom field's select: the payload names the field and, or beside it the inputs name, the chosen
    options by position; core.custom_fields.set_value checks and sets the value they make."""
    definition = await session.get(CustomField, data.field_id)  # type: ignore[attr-defined]
    if definition is None:
        raise InvalidInput("that custom field no longer exists; refresh the card")
    option = getattr(data, "option", None)
    positions = [option] if option is not None else [
        int(p) for p in event.inputs.get("options", "").split(",") if p.isdigit() and len(p) < 4]
    return await custom_fields.set_value(session, data.incident_id, actor, name=definition.name,
                                         value=custom_fields.from_positions(definition, positions), now=now,
                                         source=event.platform.value)


async def _keep_code(session: AsyncSession, event: ActionEvent, incident_id: int, now: datetime) -> None:
    """After a refused click: drop whatever it did, but keep the update code it carried."""
    await session.rollback()
    if await card_codes.remember_click(session, event, incident_id, now):
        await session.commit()


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


async def _current_card(session: AsyncSession, event: ActionEvent, incident_id: int, base_url: str,
                        now: datetime) -> dict | None:
    if event.platform not in RENDERERS:
        return None
    try:
        incident = await incidents.get(session, incident_id)
    except NotFound:
        return None
    return render(event.platform, await incident_card(session, incident, base_url, now))
