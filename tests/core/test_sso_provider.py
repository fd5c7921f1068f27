"""What an admin may store as the single sign-on provider (core/sso_provider.py `problem`), and which provider
the environment gives: pure rules, table-tested."""

from __future__ import annotations

import pytest

from core.models.sso import SsoProvider
from core.settings import Settings
from core.sso_provider import Change, OidcConfig, from_settings, problem

ISSUER = "https://sso.example.com/realms/ops"
STORED = SsoProvider(issuer=ISSUER, client_id="vigil", client_secret="sealed", scopes="openid", name="SSO",
                     default_role="observer")


def change(**kw: object) -> Change:
    base = dict(issuer=ISSUER, client_id="vigil", client_secret="s3cret", scopes="openid email", name="SSO",
                auto_provision=False, default_role="observer")
    return Change(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize("asked, stored, expected", [
    (change(), None, None),
    (change(issuer=ISSUER + "/"), None, None),
    (change(issuer="http://localhost:8081"), None, None),  # a provider on this machine (development, tests)
    (change(issuer="http://sso.example.com"), None, "issuer"),
    (change(issuer="https://sso.example.com/?x=1"), None, "issuer"),
    (change(issuer=""), None, "issuer"),
    (change(client_id="  "), None, "client_id"),
    (change(scopes="email profile"), None, "scopes"),
    (change(scopes="openidx"), None, "scopes"),
    (change(default_role="root"), None, "default_role"),
    (change(client_secret=""), STORED, "client_secret"),
    # left out: the stored secret is kept, but only for the same client at the same provider
    (change(client_secret=None), None, "client_secret"),
    (change(client_secret=None), STORED, None),
    (change(client_secret=None, issuer=ISSUER + "/"), STORED, None),
    (change(client_secret=None, client_id="another"), STORED, "client_secret"),
    (change(client_secret=None, issuer="https://other.example.com"), STORED, "client_secret"),
])
def test_problem_names_the_field(asked, stored, expected):
    found = problem(asked, stored)
    assert (found[0] if found else None) == expected, found


def test_the_environment_gives_a_provider_only_with_an_issuer():
    assert from_settings(Settings()) is None
    env = Settings(oidc_issuer=ISSUER, oidc_client_id="vigil", oidc_client_secret="s", oidc_name="Keycloak",
                   oidc_auto_provision_role="responder")
    assert from_settings(env) == OidcConfig("env", ISSUER, "vigil", "s", "openid email profile", "Keycloak",
                                            "responder")
