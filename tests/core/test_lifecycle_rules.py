import pytest

from core.errors import IllegalTransition
from core.incidents import Action, allowed_actions, check
from core.types import Progress

T, P, C = Progress.TRIGGERED, Progress.PROCESSING, Progress.CLOSED

TABLE = {
    # action: (allowed from Triggered, Processing, Closed)
    Action.ACK: (True, False, False),
    Action.UNACK: (False, True, False),
    Action.SNOOZE: (True, True, False),
    Action.CLOSE: (True, True, False),
    Action.REOPEN: (False, False, True),
    Action.REASSIGN: (True, True, False),
    Action.ESCALATE: (True, True, False),
    Action.COMMENT: (True, True, True),
    Action.MERGE: (True, True, False),
}


@pytest.mark.parametrize("action, progress, allowed",
                         [(a, p, row[i]) for a, row in TABLE.items() for i, p in enumerate((T, P, C))])
def test_transition_table(action, progress, allowed):
    if allowed:
        check(action, progress)
    else:
        with pytest.raises(IllegalTransition) as exc:
            check(action, progress)
        assert f"cannot {action.value}" in str(exc.value)


@pytest.mark.parametrize("progress, snoozed, expected", [
    (T, False, {"ack", "snooze", "close", "reassign", "escalate", "comment", "merge"}),
    (P, False, {"unack", "snooze", "close", "reassign", "escalate", "comment", "merge"}),
    (P, True, {"unack", "snooze", "wake", "close", "reassign", "escalate", "comment", "merge"}),
    (C, False, {"reopen", "comment"}),
])
def test_allowed_actions(progress, snoozed, expected):
    assert {a.value for a in allowed_actions(progress, snoozed=snoozed)} == expected


def test_merged_incident_only_takes_comments():
    assert allowed_actions(C, merged=True) == (Action.COMMENT,)
    with pytest.raises(IllegalTransition, match="merged"):
        check(Action.REOPEN, C, merged=True)


@pytest.mark.parametrize("progress, message", [
    (P, "already acknowledged"), (C, "Closed"),
])
def test_messages_are_clear(progress, message):
    with pytest.raises(IllegalTransition, match=message):
        check(Action.ACK, progress)
