"""The card's custom actions, Timeline button and timeline view (issue 13 item 15): the model's checks and bounds,
and what each renderer draws from them (the snapshots hold whole cards: custom_actions_and_timeline, timeline_view)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.cards import RENDERERS, TIMELINE_VIEWS, dingtalk, feishu, render_timeline, slack, teams, wecom
from bot.cards.model import MAX_CUSTOM_ACTIONS, MAX_TIMELINE, CustomButton, IncidentCard, TimelineLine
from bot.chat.actions import Action, to_card_actions
from core.types import Platform
from tests.cards.cases import CASES, NOW, huge_card, payloads

CARD = CASES["custom_actions_and_timeline"]
VIEW = CASES["timeline_view"]


@pytest.mark.parametrize(("changes", "problem"), [
    ({"actions": (Action.ACK, Action.CUSTOM)}, "must not contain custom or timeline"),
    ({"actions": (Action.TIMELINE,)}, "must not contain custom or timeline"),
    ({"custom_actions": ((0, "x"),)}, "positive id"),
    ({"custom_actions": ((1, "  "),)}, "non-empty name"),
    ({"custom_actions": ((True, "x"),)}, "positive id"),
    ({"custom_actions": ((1, "a"), (1, "b"))}, "must not repeat an id"),
    ({"timeline": ((datetime(2024, 5, 1, 12), "naive"),)}, "timezone-aware"),
    ({"timeline": (("yesterday", "x"),)}, "(at, text, note)"),
])
def test_bad_extras_are_refused_naming_the_field(changes: dict, problem: str) -> None:
    base = {k: getattr(CARD, k) for k in ("incident_id", "num", "title", "severity", "progress", "url", "updated_at")}
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        IncidentCard(**base, **changes)


def test_extras_are_bounded_and_tidied() -> None:
    card = replace(CARD, custom_actions=tuple((i, f"  action\n{i} ") for i in range(1, 40)),
                   timeline=tuple(TimelineLine(NOW - timedelta(minutes=i), "x" * 1000, " why ") for i in range(40)))
    assert len(card.custom_actions) == MAX_CUSTOM_ACTIONS and card.custom_actions[0] == CustomButton(1, "action 1")
    assert len(card.timeline) == MAX_TIMELINE and len(card.timeline[0].text) == 300 and card.timeline[0].note == "why"


def test_core_actions_never_become_custom_or_timeline_buttons() -> None:
    assert to_card_actions(["ack", "custom", "timeline", "refresh", "merge"]) == (Action.ACK,)


@pytest.mark.parametrize("platform", sorted(RENDERERS, key=lambda p: p.value), ids=lambda p: p.value)
def test_a_card_without_extras_draws_none(platform: Platform) -> None:
    plain = replace(CARD, custom_actions=(), timeline_button=False)
    drawn = {data.action for _, data in payloads(RENDERERS[platform](plain))}
    assert not drawn & {Action.CUSTOM, Action.TIMELINE} and "#timeline" not in json.dumps(RENDERERS[platform](plain))


def test_slack_folds_custom_actions_past_three_into_a_select() -> None:
    [more] = [b for b in slack.render(CARD)["attachments"][0]["blocks"] if b.get("block_id") == slack.BLOCK_ID_MORE]
    kinds = [(e["type"], e["action_id"]) for e in more["elements"]]
    assert kinds == [("button", "vigil.custom.3"), ("button", "vigil.custom.5"), ("button", "vigil.custom.8"),
                     ("static_select", "vigil.custom"), ("button", "vigil.timeline")]
    assert [o["value"] for o in more["elements"][3]["options"]] == ["cst:42:13", "cst:42:21"]
    assert len({e["action_id"] for e in more["elements"]}) == len(more["elements"])  # unique within the block


def test_feishu_folds_custom_actions_past_three_into_a_select() -> None:
    out = json.dumps(feishu.render(CARD), ensure_ascii=False)
    assert out.count('"tag": "select_static"') == 2  # snooze, and "More actions…"
    assert all(f'"cst:42:{i}"' in out for i in (3, 5, 8, 13, 21)) and '"tl:42"' in out


def test_dingtalk_and_wecom_and_teams_link_the_timeline_and_cut_to_their_limits() -> None:
    buttons = json.loads(dingtalk.render(CARD)["cardData"]["cardParamMap"]["btns"])
    custom = [b for b in buttons if b["event"]["type"] == "sendCardRequest" and b["event"]["params"]["actionId"]
              .startswith("cst:")]
    assert len(custom) == dingtalk.CUSTOM_BUTTONS
    links = [b["event"]["params"]["url"] for b in buttons if b["event"]["type"] == "openLink"]
    assert links[-2:] == [CARD.url, f"{CARD.url}#timeline"]
    listed = wecom.render(CARD)["button_list"]
    assert len(listed) == wecom.MAX_BUTTONS and listed[-1]["url"] == CARD.url
    actions = teams.render(CARD)["actions"]
    folded = actions[-1]["card"]["actions"]
    assert len(actions) <= teams.MAX_ACTIONS and folded[-1] == {"type": "Action.OpenUrl", "title": "Timeline",
                                                                 "url": f"{CARD.url}#timeline"}
    assert any(a.get("verb") == "custom" and a["title"] == "Rollback" for a in folded)


def test_the_slack_timeline_modal_lists_the_entries_newest_first_escaped() -> None:
    view = render_timeline(Platform.SLACK, VIEW)
    assert view is not None and view["type"] == "modal" and view["title"]["text"] == "Timeline #Q9"
    sections = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"][1:]
    assert sections == ["*Comment by Alice Chen via Slack*\nrolled back *v2* &lt;b&gt;now&lt;/b&gt;",
                        "*Acknowledged by Alice Chen via Feishu*", "*Incident triggered*"]
    assert view["blocks"][-1]["elements"][0]["text"] == f"<{VIEW.url}#timeline|The whole timeline on the incident page>"
    empty = slack.timeline_modal(replace(VIEW, timeline=()))
    assert "Nothing on the timeline yet." in json.dumps(empty)


def test_a_full_timeline_fits_every_view() -> None:
    full = replace(VIEW, num="N" * 40, timeline=tuple(
        TimelineLine(NOW - timedelta(minutes=i), "<&>*" * 200, "é漢<&>" * 200) for i in range(MAX_TIMELINE)))
    view = slack.timeline_modal(full)
    assert len(view["blocks"]) <= slack.MAX_MODAL_BLOCKS and len(view["title"]["text"]) <= slack.MAX_MODAL_TITLE
    assert all(len(b["text"]["text"]) <= slack.MAX_SECTION_TEXT for b in view["blocks"] if b["type"] == "section")
    # Every field at its bound, the most custom actions a card carries, and the longest timeline.
    worst = replace(huge_card(), custom_actions=tuple((i, "<&>" * 40) for i in range(1, MAX_CUSTOM_ACTIONS + 1)),
                    timeline_button=True, timeline=full.timeline)
    assert len(json.dumps(feishu.render(worst), ensure_ascii=False).encode()) <= feishu.MAX_CARD_BYTES


def test_only_slack_and_feishu_answer_a_timeline_click_with_a_view() -> None:
    assert set(TIMELINE_VIEWS) == {Platform.SLACK, Platform.FEISHU}
    assert render_timeline(Platform.WECOM, VIEW) is None and render_timeline(Platform.FEISHU, VIEW) == feishu.render(VIEW)
