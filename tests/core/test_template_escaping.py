"""The shipped chat and e-mail templates escape every piece of alert text for their format."""

from __future__ import annotations

import re

import pytest

from core.templates import TemplateSet, incident_context

URL = "https://vigil.example.com/incidents/7"
HOSTILE = ("<!channel> <@U123> <https://evil|click> [x](http://evil) `tick` <font color=red>red</font> "
           '<at user_id="all"></at> **bold** <b>html</b> <@all>')
INCIDENT = {"incident_id": 7, "num": "H7", "title": HOSTILE, "description": HOSTILE, "incident_severity": "Critical",
            "progress": "Triggered", "channel_name": "[ch](http://evil) <!here>", "alert_cnt": 2,
            "labels": {"host": "[h](http://evil)", "<!here>": "**v** `x`"}, "detail_url": URL,
            "responders": [{"person_name": "<b>Eve</b>"}]}

# Per medium: what would be live markup from the alert, and the template's own link that must remain.
LIVE = {
    "slack_bot": (re.compile(r"<(?!https://vigil\.example\.com/incidents/7\|Open incident>)"), f"<{URL}|Open incident>"),
    "feishu_bot": (re.compile(r"<|\]\((?!https://vigil)|\*\*(bold|v)|`"), f"[Open incident]({URL})"),
    "dingtalk_bot": (re.compile(r"<|\]\((?!https://vigil)|\*\*(bold|v)|`"), f"[Open incident]({URL})"),
    "wecom_bot": (re.compile(r"<(?!/?font)|\]\((?!https://vigil)|\*\*(bold|v)|`"), f"[Open incident]({URL})"),
    "telegram_bot": (re.compile(r"<(?!/?(b|code)>|a href=\"https://vigil|/a>)"), f'<a href="{URL}">Open incident</a>'),
}


@pytest.mark.parametrize("medium", LIVE)
def test_shipped_chat_templates_escape_alert_text(medium: str) -> None:
    rendered = TemplateSet().render(medium, "i_new", incident_context(INCIDENT, event_type="i_new",
                                                                       actor_name="<!channel> **Mallory**",
                                                                       base_url="https://vigil.example.com"))
    live, own_link = LIVE[medium]
    assert rendered.error is None
    match = live.search(rendered.text)
    assert match is None, f"{medium}: live markup {match.group()!r} in {rendered.text!r}"
    assert own_link in rendered.text
    assert "evil" in rendered.text and "channel" in rendered.text, "alert text is shown escaped, not dropped"


def test_the_email_html_part_escapes_alert_text_and_keeps_its_own_link() -> None:
    rendered = TemplateSet().render("email", "i_new", incident_context(INCIDENT, event_type="i_new",
                                                                       base_url="https://vigil.example.com"))
    assert rendered.html is not None
    tags = set(re.findall(r"</?([a-zA-Z0-9!]+)", rendered.html))
    assert tags <= {"!doctype", "html", "body", "h2", "p", "table", "tr", "td", "a"}, tags
    assert "&lt;b&gt;Eve&lt;/b&gt;" in rendered.html and "&lt;font color=red&gt;" in rendered.html
    assert rendered.html.count("<a ") == 1 and f'<a href="{URL}"' in rendered.html
    assert HOSTILE in rendered.text  # the plain-text part shows the title as written
