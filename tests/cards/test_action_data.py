"""Packed button payloads (bot/chat/actions.py): round trips, clear errors, per-platform size limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.chat.actions import (
    PAYLOAD_LIMITS,
    Ack,
    Action,
    ActionData,
    ActionPayloadError,
    Comment,
    Reassign,
    Snooze,
    ensure_fits,
    pack_for,
    payload_size,
    to_card_actions,
)
from core.incidents import allowed_actions
from core.types import Platform, Progress

ids = st.integers(1, 2**63 - 1)
any_payload = st.one_of(
    *(st.builds(cls, incident_id=ids) for cls in ActionData._by_prefix.values() if not cls.model_fields.keys() - {"incident_id"}),
    st.builds(Snooze, incident_id=ids, minutes=st.integers(1, 1440)),
    st.builds(Reassign, incident_id=ids, member_id=st.none() | ids),
)


@given(data=any_payload)
def test_pack_unpack_round_trip_and_fits_every_platform(data: ActionData) -> None:
    packed = data.pack()
    assert ActionData.unpack(packed) == data
    assert type(data).unpack(packed) == data
    for platform in PAYLOAD_LIMITS:
        assert ensure_fits(packed, platform) == packed


@given(text=st.text(max_size=80))
def test_unpack_of_garbage_raises_only_payload_errors(text: str) -> None:
    try:
        data = ActionData.unpack(text)
    except ActionPayloadError:
        return
    assert ActionData.unpack(data.pack()) == data


@pytest.mark.parametrize(("data", "packed"), [
    (Ack(incident_id=123), "ack:123"),
    (Snooze(incident_id=123, minutes=60), "snz:123:60"),
    (Reassign(incident_id=9), "rsg:9:"),
    (Reassign(incident_id=9, member_id=4), "rsg:9:4"),
    (Comment(incident_id=1), "cmt:1"),
])
def test_packed_strings_are_short_and_stable(data: ActionData, packed: str) -> None:
    assert data.pack() == packed


@pytest.mark.parametrize(("packed", "problem"), [
    ("", "action payload is empty"),
    ("zzz:1", "unknown action prefix 'zzz'"),
    ("ack", "ack payload 'ack' needs 1 field(s) (incident_id), got 0"),
    ("ack:1:2", "needs 1 field(s)"),
    ("snz:5", "snooze payload 'snz:5' needs 2 field(s) (incident_id, minutes), got 1"),
    ("ack:x", "field 'incident_id' must be an integer, got 'x'"),
    ("ack:", "incident_id: Input should be a valid integer"),
    ("ack:0", "incident_id: Input should be greater than 0"),
    ("ack:-3", "incident_id: Input should be greater than 0"),
    ("snz:5:0", "minutes: Input should be greater than or equal to 1"),
    ("snz:5:1441", "minutes: Input should be less than or equal to 1440"),
    ("ack:١٢", "must be an integer"),  # non-ASCII digits are not accepted
    ("ack:99999999999999999999", "incident_id: Input should be less than"),
])
def test_unpack_errors_name_the_problem(packed: str, problem: str) -> None:
    with pytest.raises(ActionPayloadError) as err:
        ActionData.unpack(packed)
    assert problem in str(err.value)
    assert isinstance(err.value, ValueError)


def test_unpack_on_a_subclass_rejects_other_actions() -> None:
    with pytest.raises(ActionPayloadError, match="is a ack action, not Snooze"):
        Snooze.unpack("ack:1")


@pytest.mark.parametrize(("platform", "packed", "fits"), [
    (Platform.TELEGRAM, "x" * 64, True),
    (Platform.TELEGRAM, "x" * 65, False),
    (Platform.TELEGRAM, "é" * 33, False),  # 66 bytes: Telegram counts bytes
    (Platform.SLACK, "é" * 150, True),  # Slack counts characters
    (Platform.SLACK, "x" * 151, False),
    (Platform.WECOM, "x" * 128, True),
    (Platform.WECOM, "x" * 129, False),
])
def test_ensure_fits_checks_the_platform_limit(platform: Platform, packed: str, fits: bool) -> None:
    if fits:
        assert ensure_fits(packed, platform) == packed
    else:
        with pytest.raises(ActionPayloadError, match=f"{platform.value} .* allows {PAYLOAD_LIMITS[platform].max}"):
            ensure_fits(packed, platform)


def test_ensure_fits_refuses_a_platform_without_a_known_limit() -> None:
    with pytest.raises(ActionPayloadError, match="no action payload limit is known for platform 'voice'"):
        ensure_fits("ack:1", Platform.VOICE)


def test_payload_size_units() -> None:
    assert payload_size("é", "bytes") == 2 and payload_size("é", "chars") == 1


def test_pack_for_builds_and_checks() -> None:
    assert pack_for(Platform.TELEGRAM, Action.SNOOZE, 7, minutes=30) == "snz:7:30"
    with pytest.raises(ValueError, match="minutes"):
        pack_for(Platform.TELEGRAM, Action.SNOOZE, 7)


def test_every_action_has_exactly_one_payload_class() -> None:
    assert {cls.action for cls in ActionData._by_prefix.values()} == set(Action)
    assert len(ActionData._by_prefix) == len(Action)


@pytest.mark.parametrize("kwargs", [{}, {"prefix": "ack"}, {"prefix": "Bad!", "action": Action.ACK},
                                    {"prefix": "ack", "action": Action.ACK}])
def test_subclass_declaration_errors(kwargs: dict) -> None:
    with pytest.raises(TypeError):
        type("Broken", (ActionData,), {"__module__": __name__}, **kwargs)


@pytest.mark.parametrize("progress", list(Progress))
def test_core_allowed_actions_map_to_card_actions(progress: Progress) -> None:
    core_names = [a.value for a in allowed_actions(progress)]
    card = to_card_actions(allowed_actions(progress))
    assert [a.value for a in card] == [n for n in core_names if n in Action._value2member_map_]
    assert "merge" not in card
