"""Subscription rules, pure: validation with errors naming the field, matching, and who is told how."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.conditions import subject
from core.subscriptions import SubscriptionSpec, compile_rule, subscribers

CRITICAL_PAYMENTS = [[{"field": "severity", "op": "equals", "values": ["Critical"]},
                      {"key": "labels.service", "oper": "IN", "vals": ["payments"]}]]


def _rule(rule_id=1, *, member_id=None, team_id=None, channels=(), filters=CRITICAL_PAYMENTS, events=("i_new",),
          media=()):
    return compile_rule(rule_id, member_id=member_id, team_id=team_id, channel_ids=channels, filters=filters,
                        events=events, media=media)


@pytest.mark.parametrize(("kind", "channel", "severity", "service", "channels", "events", "wanted"), [
    ("i_new", 1, "Critical", "payments", (), ("i_new",), True),        # every channel
    ("i_new", 1, "Warning", "payments", (), ("i_new",), False),        # severity differs
    ("i_new", 1, "Critical", "search", (), ("i_new",), False),         # label differs
    ("i_new", 2, "Critical", "payments", (1,), ("i_new",), False),     # another channel
    ("i_new", 1, "Critical", "payments", (1, 3), ("i_new",), True),
    ("i_ack", 1, "Critical", "payments", (), ("i_new",), False),       # ack not asked for
    ("i_ack", 1, "Critical", "payments", (), ("i_new", "i_ack"), True),
    ("i_rslv", 1, "Critical", "payments", (), ("i_rslv",), True),
    ("i_reopen", 1, "Critical", "payments", (), ("i_new", "i_ack", "i_rslv"), False),
])
def test_a_rule_wants_an_event(kind, channel, severity, service, channels, events, wanted):
    subj = subject(title="t", severity=severity, labels={"service": service}, channel_id=channel)
    assert _rule(channels=channels, events=events).wants(kind, channel, subj) is wanted


def test_empty_filters_match_every_incident_of_the_channels():
    assert _rule(filters=[], channels=(4,)).wants("i_new", 4, subject(title="anything"))


@pytest.mark.parametrize(("body", "message"), [
    ({"name": "x"}, "give exactly one of member_id and team_id"),
    ({"name": "x", "member_id": 1, "team_id": 2}, "give exactly one of member_id and team_id"),
    ({"name": "x", "member_id": 1, "filters": [[{"field": "sevrity", "op": "equals", "values": ["x"]}]]},
     "filters[0][0].field"),
    ({"name": "x", "member_id": 1, "filters": [[{"field": "title", "op": "regex", "values": ["("]}]]},
     "filters[0][0]"),
    ({"name": "x", "member_id": 1, "events": []}, "events"),
    ({"name": "x", "member_id": 1, "events": ["i_comm"]}, "events.0"),
    ({"name": "x", "member_id": 1, "media": ["fax"]}, "media.0"),
])
def test_a_bad_rule_is_refused_naming_the_problem(body, message):
    with pytest.raises(ValidationError) as caught:
        SubscriptionSpec.model_validate(body)
    assert message in str(caught.value)


def test_a_rule_defaults_to_new_incidents_and_drops_repeats():
    spec = SubscriptionSpec.model_validate({"name": "x", "member_id": 1, "media": ["email", "email"],
                                            "channel_ids": [2, 2]})
    assert (spec.events, spec.media, spec.channel_ids) == (["i_new"], ["email"], [2])


def test_subscribers_are_told_once_with_the_union_of_their_rules_media():
    direct = _rule(1, member_id=7, media=("email",))
    team = _rule(2, team_id=3, media=("sms", "email"))
    by_preference = _rule(3, member_id=9)
    subs = {s.member_id: s for s in subscribers([direct, team, by_preference], {3: [7, 8, 8]})}
    assert sorted(subs) == [7, 8, 9]
    assert (subs[7].rule_ids, subs[7].chosen_media("Critical", {})) == ([1, 2], ["email", "sms"])
    assert subs[8].chosen_media("Critical", {}) == ["sms", "email"]
    assert subs[9].chosen_media("Warning", {"Warning": ["app", "email"]}) == ["app", "email"]


def test_a_deleted_team_reaches_nobody():
    assert subscribers([_rule(1, team_id=5)], {}) == []
