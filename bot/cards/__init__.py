"""One IncidentCard view model -> each platform's card JSON, through pure renderers (DESIGN rule 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.cards import dingtalk, feishu, slack, teams, wecom
from bot.cards.model import IncidentCard
from core.types import Platform

Renderer = Callable[[IncidentCard], dict[str, Any]]

# Explicit registry (STYLE.md section 9): Feishu and Lark share one renderer.
RENDERERS: dict[Platform, Renderer] = {
    Platform.SLACK: slack.render,
    Platform.FEISHU: feishu.render,
    Platform.DINGTALK: dingtalk.render,
    Platform.WECOM: wecom.render,
    Platform.TEAMS: teams.render,
}


# What a Timeline click answers with, where the platform can show it to the clicker: Slack opens a modal, a
# Feishu card callback returns the card with its timeline section. Elsewhere the button links to the page.
TIMELINE_VIEWS: dict[Platform, Renderer] = {
    Platform.SLACK: slack.timeline_modal,
    Platform.FEISHU: feishu.render,
}


def render_timeline(platform: Platform, card: IncidentCard) -> dict[str, Any] | None:
    """The timeline view of `card` (its `timeline` entries) on `platform`, or None where it has none."""
    view = TIMELINE_VIEWS.get(Platform(platform))
    return view(card) if view is not None else None


def render(platform: Platform, card: IncidentCard) -> dict[str, Any]:
    """Render `card` for `platform`; raises ValueError for a platform without interactive cards."""
    renderer = RENDERERS.get(Platform(platform))
    if renderer is None:
        supported = ", ".join(p.value for p in RENDERERS)
        raise ValueError(f"no card renderer for platform {Platform(platform).value!r}; supported: {supported}")
    return renderer(card)


__all__ = ["RENDERERS", "TIMELINE_VIEWS", "IncidentCard", "Renderer", "render", "render_timeline"]
