"""Each format's escaping function against what a hostile alert would put in its title or description."""

from __future__ import annotations

import re

import pytest

from core.escaping import (
    dingtalk_markdown,
    html,
    lark_md,
    lookalikes_to_plain,
    slack_mrkdwn,
    teams_markdown,
    wecom_markdown,
)

HOSTILE = ("<!channel>", "<!here>", "<@U123>", "<https://evil|click>", "[x](http://evil)", "`code`",
           '<font color=red>x</font>', '<at user_id="all"></at>', "<at id=all></at>", "**bold**",
           "<b>html</b>", "![img](http://evil/p.png)", "# Heading", "> quote", "- item", "1. item", "<@all>")


@pytest.mark.parametrize(("text", "escaped"), [
    ("<!channel> wake up", "&lt;!channel&gt; wake up"),
    ("<!here>", "&lt;!here&gt;"),
    ("ping <@U123>", "ping &lt;@U123&gt;"),
    ("<https://evil|click>", "&lt;https://evil|click&gt;"),
    ("a & b &amp; c", "a &amp; b &amp;amp; c"),  # an entity in the alert is shown as written
    ("*bold* _it_ `code`", "*bold* _it_ `code`"),  # formatting only; cannot mention or link
    ("[x](http://evil)", "[x](http://evil)"),  # not a link in mrkdwn
    ("", ""),
])
def test_slack_mrkdwn(text: str, escaped: str) -> None:
    assert slack_mrkdwn(text) == escaped


@pytest.mark.parametrize(("text", "escaped"), [
    ('<at user_id="all"></at>', '&lt;at user_id="all"&gt;&lt;/at&gt;'),
    ("<font color='red'>x</font>", "&lt;font color='red'&gt;x&lt;/font&gt;"),
    ("[x](http://evil)", "&#91;x&#93;(http://evil)"),
    ("![i](img_v2_x)", "!&#91;i&#93;(img_v2_x)"),
    ("**bold** ~~gone~~ `code`", "&#42;&#42;bold&#42;&#42; &#126;&#126;gone&#126;&#126; &#96;code&#96;"),
    ("a & b", "a &amp; b"),
    ("back\\slash", "back&#92;slash"),
    ("# Big\n> quote\n- item\n+ item\n12. item", "&#35; Big\n&gt; quote\n&#45; item\n&#43; item\n12&#46; item"),
    ("db-1 #42 - 5 > 3", "db-1 #42 - 5 &gt; 3"),  # markers in mid-line are text
    ("service_name=api", "service_name=api"),  # `_` inside a word is not emphasis
])
def test_lark_md(text: str, escaped: str) -> None:
    assert lark_md(text) == escaped


@pytest.mark.parametrize("escape", [dingtalk_markdown, wecom_markdown], ids=["dingtalk", "wecom"])
@pytest.mark.parametrize(("text", "escaped"), [
    ("[x](http://evil)", "[x］(http://evil)"),
    ("![i](http://evil/p.png)", "![i］(http://evil/p.png)"),
    ("[click][ref]\n[ref]: http://evil", "[click］[ref]\n[ref］: http://evil"),
    ('<font color="warning">red</font>', '＜font color="warning">red＜/font>'),
    ("<@all> <@zhangsan> <http://evil>", "＜@all> ＜@zhangsan> ＜http://evil>"),
    ("`code` **bold** *it*", "｀code｀ ＊＊bold＊＊ ＊it＊"),
    ("# Big\n> quote\n  ##no space", "＃ Big\n＞ quote\n  ＃#no space"),
    ("[Critical] [Triggered] CPU > 95% (p99) #42", "[Critical] [Triggered] CPU > 95% (p99) #42"),
    ("- item\n1. item\nservice_name=api 数据库", "- item\n1. item\nservice_name=api 数据库"),  # lists do no harm
])
def test_dingtalk_and_wecom_markdown(escape, text: str, escaped: str) -> None:
    assert escape(text) == escaped


@pytest.mark.parametrize("text", HOSTILE + ("# a\n> b\n[c]: http://evil",))
def test_lookalikes_turn_back_into_the_alert_text_for_plain_text_messages(text: str) -> None:
    assert lookalikes_to_plain(wecom_markdown(text)) == text == lookalikes_to_plain(dingtalk_markdown(text))


@pytest.mark.parametrize(("text", "escaped"), [
    ("[x](http://evil)", r"\[x\](http://evil)"),
    ("**bold** *it* `code`", r"\*\*bold\*\* \*it\* \`code\`"),
    ("_italic_ service_name", r"\_italic\_ service_name"),
    ("back\\slash", r"back\\slash"),
    ("# Big\n> quote\n- item\n+ item\n7. item", "\\# Big\n\\> quote\n\\- item\n\\+ item\n7\\. item"),
    ("db-1 #42 - 5 > 3 (p99) <b>", "db-1 #42 - 5 > 3 (p99) <b>"),  # Adaptive Cards read no HTML
])
def test_teams_markdown(text: str, escaped: str) -> None:
    assert teams_markdown(text) == escaped


@pytest.mark.parametrize(("text", "escaped"), [
    ("<b>html</b>", "&lt;b&gt;html&lt;/b&gt;"),
    ('<a href="http://evil">x</a>', "&lt;a href=&#34;http://evil&#34;&gt;x&lt;/a&gt;"),
    ("it's & <script>", "it&#39;s &amp; &lt;script&gt;"),
])
def test_html(text: str, escaped: str) -> None:
    assert str(html(text)) == escaped


# What each format would make live: a mention, a tag or a link, anywhere in the escaped text.
LIVE = {
    slack_mrkdwn: re.compile(r"<"),
    lark_md: re.compile(r"<|\[|\]\(|\*\*|`|^\s*(#|>|- )", re.MULTILINE),
    dingtalk_markdown: re.compile(r"<|\]\(|\*|`|^\s*(#|>)", re.MULTILINE),
    wecom_markdown: re.compile(r"<|\]\(|\*|`|^\s*(#|>)", re.MULTILINE),
    teams_markdown: re.compile(r"(?<!\\)\[|(?<!\\)\*|(?<!\\)`|^\s*(#|- )", re.MULTILINE),
    html: re.compile(r"<"),
}


@pytest.mark.parametrize("escape", LIVE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("text", HOSTILE)
def test_no_hostile_input_stays_live(escape, text: str) -> None:
    out = str(escape(text))
    assert not LIVE[escape].search(out), f"{escape.__name__}({text!r}) = {out!r} still holds markup"
