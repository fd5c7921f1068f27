"""Jinja2 for the web pages: autoescaped templates from bot/web/templates/, and the HTML response with the
headers every page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
ENV = web.AppKey("web_templates", jinja2.Environment)

# No inline script or style anywhere, so the policy can forbid both: injected markup cannot run.
# Alert images may live anywhere on the web (https only).
CSP = ("default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show who is paged and what broke: never kept by a shared cache or the back button of a
    # signed-out browser.
    "Cache-Control": "no-store",
}


def _when(value: datetime | None, zone: str = "UTC") -> str:
    if value is None:
        return ""
    try:
        tz = ZoneInfo(zone)
    except (KeyError, ValueError):
        tz = UTC
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.globals["css_version"] = str(int((STATIC / "vigil.css").stat().st_mtime))
    return env


def setup(app: web.Application) -> None:
    app[ENV] = environment()
    app.router.add_static("/static", STATIC, name="static")


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """Render `template` as a whole page."""
    html = request.app[ENV].get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)


def redirect(location: str) -> web.Response:
    """303 See Other: after a form post, and to drop a link token from the address bar. No Referer leaves
    this response, so a token in the URL it answers is not sent on."""
    return web.Response(status=303, headers={"Location": location, "Referrer-Policy": "no-referrer",
                                             "Cache-Control": "no-store"})
