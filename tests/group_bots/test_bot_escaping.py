"""Plain-text bot messages (digests, test messages) carry alert titles: each markdown bot posts them inert."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bot.group_bots import BotMessage, Mention, send
from bot.group_bots.pacing import digest
from tests.group_bots.conftest import Running

HOSTILE = "[x](http://evil) <font color=red>red</font> <@all> `tick` **bold**\n# heading"
URL = "https://vigil.example.com/incidents/42"


@pytest.mark.parametrize(("bot_type", "body_of", "live"), [
    ("dingtalk", lambda b: b["markdown"]["text"], re.compile(r"<|\]\((?!https://vigil)|`|\*\*bold|^#(?!### )", re.M)),
    ("wecom", lambda b: b["markdown"]["content"], re.compile(r"<(?!@111>|@333>)|\]\((?!https://vigil)|`|\*\*bold|^#",
                                                             re.M)),
    ("slack", lambda b: b["blocks"][0]["text"]["text"] + b["text"], re.compile(r"<(?!https://vigil|@111>|@333>)")),
])
async def test_a_digest_of_hostile_titles_is_posted_inert(bots: Running, http, page: BotMessage, bot_type, body_of,
                                                          live) -> None:
    mapped = dataclasses.replace(page, title=HOSTILE, mentions=(Mention("Alice", "111"), Mention("Carol", "333")))
    one = digest([mapped, dataclasses.replace(mapped, url=URL)])
    assert not one.markup
    await send(bots.config(bot_type), one, http)
    text = body_of(bots.fake.of(bot_type)[0].body)
    match = live.search(text)
    assert match is None, f"{bot_type}: live markup {match.group()!r} in {text!r}"
    assert "evil" in text and "heading" in text  # shown, not dropped
    assert "- [Critical] [Triggered]" in text or bot_type == "slack"  # the digest's own list reads as before
