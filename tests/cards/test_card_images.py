"""Alert images on cards: the model keeps https images only (at most MAX_IMAGES), each renderer shows them where
its platform can show an image by URL and links to them where it cannot; alt text stays text."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.cards import RENDERERS, dingtalk, feishu, slack, teams, wecom
from bot.cards.model import MAX_IMAGES, CardImage
from tests.cards.cases import CASES

CARD = CASES["alert_images"]
PLAIN = CASES["triggered_critical_all_actions"]
P99 = "https://grafana.example.com/render/p99.png?from=now-1h&to=now"


@pytest.mark.parametrize("image", [
    CardImage("http://grafana.example.com/p99.png"),  # mixed content, swappable on the way
    CardImage("img_v2_0123456789abcdef"),  # an IM platform's image key is no address
    CardImage("javascript:alert(1)"),
    CardImage("https://x.example/a b.png"),
    CardImage('https://x.example/a".png'),
    CardImage("https://x.example/a.png", href="javascript:alert(1)"),
    CardImage("https://x.example/a.png", href="https://x.example/<b>"),
    ("https://x.example/a.png", 5, ""),
])
def test_the_model_refuses_what_must_not_be_shown(image) -> None:
    with pytest.raises(ValueError, match="images"):
        replace(PLAIN, images=(image,))


def test_the_model_caps_images_and_tidies_alt_text() -> None:
    card = replace(PLAIN, images=[{"src": f"https://x.example/{i}.png", "alt": " a\n b " + "x" * 300, "href": ""}
                                  for i in range(10)])
    assert len(card.images) == MAX_IMAGES and card.images[0].src == "https://x.example/0.png"
    assert card.images[0].alt.startswith("a b x") and len(card.images[0].alt) == 128


@pytest.mark.parametrize("platform", sorted(RENDERERS, key=lambda p: p.value), ids=lambda p: p.value)
def test_no_images_draw_nothing(platform) -> None:
    text = json.dumps(RENDERERS[platform](replace(CARD, images=())), ensure_ascii=False)
    assert "img.example.com" not in text and "grafana.example.com" not in text and "Image" not in text


def test_slack_image_blocks_and_their_links() -> None:
    blocks = slack.render(CARD)["attachments"][0]["blocks"]
    images = [b for b in blocks if b["type"] == "image"]
    assert [(b["image_url"], b["alt_text"]) for b in images] == [
        (P99, "p99 *graph* <b>[x]</b>"), ("https://img.example.com/cpu_(host-1).png", "Alert image"),
        ("https://img.example.com/mem.png", "memory")]
    assert all(len(b["alt_text"]) <= 2000 and len(b["image_url"]) <= 3000 for b in images)
    # mrkdwn: the alt text is escaped, so it makes no mention, link or markup of its own
    links = next(b for b in blocks if b["type"] == "context" and "Image links" in json.dumps(b))
    assert links["elements"][0]["text"] == ("Image links: <https://grafana.example.com/d/p99?orgId=1&viewPanel=2|"
                                            "p99 *graph* &lt;b&gt;[x]&lt;/b&gt;>")


def test_teams_image_elements_open_their_href() -> None:
    body = teams.render(CARD)["body"]
    images = [e for e in body if e["type"] == "Image"]
    assert images[0] == {"type": "Image", "url": P99, "altText": "p99 *graph* <b>[x]</b>", "size": "Large",
                         "selectAction": {"type": "Action.OpenUrl",
                                          "url": "https://grafana.example.com/d/p99?orgId=1&viewPanel=2"}}
    assert "selectAction" not in images[1] and len(images) == 3


def test_dingtalk_markdown_shows_images_by_url() -> None:
    md = dingtalk.render(CARD)["cardData"]["cardParamMap"]["markdown"]
    assert f"![p99 ＊graph＊ ＜b>［x］＜/b>]({P99})\n[Open link](https://grafana.example.com/d/p99?orgId=1&viewPanel=2)" in md
    assert "![Alert image](https://img.example.com/cpu_%28host-1%29.png)" in md  # ")" would end the link


def test_feishu_links_to_images_it_cannot_show_by_url() -> None:
    out = feishu.render(CARD)
    assert not any(isinstance(n, dict) and n.get("tag") == "img" for n in _walk(out))
    [md] = [e["content"] for e in out["body"]["elements"] if "[Image:" in e.get("content", "")]
    assert md.splitlines() == [
        f"[Image: p99 &#42;graph&#42; &lt;b&gt;&#91;x&#93;&lt;/b&gt;]({P99}) · "
        "[Open link](https://grafana.example.com/d/p99?orgId=1&viewPanel=2)",
        "[Image: alert image](https://img.example.com/cpu_%28host-1%29.png)",
        "[Image: memory](https://img.example.com/mem.png)"]


def test_wecom_links_images_in_the_rows_left() -> None:
    rows = wecom.render(CARD)["horizontal_content_list"]
    assert [r for r in rows if r.get("type") == 1] == [
        {"type": 1, "keyname": "Image", "value": "p99 *graph* <b>[x]</b>", "url": P99},
        {"type": 1, "keyname": "Image", "value": "alert image", "url": "https://img.example.com/cpu_(host-1).png"}]
    assert len(rows) == wecom.MAX_ROWS  # six rows at most: the third image does not fit


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_slack_without_images_links_to_them_instead() -> None:
    rendered = slack.render(CARD)
    linked = slack.without_images(rendered)
    blocks = linked["attachments"][0]["blocks"]
    assert not [b for b in blocks if b["type"] == "image"]
    texts = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert texts[:3] == [f"<{P99}|Image: p99 *graph* &lt;b&gt;[x]&lt;/b&gt;>",
                         "<https://img.example.com/cpu_(host-1).png|Image: Alert image>",
                         "<https://img.example.com/mem.png|Image: memory>"]
    assert linked["text"] == rendered["text"] and len(blocks) == len(rendered["attachments"][0]["blocks"])
    assert slack.without_images(slack.render(PLAIN)) is None
    top = slack.without_images({"text": "t", "blocks": [{"type": "image", "image_url": P99, "alt_text": "a"}]})
    assert top == {"text": "t", "blocks": [{"type": "context", "elements": [{"type": "mrkdwn",
                                                                              "text": f"<{P99}|Image: a>"}]}]}
