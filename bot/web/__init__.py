"""Vigil in the browser: sign-in, incident pages, the personal center (issue 12).

Server-rendered HTML (Jinja2, autoescaped) that reads without JavaScript. One module per page area:
login.py (/login, /logout), oidc.py (/login/sso: single sign-on), incident_list.py (/incidents),
incidents.py (/incidents/{id}), account.py (/account); auth.py holds sessions and CSRF, render.py the
templates and headers. Templates live in templates/, the stylesheet in static/.
"""

from __future__ import annotations

import importlib
import importlib.util

from aiohttp import web

from bot.keys import SETTINGS
from bot.web import (
    account,
    auth,
    home,
    incident_actions,
    incident_list,
    incidents,
    live,
    live_list,
    login,
    oidc,
    render,
)


def setup(app: web.Application) -> None:
    """Mount the web pages on the application (call before it starts)."""
    render.setup(app)
    auth.setup(app, app[SETTINGS])
    home.setup(app)
    login.setup(app)
    oidc.setup(app)
    incident_list.setup(app)
    incidents.setup(app)
    incident_actions.setup(app)
    live.setup(app)
    live_list.setup(app)
    account.setup(app)
    # The Web Push medium brings its own routes (service worker, manifest, subscriptions) when present.
    if importlib.util.find_spec("bot.web.push") is not None:
        importlib.import_module("bot.web.push").setup(app)
