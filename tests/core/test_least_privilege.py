"""The pure rules of least privilege: a token's effective role, and who may act on a team-scoped channel."""

import pytest

from core.incidents import in_team_scope
from core.types import Role, lower_role

A, R, OB = Role.ADMIN, Role.RESPONDER, Role.OBSERVER


@pytest.mark.parametrize("token, member, effective", [
    (A, A, A), (A, R, R), (A, OB, OB),  # a demoted admin's admin token is worth what the member is now
    (R, A, R), (R, R, R), (R, OB, OB),  # a promotion does not widen tokens minted before it
    (OB, A, OB), (OB, R, OB), (OB, OB, OB),
])
def test_effective_role_is_the_lower_of_token_and_member(token, member, effective):
    assert lower_role(token, member) is effective


@pytest.mark.parametrize("team_scoped, role, shares_a_team, allowed", [
    (False, R, False, True),  # an open channel: anyone who may act at all
    (False, OB, False, True),  # (observers are refused elsewhere, by role)
    (True, A, False, True),   # admins act everywhere
    (True, R, True, True),    # a member of one of the channel's teams
    (True, R, False, False),  # an outsider
    (True, OB, True, True),
])
def test_team_scope(team_scoped, role, shares_a_team, allowed):
    assert in_team_scope(team_scoped=team_scoped, role=role, shares_a_team=shares_a_team) is allowed
