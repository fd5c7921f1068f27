"""Outgoing incident webhooks and custom actions, with Flashduty's payloads (reference section 4).

Envelope: {event_id (dedup key), event_time (ms), event_type, person?, incident}. A webhook POST
has a 2 s timeout; a failed one fails its job, which the job runner retries with backoff, and
every attempt is on the incident's timeline. Custom actions POST the incident (with its alerts,
event_type i_custom) with a 1 s timeout and record the outcome as an i_custom event. Alert webhooks
(kind "alert") get {event_id, event_time, event_type, person?, alert} for a_new, a_update and a_merge.
Incident and alert objects carry `images` ([{src, alt, href}]) as the alerts gave them (core/images.py).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.egress import EgressRefused
from core import events, images, incidents, jobs
from core.crypto import unseal
from core.custom_fields import values_of
from core.errors import IllegalTransition, InvalidInput
from core.models import Alert, Channel, CustomAction, Incident, Integration, Member, TimelineEntry, Webhook

log = logging.getLogger("vigil.webhooks")

WEBHOOK_TIMEOUT = 2.0
CUSTOM_ACTION_TIMEOUT = 1.0


def _ts(value: datetime | None) -> int:
    return int(value.timestamp()) if value else 0


def _person(m: Member | None) -> dict[str, Any] | None:
    return None if m is None else {"person_id": m.id, "person_name": m.name, "email": m.email or ""}


async def incident_payload(session: AsyncSession, incident: Incident, base_url: str) -> dict[str, Any]:
    """The Incident object of Flashduty's webhooks."""
    channel = await session.get(Channel, incident.channel_id)
    ids = [r["person_id"] for r in incident.responders] + [i for i in (incident.creator_id, incident.closer_id) if i]
    people = {m.id: m for m in (await session.execute(select(Member).where(Member.id.in_(ids)))).scalars()} \
        if ids else {}
    return {
        "incident_id": str(incident.id), "num": incident.num, "title": incident.title,
        "description": incident.description, "incident_severity": incident.severity,
        "incident_status": incident.status, "progress": incident.progress,
        "created_at": _ts(incident.created_at), "updated_at": _ts(incident.updated_at),
        "start_time": _ts(incident.start_time), "last_time": _ts(incident.last_time),
        "end_time": _ts(incident.end_time), "ack_time": _ts(incident.ack_time), "close_time": _ts(incident.close_time),
        "snoozed_before": _ts(incident.snoozed_until), "labels": dict(incident.labels),
        "fields": await values_of(session, incident),
        "creator": _person(people.get(incident.creator_id)), "closer": _person(people.get(incident.closer_id)),
        "responders": [{**(_person(people.get(r["person_id"])) or {"person_id": r["person_id"]}),
                        "assigned_at": r.get("assigned_at", 0), "acknowledged_at": r.get("acknowledged_at", 0)}
                       for r in incident.responders],
        "alert_cnt": incident.alert_cnt, "channel_id": incident.channel_id,
        "channel_name": channel.name if channel else "", "group_method": incident.group_method,
        "dedup_key": incident.dedup_key, "detail_url": f"{base_url}/incidents/{incident.id}",
        # Flashduty's IncidentInfo carries images: those of the newest alerts, as the alerts gave them.
        "images": (await images.of_incidents(session, [incident.id], pick=images.passed_on))[incident.id],
    }


def alert_payload(a: Alert) -> dict[str, Any]:
    return {"alert_id": str(a.id), "data_source_id": a.integration_id, "title": a.title,
            "description": a.description, "alert_key": a.alert_key, "alert_severity": a.severity,
            "alert_status": a.status, "progress": a.progress, "created_at": _ts(a.created_at),
            "updated_at": _ts(a.updated_at), "start_time": _ts(a.start_time), "last_time": _ts(a.last_time),
            "end_time": _ts(a.end_time), "close_time": _ts(a.close_time), "labels": dict(a.labels),
            "images": images.passed_on(a.images or [], len(a.images or []))}


