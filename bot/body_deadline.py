"""A request body that stalls is cut after a deadline, before any handler waits on it.

aiohttp bounds a body's size (client_max_size) but not how long it may take to arrive: a client that
sends headers and then one byte a minute holds a handler, its connection and, for the ingest endpoints, a
slot of the writer's queue for as long as it likes (a slowloris). Reading the whole body here, under a
deadline, means every handler finds it already in memory (`request.read()` caches it) and a stalled one
costs the server nothing but an idle socket until the deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from bot.envelope import error
from bot.keys import SETTINGS

# Routes that check what they can of a request before reading its body (the chat platforms' callbacks,
# bot/chat/routes.py), then read it with `read_body` themselves.
READS_ITS_OWN_BODY = "reads-its-own-body"


@web.middleware
async def body_deadline(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.body_exists and request.match_info.route.name != READS_ITS_OWN_BODY:
        late = await read_body(request)
        if late is not None:
            return late
    return await handler(request)


async def read_body(request: web.Request) -> web.Response | None:
    """Read the whole body under the deadline (then `request.read()` returns it at once), or the 408 answer.

    Size-capped by client_max_size: too large raises 413 as before."""
    seconds = request.app[SETTINGS].body_read_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            await request.read()
    except TimeoutError:
        # Connection: close, so the half-sent body's remaining bytes are not read as the next request.
        return error(request, 408, "RequestTimeout",
                     f"the request body did not arrive within {seconds:g} s (VIGIL_BODY_READ_TIMEOUT_SECONDS)",
                     {"Connection": "close"})
    return None
