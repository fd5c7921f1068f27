"""Every button payload on every card round-trips through ActionData and fits its platform's limit."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cards import RENDERERS, render, wecom
from bot.cards.model import CustomButton, IncidentCard
from bot.chat.actions import PAYLOAD_LIMITS, Action, ActionData, payload_size
from core.types import Platform, Progress, Severity
from tests.cards.cases import ALL_CARD_ACTIONS, CASES, NOT_ON_CARD, NOW, huge_card, payloads

PLATFORMS = sorted(RENDERERS, key=lambda p: p.value)
EXTRA = {Platform.TEAMS: {Action.REFRESH}}  # the refresh block, not a button


def card_level(card: IncidentCard) -> set[Action]:
    """Actions a card draws from its own fields rather than from `actions`."""
    return ({Action.CUSTOM} if card.custom_actions else set()) | ({Action.TIMELINE} if card.timeline_button else set()) \
        | ({Action.SET_FIELD} if card.field_inputs else set())


def check_card(platform: Platform, card: IncidentCard) -> None:
    rendered = RENDERERS[platform](card)
    found = payloads(rendered)
    limit = PAYLOAD_LIMITS[platform]
    for packed, data in found:
        assert ActionData.unpack(data.pack()) == data
        assert data.pack() == packed, "payloads are packed canonically"
        assert data.incident_id == card.incident_id
        assert payload_size(packed, limit.unit) <= limit.max, (platform, packed)
    actions = {data.action for _, data in found}
    allowed = set(card.buttons) | EXTRA.get(platform, set()) | card_level(card)
    assert actions <= allowed, f"{platform.value} drew actions it was not given: {actions - allowed}"
    custom = {data.action_id for _, data in found if data.action is Action.CUSTOM}  # type: ignore[attr-defined]
    fields = {data.field_id for _, data in found if data.action is Action.SET_FIELD}  # type: ignore[attr-defined]
    assert fields <= {f.field_id for f in card.field_inputs}
    assert custom <= {c.id for c in card.custom_actions}
    expected = set(card.buttons) - NOT_ON_CARD[platform]
    if platform is Platform.WECOM:
        drawn = [b for b in rendered["button_list"] if "key" in b]
        if len(expected) + len(card.custom_actions) + card.timeline_button > wecom.MAX_BUTTONS:
            # Overflow goes behind a "More…" link to the incident page; Snooze keeps its slot.
            assert len(drawn) == wecom.MAX_BUTTONS - 1
            assert rendered["button_list"][-1] == {"type": 1, "text": "More…", "style": 2, "url": card.url}
            expected = {Action.SNOOZE} & expected
    assert actions >= expected
    if card.custom_actions and platform is not Platform.WECOM:  # WeCom may fold them all behind "More…"
        assert card.custom_actions[0].id in custom
    snoozes = {data.minutes for _, data in found if data.action is Action.SNOOZE}  # type: ignore[attr-defined]
    if Action.SNOOZE in card.buttons:
        assert snoozes and snoozes <= set(card.snooze_choices)


@pytest.mark.parametrize("case", [*sorted(CASES), "huge"])
@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
def test_payloads_round_trip_and_fit(platform: Platform, case: str) -> None:
    check_card(platform, CASES[case] if case in CASES else huge_card())


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
def test_closed_card_offers_only_reopen(platform: Platform) -> None:
    card = CASES["closed_info"]
    actions = {data.action for _, data in payloads(RENDERERS[platform](card))}
    assert actions - EXTRA.get(platform, set()) - card_level(card) == {Action.REOPEN}


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
def test_card_without_actions_has_no_payloads(platform: Platform) -> None:
    card = IncidentCard(incident_id=5, num="5", title="Quiet", severity=Severity.INFO, progress=Progress.TRIGGERED,
                        url="https://vigil.example.com/incidents/5", updated_at=NOW)
    actions = {data.action for _, data in payloads(RENDERERS[platform](card))}
    assert actions == EXTRA.get(platform, set())


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
def test_renderers_are_deterministic_and_do_not_mutate(platform: Platform, case: str) -> None:
    card = CASES[case]
    before = copy.deepcopy(card)
    first = render(platform, card)
    snapshot = json.dumps(first, sort_keys=True)
    first.clear()  # a renderer must not hand out shared module-level objects
    second = render(platform, card)
    assert json.dumps(second, sort_keys=True) == snapshot
    assert card == before
    json.dumps(second, allow_nan=False)  # plain JSON, nothing exotic


def test_render_names_an_unsupported_platform() -> None:
    with pytest.raises(ValueError, match="no card renderer for platform 'voice'"):
        render(Platform.VOICE, CASES["closed_info"])


def test_registry_covers_every_interactive_platform() -> None:
    assert set(RENDERERS) == {Platform.SLACK, Platform.FEISHU, Platform.DINGTALK, Platform.WECOM, Platform.TEAMS}


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@st.composite
def cards(draw: st.DrawFn) -> IncidentCard:
    progress = draw(st.sampled_from(Progress))
    return IncidentCard(
        incident_id=draw(st.integers(1, 2**63 - 1)),
        num=draw(st.text(min_size=1, max_size=12)),
        title=draw(names.filter(str.strip)),
        severity=draw(st.sampled_from(Severity)),
        progress=progress,
        url="https://vigil.example.com/incidents/1",
        updated_at=NOW + timedelta(seconds=draw(st.integers(0, 10**8))),
        channel_name=draw(st.text(max_size=60)),
        responders=tuple(draw(st.lists(names, max_size=5))),
        labels=tuple(draw(st.lists(st.tuples(names, names), max_size=12))),
        alert_count=draw(st.integers(0, 10**6)),
        description=draw(st.text(max_size=300)),
        actions=tuple(draw(st.lists(st.sampled_from(ALL_CARD_ACTIONS), unique=True))),
        snooze_choices=tuple(draw(st.lists(st.integers(1, 1440), min_size=1, max_size=12, unique=True))),
        custom_actions=tuple(CustomButton(i + 1, n) for i, n in enumerate(draw(st.lists(names.filter(str.strip),
                                                                                         max_size=25)))),
        timeline_button=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None)
@given(card=cards())
def test_any_card_renders_valid_payloads_everywhere(card: IncidentCard) -> None:
    for platform in PLATFORMS:
        check_card(platform, card)