def event_id(*parts: object) -> str:
    """Stable per (webhook, event): a retried POST carries the same id, so receivers can dedup."""
    return hashlib.md5(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


async def post(http: aiohttp.ClientSession, url: str, payload: dict[str, Any], headers: dict[str, str],
               timeout: float) -> tuple[bool, str]:
    """POST JSON; (ok, what happened). Success is a 2xx answer within the timeout; a redirect is not followed.

    What happened is the status or our own reason, never the receiver's body (it may be an internal page).
    """
    try:
        async with http.post(url, json=payload, headers=headers, allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.read()
            return 200 <= resp.status < 300, f"HTTP {resp.status}"
    except TimeoutError:
        return False, f"no answer within {timeout:g} s"
    except EgressRefused as exc:  # an internal address: nothing was sent
        return False, str(exc)
    except aiohttp.ClientError as exc:
        return False, f"{type(exc).__name__}"


async def on_event(ctx: jobs.JobContext, batch: list[dict[str, Any]]) -> None:
    """Subscriber: one `webhook_post` job per matching webhook and event, so each retries on its own."""
    async with ctx.sessionmaker() as session:
        # Webhooks first: without any, no incident is loaded and nothing is written.
        hooks = (await session.execute(select(Webhook).where(Webhook.status == "enabled",
                                                             Webhook.kind == "incident"))).scalars().all()
        if not hooks:
            return
        channel_of = dict((await session.execute(select(Incident.id, Incident.channel_id).where(
            Incident.id.in_({a["incident_id"] for a in batch})))).all())
        for args in batch:
            channel_id = channel_of.get(args["incident_id"])
            if channel_id is None:
                continue  # the incident is gone
            for hook in hooks:
                if hook.channel_ids and channel_id not in hook.channel_ids:
                    continue
                if hook.event_types and args["kind"] not in hook.event_types:
                    continue
                await jobs.schedule(session, "webhook_post", {**args, "webhook_id": hook.id}, due_at=ctx.now(),
                                    job_id=f"webhook:{hook.id}:{args['entry_id']}")
        await session.commit()


@jobs.job("webhook_post")
async def webhook_post(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    """Deliver one event to one webhook; raising makes the job runner retry it with backoff."""
    async with ctx.sessionmaker() as session:
        hook = await session.get(Webhook, args["webhook_id"])
        entry = await session.get(TimelineEntry, args["entry_id"])
        if hook is None or entry is None or hook.status != "enabled":
            return
        incident = await incidents.get(session, args["incident_id"])
        actor = await session.get(Member, entry.actor_id) if entry.actor_id else None
        payload = {"event_id": event_id(hook.id, entry.id), "event_time": int(entry.at.timestamp() * 1000),
                   "event_type": entry.kind, "incident": await incident_payload(session, incident,
                                                                                ctx.services.get("base_url", ""))}
        if actor is not None:
            payload["person"] = _person(actor)
        headers = unseal(ctx.services.get("secret_key", ""), hook.headers) if hook.headers else {}
        ok, what = await post(ctx.services["http"], hook.url, payload, headers, WEBHOOK_TIMEOUT)
        events.note(session, incident.id, "webhook_sent" if ok else "webhook_failed", now=ctx.now(),
                    detail={"webhook_id": hook.id, "event_type": entry.kind, "result": what})
        await session.commit()
    if not ok:
        raise RuntimeError(f"webhook {hook.id}: {what}")


async def run_custom_action(ctx_http: aiohttp.ClientSession, session: AsyncSession, action: CustomAction,
                            incident: Incident, actor_id: int | None, base_url: str, secret_key: str,
                            now: datetime, *, source: str = "api") -> tuple[bool, str]:
    """POST the incident with its alerts to the action's endpoint and record the outcome (i_custom), with
    where it was run from (`source`: the Open API, the web page)."""
    body = await incident_payload(session, incident, base_url)
    body["alerts"] = [alert_payload(a) for a in await incidents.alerts_of(session, incident.id)]
    actor = await session.get(Member, actor_id) if actor_id else None
    payload = {"event_id": event_id("custom", action.id, incident.id, now.timestamp()),
               "event_time": int(now.timestamp() * 1000), "event_type": events.I_CUSTOM, "incident": body}
    if actor is not None:
        payload["person"] = _person(actor)
    headers = unseal(secret_key, action.headers) if action.headers else {}
    ok, what = await post(ctx_http, action.url, payload, headers, CUSTOM_ACTION_TIMEOUT)
    if not ok:  # Flashduty retries a custom action once on network errors
        ok, what = await post(ctx_http, action.url, payload, headers, CUSTOM_ACTION_TIMEOUT)
    await events.emit(session, incident, events.I_CUSTOM, now=now, actor_id=actor_id, source=source,
                      detail={"action_id": action.id, "name": action.name, "ok": ok, "result": what})
    return ok, what


async def run_on_incident(http: aiohttp.ClientSession, session: AsyncSession, action_id: int, incident_id: int,
                          actor_id: int, base_url: str, secret_key: str, now: datetime, *,
                          source: str) -> tuple[CustomAction, Incident, bool, str]:
    """A member runs one of the channel's custom actions on an incident, from the web page or a card: the action
    must be the incident's channel's, the incident not merged away, and the member one who may act on it (no
    observer; team scope), as for any incident action. Not committed: the caller commits."""
    incident = await incidents.get(session, incident_id)
    # A button's id fits any integer column, not PostgreSQL's int4: out of range is simply no such action.
    action = await session.get(CustomAction, action_id) if 0 < action_id < 2**31 else None
    if action is None or action.channel_id != incident.channel_id:
        raise InvalidInput("that custom action does not belong to this incident's channel")
    await incidents.may_act_on(session, incident, actor_id)
    if incident.merged_into_id is not None:
        raise IllegalTransition("incident was merged into another incident; act on that one")
    ok, what = await run_custom_action(http, session, action, incident, actor_id, base_url, secret_key, now,
                                       source=source)
    return action, incident, ok, what


@jobs.job("alert_webhooks")
async def alert_webhooks(ctx: jobs.JobContext, args: dict[str, Any]) -> None:
    """Send alert events to every matching alert webhook (Flashduty's alert webhook, reference 4.2).

    `items` are `[alert_id, event_type, channel_id, incident_id?]`: a_new and a_update from an ingest
    batch, a_merge when ingest attaches a new alert to an incident (new or existing) or when a merge of
    incidents moves alerts; `incident_id` is the incident the alert was merged into. `actor_id` is the
    member who merged, sent as `person`. event_id is stable per (webhook, job, item), so a retried job
    repeats its ids and receivers can dedup; event_time is the event's, in milliseconds.
    """
    async with ctx.sessionmaker() as session:
        hooks = (await session.execute(select(Webhook).where(Webhook.status == "enabled",
                                                             Webhook.kind == "alert"))).scalars().all()
        actor = await session.get(Member, args["actor_id"]) if args.get("actor_id") else None
        event_time = int(datetime.fromisoformat(args["at"]).timestamp() * 1000)
        failed = []
        for index, (alert_id, kind, channel_id, *rest) in enumerate(args["items"]):
            wanted = [h for h in hooks if not (h.channel_ids and channel_id not in h.channel_ids)
                      and not (h.event_types and kind not in h.event_types)]
            alert = await session.get(Alert, alert_id) if wanted else None
            if alert is None:
                continue
            # a_merge names the incident the alert joined then; other events, the alert's incident now
            incident_id = rest[0] if kind == "a_merge" and rest and rest[0] else alert.incident_id
            if kind == "a_merge" and not incident_id:
                continue
            body = await _alert_body(session, alert, channel_id, incident_id)
            for hook in wanted:
                payload = {"event_id": event_id("alert", hook.id, args["at"], index, alert_id, kind),
                           "event_time": event_time, "event_type": kind, "alert": body}
                if actor is not None:
                    payload["person"] = _person(actor)
                headers = unseal(ctx.services.get("secret_key", ""), hook.headers) if hook.headers else {}
                ok, what = await post(ctx.services["http"], hook.url, payload, headers, WEBHOOK_TIMEOUT)
                if not ok:
                    failed.append(f"webhook {hook.id} alert {alert_id} {kind}: {what}")
    if failed:  # the job is retried with backoff; receivers dedup by event_id
        raise RuntimeError("; ".join(failed[:5]))


async def _alert_body(session: AsyncSession, alert: Alert, channel_id: int, incident_id: int | None) -> dict[str, Any]:
    """The Alert object of Flashduty's alert webhook."""
    channel = await session.get(Channel, channel_id)
    integration = await session.get(Integration, alert.integration_id)
    body = {**alert_payload(alert), "title_rule": alert.title_rule, "event_cnt": alert.event_cnt,
            "data_source_name": integration.name if integration else "",
            "data_source_type": integration.type if integration else "",
            "channel_id": channel_id, "channel_name": channel.name if channel else ""}
    if incident_id:
        incident = await session.get(Incident, incident_id)
        body["incident"] = {"incident_id": str(incident_id), "title": incident.title if incident else ""}
    return body


def register() -> None:
    events.subscribe("webhooks", on_event)
