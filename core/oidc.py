"""OpenID Connect, the relying party's side of the authorization code flow, without I/O (bot/web/oidc.py
does the HTTP).

Built from authlib's pieces because authlib has no aiohttp client and Vigil's outgoing requests must go
through the egress-guarded session: the authorization URL with state, nonce and PKCE (RFC 7636, S256), the
token request with the client's authentication (RFC 6749 2.3.1), and the ID token checked against the
provider's JWKS (signature with an asymmetric algorithm the provider announced, then iss, aud, azp, exp, iat,
nonce and at_hash as OpenID Connect Core 3.1.3.7 asks).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

LOOPBACK = {"localhost", "127.0.0.1", "::1"}
# Signature algorithms an ID token may use: public-key ones only. "none" proves nothing, and the HS family
# would be keyed with the client secret, which the provider's JWKS cannot vouch for.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 60  # clock skew allowed between Vigil and the provider on exp and iat
MAX_SUBJECT = 255  # OpenID Connect Core 2: sub is at most 255 ASCII characters


class OidcError(Exception):
    """Something in the provider's documents or answers is not what OpenID Connect requires; the message says
    what, without any token in it."""


class UnknownKey(OidcError):
    """The ID token names a key the JWKS does not have: the provider may have rotated its keys."""


def endpoint_problem(url: str) -> str | None:
    """What is wrong with a provider URL, or None.

    https only, except for a provider on this machine (development and tests): the token request carries the
    client secret and the answer says who signed in.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return "is not a valid URL"
    if not host:
        return "must be an https URL with a host"
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK):
        return None
    return "must be an https URL (http only for a provider on this machine: localhost, 127.0.0.1, ::1)"


def issuer_problem(url: str) -> str | None:
    """What is wrong with an issuer URL (VIGIL_OIDC_ISSUER), or None."""
    problem = endpoint_problem(url)
    if problem is None and (urlsplit(url.strip()).query or urlsplit(url.strip()).fragment):
        return "must not have a query or fragment (OpenID Connect Discovery 3)"
    return problem


@dataclass(frozen=True)
class Provider:
    """What Vigil uses of a provider's discovery document (/.well-known/openid-configuration)."""

    issuer: str  # exactly as the provider writes it: ID tokens' iss must equal it
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    auth_method: str  # client_secret_basic or client_secret_post


def provider_from_discovery(configured_issuer: str, doc: Any) -> Provider:
    """Check the discovery document and keep what Vigil needs; OidcError names the first problem."""
    if not isinstance(doc, dict):
        raise OidcError("the discovery document is not a JSON object")
    issuer = doc.get("issuer")
    # Discovery 4.3: the issuer in the document must be the one configured, so a document served by another
    # party cannot name itself.
    if not isinstance(issuer, str) or issuer.rstrip("/") != configured_issuer.rstrip("/"):
        raise OidcError(f"the discovery document's issuer {issuer!r} is not the configured {configured_issuer!r}")
    urls = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(name)
        problem = endpoint_problem(value) if isinstance(value, str) else "is missing"
        if problem:
            raise OidcError(f"the discovery document's {name} {problem}")
        urls[name] = value
    response_types = doc.get("response_types_supported") or ["code"]
    if "code" not in response_types:
        raise OidcError("the provider does not offer the authorization code flow (response_types_supported)")
    announced = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(a for a in announced if a in ASYMMETRIC)
    if not algorithms:
        raise OidcError(f"the provider signs ID tokens only with {announced}; Vigil needs one of {list(ASYMMETRIC)}")
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = next((m for m in ("client_secret_basic", "client_secret_post") if m in methods), None)
    if method is None:
        raise OidcError(f"the provider accepts client authentication only by {methods}; Vigil sends a client "
                        "secret (client_secret_basic or client_secret_post)")
    return Provider(issuer, urls["authorization_endpoint"], urls["token_endpoint"], urls["jwks_uri"], algorithms,
                    method)


