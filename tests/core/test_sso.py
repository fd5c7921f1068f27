"""Which member an OpenID Connect identity signs in as (core/sso.py `decide`), and what Vigil accepts of a
provider (core/oidc.py): pure rules, table-tested."""

from __future__ import annotations

import pytest

from core import sso
from core.oidc import Identity, OidcError, issuer_problem, provider_from_discovery, token_request

ALICE = 7


def who(email: str | None = "alice@example.com", verified: bool = True) -> Identity:
    return Identity("https://sso.example.com", "sub-1", email, verified, "Alice")


@pytest.mark.parametrize("identity, known, linked, by_email, auto_role, expected", [
    # an identity seen before keeps its member, whatever its e-mail says now
    (who("new@example.com", False), True, ALICE, None, "", sso.Decision(member_id=ALICE)),
    (who(None), True, ALICE, None, "", sso.Decision(member_id=ALICE)),
    # a new identity is matched by a verified e-mail only
    (who(), False, None, ALICE, "", sso.Decision(member_id=ALICE)),
    (who(verified=False), False, None, None, "responder", sso.Decision(refusal=sso.UNVERIFIED)),
    (who(None), False, None, None, "responder", sso.Decision(refusal=sso.NO_EMAIL)),
    # nobody has that e-mail: auto-provisioning when configured, else a refusal naming the address
    (who(), False, None, None, "observer", sso.Decision(provision_role="observer")),
    (who(), False, None, None, "", sso.Decision(refusal=sso.NO_MEMBER.format(email="alice@example.com"))),
    # the member was removed: refused, never provisioned again, until an admin adds that e-mail back
    (who(), True, None, None, "responder", sso.Decision(refusal=sso.REMOVED)),
    (who(verified=False), True, None, ALICE, "responder", sso.Decision(refusal=sso.REMOVED)),
    (who(), True, None, ALICE, "", sso.Decision(member_id=ALICE)),
])
def test_decide(identity, known, linked, by_email, auto_role, expected):
    assert sso.decide(identity, known, linked, by_email, auto_role) == expected


@pytest.mark.parametrize("url, problem", [
    ("https://sso.example.com/realms/ops", None),
    ("http://127.0.0.1:8081", None),
    ("http://localhost/realms/dev", None),
    ("http://sso.example.com", "https"),
    ("https://sso.example.com/?tenant=a", "query"),
    ("sso.example.com", "https URL with a host"),
])
def test_issuer_url(url, problem):
    found = issuer_problem(url)
    assert found is None if problem is None else problem in found


ISSUER = "https://sso.example.com"
DOC = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/auth", "token_endpoint": ISSUER + "/token",
       "jwks_uri": ISSUER + "/certs"}


@pytest.mark.parametrize("change, problem", [
    ({"issuer": "https://evil.example"}, "is not the configured"),
    ({"token_endpoint": None}, "token_endpoint is missing"),
    ({"jwks_uri": "http://sso.example.com/certs"}, "jwks_uri must be an https URL"),
    ({"response_types_supported": ["id_token"]}, "authorization code flow"),
    ({"id_token_signing_alg_values_supported": ["HS256", "none"]}, "signs ID tokens only with"),
    ({"token_endpoint_auth_methods_supported": ["private_key_jwt"]}, "client authentication"),
])
def test_discovery_document_problems_are_named(change, problem):
    doc = {k: v for k, v in {**DOC, **change}.items() if v is not None}
    with pytest.raises(OidcError, match=problem):
        provider_from_discovery(ISSUER, doc)


def test_discovery_keeps_the_providers_issuer_and_its_strongest_choices():
    found = provider_from_discovery(ISSUER, {**DOC, "issuer": ISSUER + "/",
                                             "id_token_signing_alg_values_supported": ["HS256", "ES256", "RS256"],
                                             "token_endpoint_auth_methods_supported": ["client_secret_post"]})
    assert (found.issuer, found.algorithms, found.auth_method) == (ISSUER + "/", ("ES256", "RS256"),
                                                                   "client_secret_post")


@pytest.mark.parametrize("method, header, in_body", [
    ("client_secret_basic", "Basic dmlnaWw6YSUyQmIlMkZj", False),  # base64("vigil:a%2Bb%2Fc"), RFC 6749 2.3.1
    ("client_secret_post", None, True),
])
def test_token_request_authenticates_the_client(method, header, in_body):
    provider = provider_from_discovery(ISSUER, {**DOC, "token_endpoint_auth_methods_supported": [method]})
    headers, body = token_request(provider, "vigil", "a+b/c", "the-code", "https://vigil/cb", "verifier")
    assert headers.get("Authorization") == header
    assert ("client_secret=a%2Bb%2Fc" in body) is in_body
    assert "grant_type=authorization_code" in body and "code_verifier=verifier" in body
