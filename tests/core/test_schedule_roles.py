"""On-call roles in schedules (issue 13 item 10): layers compete only within their role, an override replaces
one role or every role, and who is on call is answered per role or for everyone."""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.schedules import OnCall, RoleOnCall, ScheduleError, Source, oncall_at, preview
from tests.core.test_schedules import YEAR, layer, override, sched, schedules, spans, utc

PRIMARY, SECONDARY = 1, 2
T0 = utc(2026, 3, 2)
PRI = layer(T0, members=(1, 2), role_id=PRIMARY, name="pri")
SEC = layer(T0, members=(3, 4), role_id=SECONDARY, name="sec")
PLAIN = layer(T0, members=(5,), name="plain")


def role_override(member, start, end, role):
    return {**override(member, start, end), "role_id": role}


@pytest.mark.parametrize("layers, overrides, at, role, expected", [
    # two roles: both on call at once (no role asked), each alone when asked; later layer does not hide the other
    ([PRI, SEC], [], utc(2026, 3, 2, 12), None, [1, 3]),
    ([PRI, SEC], [], utc(2026, 3, 2, 12), PRIMARY, [1]),
    ([PRI, SEC], [], utc(2026, 3, 3, 12), SECONDARY, [4]),
    # a role nobody fills, and a role asked of a schedule without roles: nobody
    ([PRI], [], utc(2026, 3, 2, 12), SECONDARY, []),
    ([PLAIN], [], utc(2026, 3, 2, 12), PRIMARY, []),
    # layers without a role are a role of their own: asked for everyone, they are on call beside the roles
    ([PRI, PLAIN], [], utc(2026, 3, 2, 12), None, [1, 5]),
    ([PRI, PLAIN], [], utc(2026, 3, 2, 12), PRIMARY, [1]),
    # within a role the later layer still wins
    ([PRI, layer(T0, members=(7,), role_id=PRIMARY)], [], utc(2026, 3, 2, 12), PRIMARY, [7]),
    # a role's override replaces that role only; an every-role override replaces everyone, whatever is asked
    ([PRI, SEC], [role_override(9, utc(2026, 3, 2), utc(2026, 3, 3), SECONDARY)], utc(2026, 3, 2, 12), None, [1, 9]),
    ([PRI, SEC], [role_override(9, utc(2026, 3, 2), utc(2026, 3, 3), SECONDARY)], utc(2026, 3, 2, 12), PRIMARY, [1]),
    ([PRI, SEC], [override(9, utc(2026, 3, 2), utc(2026, 3, 3))], utc(2026, 3, 2, 12), None, [9]),
    ([PRI, SEC], [override(9, utc(2026, 3, 2), utc(2026, 3, 3))], utc(2026, 3, 2, 12), SECONDARY, [9]),
    # an override may fill a role no layer has
    ([PRI], [role_override(9, utc(2026, 3, 2), utc(2026, 3, 3), SECONDARY)], utc(2026, 3, 2, 12), SECONDARY, [9]),
    ([PRI], [role_override(9, utc(2026, 3, 2), utc(2026, 3, 3), SECONDARY)], utc(2026, 3, 2, 12), None, [1, 9]),
])
def test_who_is_on_call_per_role(layers, overrides, at, role, expected):
    assert oncall_at(sched(*layers, overrides=overrides), at, role_id=role).member_ids == expected


def test_the_answer_names_each_role():
    got = oncall_at(sched(PRI, SEC), utc(2026, 3, 2, 12))
    assert got.roles == (
        RoleOnCall(role_id=PRIMARY, participants=got.participants[:1], source=Source(kind="layer", index=0, name="pri")),
        RoleOnCall(role_id=SECONDARY, participants=got.participants[1:], source=Source(kind="layer", index=1,
                                                                                       name="sec")))
    assert got.source == Source(kind="layer", index=0, name="pri")
    # a schedule without roles answers exactly as before
    assert oncall_at(sched(PLAIN), utc(2026, 3, 2, 12)).roles == ()


