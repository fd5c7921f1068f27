"""Each renderer keeps a card inside its platform's documented limits, even for absurd input."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.cards import dingtalk, feishu, slack, teams, wecom
from tests.cards.cases import CASES, huge_card

CARDS = {**CASES, "huge": huge_card()}


def size(rendered: dict[str, Any]) -> int:
    return len(json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode())


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.mark.parametrize("case", sorted(CARDS))
def test_slack_block_kit_limits(case: str) -> None:
    # https://api.slack.com/reference/block-kit/blocks
    out = slack.render(CARDS[case])
    blocks = out["attachments"][0]["blocks"]
    assert 1 <= len(blocks) <= slack.MAX_BLOCKS
    assert len(out["text"]) <= slack.MAX_FALLBACK
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= slack.MAX_HEADER
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= slack.MAX_SECTION_TEXT
            assert len(block.get("fields", [])) <= slack.MAX_FIELDS
            assert all(len(f["text"]) <= slack.MAX_FIELD_TEXT for f in block.get("fields", []))
            assert not re.search(r"&[a-z]{0,3}…$", block.get("text", {}).get("text", "")), "cut inside an entity"
        if block["type"] == "actions":
            assert len(block["elements"]) <= slack.MAX_ACTION_ELEMENTS
            ids = [e["action_id"] for e in block["elements"]]
            assert len(ids) == len(set(ids)) and all(i.startswith("vigil.") and len(i) <= 255 for i in ids)
            for element in block["elements"]:
                if element["type"] == "button":
                    assert len(element["text"]["text"]) <= slack.MAX_BUTTON_TEXT
                    assert len(element["value"]) <= 2000
                else:
                    assert len(element["options"]) <= 100
                    assert all(len(o["value"]) <= 150 and len(o["text"]["text"]) <= 75 for o in element["options"])


@pytest.mark.parametrize("case", sorted(CARDS))
def test_feishu_card_limits(case: str) -> None:
    # https://open.feishu.cn/document/feishu-cards/card-json-v2-structure: <= 30 KB, <= 200 elements
    out = feishu.render(CARDS[case])
    assert out["schema"] == "2.0" and out["config"]["update_multi"] is True
    assert size(out) <= feishu.MAX_CARD_BYTES
    assert sum(1 for node in walk(out["body"]) if "tag" in node) <= 200
    assert len(out["header"]["text_tag_list"]) <= 3
    for node in walk(out):
        if node.get("tag") == "input":
            assert node["max_length"] <= 1000


@pytest.mark.parametrize("case", sorted(CARDS))
def test_dingtalk_card_data_limits(case: str) -> None:
    params = dingtalk.render(CARDS[case])["cardData"]["cardParamMap"]
    assert set(params) == set(dingtalk.VARIABLES)
    assert all(isinstance(v, str) for v in params.values()), "cardParamMap values must be strings"
    assert all(isinstance(json.loads(params[k]), list) for k in ("btns", "snooze_btns"))
    assert size(params) <= dingtalk.MAX_CARD_BYTES


@pytest.mark.parametrize("case", sorted(CARDS))
def test_wecom_template_card_limits(case: str) -> None:
    # https://developer.work.weixin.qq.com/document/path/90236
    out = wecom.render(CARDS[case])
    assert out["card_type"] == "button_interaction"
    assert re.fullmatch(r"[A-Za-z0-9_\-@]{1,128}", out["task_id"])
    assert 1 <= len(out["button_list"]) <= wecom.MAX_BUTTONS
    keys = [b["key"] for b in out["button_list"] if b["type"] == 0]
    assert len(keys) == len(set(keys)) and all(0 < len(k.encode()) <= 1024 for k in keys)
    assert len(out["horizontal_content_list"]) <= 6
    if "button_selection" in out:
        options = out["button_selection"]["option_list"]
        assert 1 <= len(options) <= wecom.MAX_OPTIONS
        assert all(len(o["id"].encode()) <= 128 for o in options)
        assert len(out["button_selection"]["question_key"].encode()) <= 1024


@pytest.mark.parametrize("case", sorted(CARDS))
def test_teams_adaptive_card_limits(case: str) -> None:
    # https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-reference
    out = teams.render(CARDS[case])
    assert out["version"] == "1.4"
    assert size(out) <= teams.MAX_CARD_BYTES
    assert len(out["actions"]) <= teams.MAX_ACTIONS
    assert out["refresh"]["action"]["verb"] == "refresh" and out["refresh"]["userIds"] == []
    show_cards = [a for a in out["actions"] if a["type"] == "Action.ShowCard"]
    for show in show_cards:  # no ShowCard nested in a ShowCard
        assert all(a["type"] in ("Action.Execute", "Action.OpenUrl") for a in show["card"]["actions"])


def test_huge_description_is_trimmed_not_lost() -> None:
    card = CARDS["huge"]
    assert card.description.endswith("…") and len(card.description) <= 2000
    assert card.hidden_labels == 500 - len(card.labels)