@dataclass(frozen=True)
class Pending:
    """One sign-in under way, kept in the browser's encrypted session until the provider sends it back."""

    state: str  # binds the callback to this browser (RFC 6749 10.12)
    nonce: str  # binds the ID token to this sign-in (OpenID Connect Core 3.1.2.1)
    verifier: str  # PKCE: only this browser's sign-in can redeem the code (RFC 7636)

    @classmethod
    def new(cls) -> Pending:
        # 43 characters from [A-Za-z0-9] is about 256 bits, and the shortest verifier RFC 7636 4.1 allows.
        return cls(generate_token(43), generate_token(43), generate_token(64))


def authorization_url(provider: Provider, client_id: str, redirect_uri: str, scopes: str, pending: Pending) -> str:
    """Where the browser goes to sign in at the provider."""
    return prepare_grant_uri(provider.authorization_endpoint, client_id, "code", redirect_uri=redirect_uri,
                             scope=scopes.split(), state=pending.state, nonce=pending.nonce,
                             code_challenge=create_s256_code_challenge(pending.verifier),
                             code_challenge_method="S256")


def token_request(provider: Provider, client_id: str, client_secret: str, code: str, redirect_uri: str,
                  verifier: str) -> tuple[dict[str, str], str]:
    """Headers and form body of the request that redeems `code` at the token endpoint."""
    params = {"code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if provider.auth_method == "client_secret_basic":
        # RFC 6749 2.3.1: id and secret are form-encoded before they are joined (authlib's encoder skips this).
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        params.update(client_id=client_id, client_secret=client_secret)
    return headers, prepare_token_request("authorization_code", **params)


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str


def _verified(value: Any) -> bool:
    # Some providers (older Amazon Cognito pools) send the boolean as a string.
    return value is True or value == "true"


def verify_id_token(provider: Provider, client_id: str, tokens: Any, jwks: Any, nonce: str, now: int) -> Identity:
    """The identity in the token endpoint's answer, once its ID token proved genuine and meant for this
    sign-in; OidcError (UnknownKey for a key the JWKS lacks) otherwise."""
    if not isinstance(tokens, dict) or not isinstance(tokens.get("id_token"), str):
        raise OidcError("the token endpoint's answer has no id_token")
    try:
        keys = KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise OidcError(f"the provider's JWKS could not be read ({type(exc).__name__})") from None
    try:
        token = jwt.decode(tokens["id_token"], keys, algorithms=list(provider.algorithms))
    except InvalidKeyIdError:
        raise UnknownKey("the ID token is signed with a key the provider's JWKS does not list") from None
    except JoseError as exc:
        raise OidcError(f"the ID token's signature is not valid ({exc.error})") from None
    except ValueError:
        raise OidcError("the ID token is not a JWT") from None
    options = {"iss": {"essential": True, "value": provider.issuer},
               "aud": {"essential": True, "value": client_id}, "sub": {"essential": True}}
    params = {"nonce": nonce, "client_id": client_id}
    if isinstance(tokens.get("access_token"), str):
        params["access_token"] = tokens["access_token"]  # checked against at_hash when the token has one
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(now=now, leeway=LEEWAY_SECONDS)
    except ExpiredTokenError:
        raise OidcError("the ID token has expired") from None
    except JoseError as exc:
        raise OidcError(f"the ID token was refused: {exc.description or exc.error}") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT:
        raise OidcError("the ID token's sub is not a string of 1 to 255 characters")
    email = claims.get("email") if isinstance(claims.get("email"), str) and "@" in claims["email"] else None
    name = next((claims[k] for k in ("name", "preferred_username") if isinstance(claims.get(k), str)
                 and claims[k].strip()), email.split("@")[0] if email else subject)
    return Identity(provider.issuer, subject, email, bool(email) and _verified(claims.get("email_verified")),
                    name.strip()[:100])
