"""One escaping function per message format, so alert text (titles, descriptions, labels, names) shows as
written and never as markup: no mentions, links, colours or formatting chosen by whoever sent the alert.

Each function takes untrusted text and returns text its target format displays literally. Vigil's own
markup (bold labels, the link to the incident page) is written around the escaped text, never through it.
Pure functions: the card renderers, the group-bot senders and the notification templates share them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup, escape

# Markdown reads a heading, quote or list marker only at the start of a line (after optional spaces);
# `#` is taken even without the space CommonMark wants, as lenient chat renderers take it too.
_LINE_START = re.compile(r"^([ \t]*)(#+|>|[-+*](?=[ \t])|\d+[.)](?=[ \t]))", re.MULTILINE)


def _at_line_starts(text: str, marker: Callable[[str], str]) -> str:
    return _LINE_START.sub(lambda m: m.group(1) + marker(m.group(2)), text)


def slack_mrkdwn(text: str) -> str:
    """Slack mrkdwn and the message's top-level `text`: &, < and > as entities.

    Slack reads control sequences only inside <...> (<!channel>, <!here>, <@U123>, <https://x|label>) and
    asks for exactly these three characters to be escaped:
    https://api.slack.com/reference/surfaces/formatting#escaping. Without a raw < nothing can mention or link.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Feishu lark_md (card markdown component, JSON 2.0) reads HTML-like tags (<at id=all>, <font>, <a>, <link>,
# <text_tag>, <person>), markdown ([x](url), ![](img), **, *, ~~, `code`, headings, quotes, lists) and decodes
# HTML character references, which is how its rich-text docs show such characters literally:
# https://open.feishu.cn/document/feishu-cards/card-json-v2-components/content-components/rich-text
# `_` is left alone: inside words (label keys like service_name) markdown does not read it.
_LARK_MD = {"&": "&amp;", "<": "&lt;", ">": "&gt;"} | {c: f"&#{ord(c)};" for c in "*~`[]\\"}
_LARK_MD_RE = re.compile("[" + re.escape("".join(_LARK_MD)) + "]")


def lark_md(text: str) -> str:
    """Feishu/Lark lark_md: tag, link and emphasis characters and line-start markers as character references."""
    inline = _LARK_MD_RE.sub(lambda m: _LARK_MD[m.group()], text)
    return _at_line_starts(inline, lambda mark: "".join(c if c.isdigit() else f"&#{ord(c)};" for c in mark))


# DingTalk and WeCom markdown document neither backslash escapes nor character references, so an escape
# they might not honour would leave the markup live (or show stray backslashes). Instead the characters that
# open markup are swapped for full-width look-alikes, which no markdown reads, and only where they would open
# markup, so "[Critical] CPU > 95% (p99)" and "- item" lists read as written:
#   <  (tags: <font color>, <@userid> mentions, <http://...> autolinks)  `  (code)  *  (bold, italic)
#   ]  before ( [ or :  (inline links, images, reference links and their definitions)
#   #  and  >  at the start of a line (headings, quotes)
# DingTalk: https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages (markdown subset:
# headings, quotes, **bold**, *italic*, [links](url), ![images](url), lists, and <font color>).
# WeCom: https://developer.work.weixin.qq.com/document/path/91770 (headings, **bold**, [links](url), `code`,
# > quotes, <font color> and <@userid> mentions).
_LOOKALIKE = str.maketrans({"<": "＜", "`": "｀", "*": "＊"})
_LINK_CLOSE = re.compile(r"\](?=[(\[:])")
_BLOCK_START = re.compile(r"^([ \t]*)([#>])", re.MULTILINE)


def _lookalike(text: str) -> str:
    inline = _LINK_CLOSE.sub("］", text.translate(_LOOKALIKE))
    return _BLOCK_START.sub(lambda m: m.group(1) + {"#": "＃", ">": "＞"}[m.group(2)], inline)


_PLAIN = str.maketrans({"＜": "<", "｀": "`", "＊": "*", "］": "]", "＃": "#", "＞": ">"})


def lookalikes_to_plain(text: str) -> str:
    """The characters `dingtalk_markdown` / `wecom_markdown` replaced, for showing their output as plain text."""
    return text.translate(_PLAIN)


def dingtalk_markdown(text: str) -> str:
    """DingTalk robot / card markdown: links, images, tags, code, emphasis, headings and quotes made inert."""
    return _lookalike(text)


def wecom_markdown(text: str) -> str:
    """WeCom robot markdown: links, <font> and <@userid> tags, code, emphasis, headings and quotes made inert."""
    return _lookalike(text)


# Adaptive Cards TextBlock and FactSet read a CommonMark subset: **bold**, _italic_, lists and [title](url);
# HTML is not read: https://learn.microsoft.com/adaptive-cards/authoring-cards/text-features. CommonMark
# lets ASCII punctuation be escaped with a backslash. Only what can open markup is escaped, since some
# mobile clients show the backslash: `_` only where it could start or end emphasis (not inside a word).
_TEAMS_INLINE = re.compile(r"[\\`*\[\]]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def teams_markdown(text: str) -> str:
    """Microsoft Teams Adaptive Card TextBlock / Fact markdown: CommonMark backslash escapes."""
    inline = _TEAMS_INLINE.sub(lambda m: "\\" + m.group(), text)
    # A backslash before a digit is shown as is, so "1." is escaped at its punctuation: "1\.".
    return _at_line_starts(inline, lambda mark: mark[:-1] + "\\" + mark[-1] if mark[0].isdigit() else "\\" + mark)


def html(text: str) -> Markup:
    """HTML (e-mail bodies): &, <, >, " and ' as entities; a Markup, so Jinja's autoescape keeps it escaped once."""
    return escape(text)


__all__ = ["dingtalk_markdown", "html", "lark_md", "lookalikes_to_plain", "slack_mrkdwn", "teams_markdown",
           "wecom_markdown"]
