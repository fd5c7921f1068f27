"""/ : the incident list is the home page."""

from __future__ import annotations

from aiohttp import web

from bot.web.render import redirect


async def home(_request: web.Request) -> web.StreamResponse:
    return redirect("/incidents")


def setup(app: web.Application) -> None:
    app.router.add_get("/", home)