def test_preview_gives_each_role_its_shifts():
    s = sched(PRI, SEC, overrides=[role_override(9, utc(2026, 3, 3, 6), utc(2026, 3, 3, 18), SECONDARY)])
    shifts = preview(s, utc(2026, 3, 2), utc(2026, 3, 4))
    assert [(x.role_id, *span) for x, span in zip(shifts, spans(shifts))] == [
        (PRIMARY, utc(2026, 3, 2), utc(2026, 3, 3), [1]),
        (SECONDARY, utc(2026, 3, 2), utc(2026, 3, 3), [3]),
        (PRIMARY, utc(2026, 3, 3), utc(2026, 3, 4), [2]),
        (SECONDARY, utc(2026, 3, 3), utc(2026, 3, 3, 6), [4]),
        (SECONDARY, utc(2026, 3, 3, 6), utc(2026, 3, 3, 18), [9]),
        (SECONDARY, utc(2026, 3, 3, 18), utc(2026, 3, 4), [4])]
    assert spans(preview(s, utc(2026, 3, 2), utc(2026, 3, 4), role_id=SECONDARY)) == [
        (utc(2026, 3, 2), utc(2026, 3, 3), [3]), (utc(2026, 3, 3), utc(2026, 3, 3, 6), [4]),
        (utc(2026, 3, 3, 6), utc(2026, 3, 3, 18), [9]), (utc(2026, 3, 3, 18), utc(2026, 3, 4), [4])]


def test_overrides_of_different_roles_may_overlap_but_not_of_one_role():
    sched(PRI, SEC, overrides=[role_override(8, utc(2026, 3, 2), utc(2026, 3, 4), PRIMARY),
                               role_override(9, utc(2026, 3, 3), utc(2026, 3, 5), SECONDARY)])
    with pytest.raises(ScheduleError, match=r"overrides\[1\]: overlaps overrides\[0\]"):
        sched(PRI, overrides=[role_override(8, utc(2026, 3, 2), utc(2026, 3, 4), PRIMARY),
                              override(9, utc(2026, 3, 3), utc(2026, 3, 5))])
    with pytest.raises(ScheduleError, match=r"layers\[0\]\.role_id: must be >= 1"):
        sched(layer(T0, role_id=0))


@st.composite
def role_schedules(draw):
    """The property test's schedules, with a role (or none) drawn for every layer and override."""
    s = draw(schedules())
    roles = st.sampled_from([None, PRIMARY, SECONDARY])
    layers = [x.model_copy(update={"role_id": draw(roles)}) for x in s.layers]
    # overrides of the base strategy never overlap, so any roles keep them valid
    overrides = [o.model_copy(update={"role_id": draw(roles)}) for o in s.overrides]
    return s.model_copy(update={"layers": layers, "overrides": overrides})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=role_schedules(), lo=YEAR, hours=st.integers(1, 24 * 10), probes=st.lists(st.floats(0, 1), max_size=10),
       role=st.sampled_from([None, PRIMARY, SECONDARY]))
def test_role_answers_agree_with_role_previews(s, lo, hours, probes, role):
    hi = lo + timedelta(hours=hours)
    shifts = preview(s, lo, hi, role_id=role)
    for t in [lo + (hi - lo) * p for p in probes]:
        if t >= hi:
            continue
        now = oncall_at(s, t, role_id=role)
        containing = [x for x in shifts if x.start <= t < x.end]
        if role is not None:  # one answer per instant: the role's shifts never overlap
            assert len(containing) <= 1
            assert now == (OnCall(participants=containing[0].participants, source=containing[0].source,
                                  roles=now.roles) if containing else OnCall())
        else:  # everyone: the union of every role's shift at t
            assert set(now.participants) == {p for x in containing for p in x.participants}
            assert {(r.role_id, r.participants) for r in now.roles} == \
                ({(x.role_id, x.participants) for x in containing} if s.uses_roles() else set())

