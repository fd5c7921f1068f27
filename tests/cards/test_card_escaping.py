"""An alert cannot put markup into a card: hostile titles, descriptions, labels and names render inert on
every platform, while the card's own formatting (bold field names, the link to the incident) still works."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.cards import RENDERERS
from bot.cards.model import IncidentCard
from core.types import Platform, Progress, Severity
from tests.cards.cases import NOW, strings

URL = "https://vigil.example.com/incidents/9"
HOSTILE = ("<!channel> <!here> <@U123> <https://evil|click> [x](http://evil) `tick` <font color=red>red</font> "
           '<at user_id="all"></at> <at id=all></at> **bold** <b>html</b> ![img](http://evil/p.png)')


def hostile_card() -> IncidentCard:
    return IncidentCard(
        incident_id=9, num="H1", title=HOSTILE, severity=Severity.CRITICAL, progress=Progress.TRIGGERED, url=URL,
        updated_at=NOW, channel_name="<!channel> [ch](http://evil)", responders=("<@U123>", "[Eve](http://evil)"),
        labels=(("<!here>", "[v](http://evil)"), ("k`", "**v**")), alert_count=1,
        description=HOSTILE + "\n# heading\n> quote\n- item",
    )


def slack_markup(card: dict[str, Any]) -> list[str]:
    """Every string Slack reads as mrkdwn: `text`, the attachment fallback and mrkdwn text objects."""
    out = [card["text"], card["attachments"][0]["fallback"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card["attachments"])
    return out


def feishu_markup(card: dict[str, Any]) -> list[str]:
    return [e["content"] for e in card["body"]["elements"] if e.get("tag") == "markdown"]


def teams_markup(card: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(node["text"])
            if node.get("type") == "FactSet":
                found.extend(f["value"] for f in node["facts"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card["body"])
    return found


# Per platform: the strings it reads as markup, what would be live markup from the alert in them, and
# the card's own link that must still be there.
PLATFORMS = {
    Platform.SLACK: (slack_markup, re.compile(r"<(?![^>|]*\|Open incident #H1>|!date\^)"), f"<{URL}|Open incident #H1>"),
    Platform.FEISHU: (feishu_markup, re.compile(r"<|\[(?!Open incident)|\*\*(bold|v)|`|^#|^>|^- ", re.M),
                      f"[Open incident #H1]({URL})"),
    Platform.DINGTALK: (lambda c: [c["cardData"]["cardParamMap"]["markdown"]],
                        re.compile(r"<|\]\((?!https://vigil)|\*\*(bold|v)|`|^#|^>", re.M),
                        f"[Open incident #H1]({URL})"),
    Platform.TEAMS: (teams_markup, re.compile(r"(?<!\\)\[(?!Open incident)|(?<!\\)\*|(?<!\\)`|^#|^- ", re.M),
                     f"[Open incident #H1]({URL})"),
}


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
def test_hostile_alert_text_renders_inert(platform: Platform) -> None:
    rendered = RENDERERS[platform](hostile_card())
    markup_of, live, own_link = PLATFORMS[platform]
    texts = markup_of(rendered)
    assert texts, "the renderer produced no markup text to check"
    for text in texts:
        match = live.search(text)
        assert match is None, f"{platform.value}: live markup {match.group()!r} in {text!r}"
    assert any(own_link in text for text in texts), "the card's own link to the incident is gone"
    assert "evil" in json.dumps(rendered), "the hostile text is shown (escaped), not dropped"


def test_wecom_template_card_fields_are_plain_text() -> None:
    # A template_card is not markdown: every field is shown as text, so nothing needs escaping there.
    rendered = RENDERERS[Platform.WECOM](hostile_card())
    assert rendered["main_title"]["title"].startswith("🔴 #H1 <!channel>")
    assert "msgtype" not in rendered and all("markdown" not in s for s in strings(rendered))
