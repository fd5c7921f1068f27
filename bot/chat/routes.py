"""HTTP callbacks of the chat platforms: /im/{platform}/callback -> the one click path."""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from bot.adapters.base import InboundRequest
from bot.body_deadline import READS_ITS_OWN_BODY, read_body
from bot.chat import clicks
from bot.chat import commands as chat_commands
from bot.chat import messages as chat_messages
from bot.egress import client_session
from bot.keys import ADAPTER_MAP, DIRECTORIES, HTTP, SESSIONS, SETTINGS
from bot.services import build_adapters
from core.clock import utcnow
from core.types import Platform

log = logging.getLogger("vigil.im")
# The largest callback a platform sends is a card click carrying its card (Slack sends the whole message,
# Teams the Adaptive Card's data): tens of kilobytes. Anything near the 1 MB request cap is not a callback.
CALLBACK_MAX_BYTES = 256 * 1024


async def callback(request: web.Request) -> web.StreamResponse:
    try:
        platform = Platform(request.match_info["platform"])
    except ValueError:
        raise web.HTTPNotFound() from None
    adapter = request.app[ADAPTER_MAP].get(platform)
    if adapter is None:
        return web.json_response({"error": f"no {platform.value} IM app is configured"}, status=404)
    # Refuse what is plainly not the platform before reading a body: a missing or stale signature (or, where
    # the platform signs only headers, a wrong one), or a body larger than any callback the platform sends.
    head = InboundRequest(body=b"", headers=dict(request.headers), query=dict(request.query),
                          method=request.method, path=request.path)
    if not adapter.precheck(head, utcnow()):
        log.warning("%s callback refused before its body was read: signature missing, stale or wrong",
                    platform.value)
        return web.json_response({"error": "callback signature missing, stale or wrong"}, status=401)
    if (request.content_length or 0) > CALLBACK_MAX_BYTES:
        return web.json_response({"error": f"a callback body is at most {CALLBACK_MAX_BYTES} bytes"}, status=413)
    late = await read_body(request)
    if late is not None:
        return late
    req = replace(head, body=await request.read())
    settings = request.app[SETTINGS]
    sessions, base_url = request.app[SESSIONS], settings.resolved_base_url()
    custom = clicks.CustomActions(request.app[HTTP], settings.secret_key)
    dispatch = getattr(adapter, "dispatch", None)
    if dispatch is not None:
        # SDK-driven adapters (Slack's bolt) verify and route the request themselves; their listeners
        # still end in clicks.apply, the one action path, or in chat_commands.answer for read-only commands.
        reply = await dispatch(req, lambda event: clicks.apply(event, sessions, base_url, utcnow(), custom=custom),
                               lambda query: chat_commands.answer(query, sessions, base_url, utcnow()))
    else:
        reply = await clicks.handle(adapter, req, sessions, base_url, utcnow(), lambda message: chat_messages.answer(
            adapter, message, sessions, base_url, utcnow()), custom=custom)
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type.split(";")[0],
                        headers=dict(reply.headers))


async def rebuild_adapters(app: web.Application) -> list[str]:
    """(Re)build and start one adapter per enabled IM app; returns the problems found (bad settings, bad key)."""
    built, problems = await build_adapters(app[SESSIONS], app[SETTINGS].secret_key, app[HTTP])
    for old in list(app[ADAPTER_MAP].values()):
        stop = getattr(old, "stop", None)  # Stream-mode adapters (DingTalk) hold a connection open
        if stop is not None:
            await stop()
    app[ADAPTER_MAP].clear()
    app[ADAPTER_MAP].update(built)
    app[DIRECTORIES].clear()
    sessions, base_url = app[SESSIONS], app[SETTINGS].resolved_base_url()
    custom = clicks.CustomActions(app[HTTP], app[SETTINGS].secret_key)
    for platform, adapter in built.items():
        directory = getattr(adapter, "directory", None)
        if directory is not None:
            app[DIRECTORIES][platform] = directory
        start = getattr(adapter, "start", None)
        if start is not None:  # clicks arriving over the platform's own connection take the same path
            # Messages to the bot over that connection (DingTalk's Stream) are answered like those on the callback.
            await start(lambda event: clicks.apply(event, sessions, base_url, utcnow(), custom=custom),
                        lambda message, a=adapter: chat_messages.answer(a, message, sessions, base_url, utcnow()))
    for p in problems:
        log.error(p)
    return problems


async def stop_adapters(app: web.Application) -> None:
    for adapter in app[ADAPTER_MAP].values():
        stop = getattr(adapter, "stop", None)
        if stop is not None:
            await stop()


def setup(app: web.Application) -> None:
    app.router.add_route("*", "/im/{platform}/callback", callback, name=READS_ITS_OWN_BODY)


async def http_session(app: web.Application):  # type: ignore[no-untyped-def]
    """One shared client session for every adapter and provider, held to the egress policy."""
    app[HTTP] = client_session(app[SETTINGS].egress_policy())
    yield
    await app[HTTP].close()
