"""A small local OpenID Connect provider (aiohttp) that checks what a real one checks.

Discovery (/.well-known/openid-configuration), a JWKS with its RSA key, an authorize endpoint that signs in
`user` at once (as a provider with a live session does) and redirects back with a code, and a token endpoint
that checks the client's secret (client_secret_basic, form-encoded as RFC 6749 2.3.1 says), the code, the
redirect_uri and the PKCE verifier (S256), then answers an ID token signed RS256 with its key. Tests change
the token with `claims` (a wrong aud, an old exp...) or sign it with `sign_with`, a key not in the JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "vigil"
CLIENT_SECRET = "s3cret/with+chars=to-encode"


@dataclass
class User:
    """The person signed in at the provider."""

    sub: str
    email: str | None
    email_verified: bool = True
    name: str = ""


@dataclass
class FakeOidcProvider:
    """Set `url` once it listens (its issuer) and `redirect_uris` to the client's registered callbacks."""

    url: str = ""
    redirect_uris: set[str] = field(default_factory=set)
    user: User = field(default_factory=lambda: User("alice-sub-1", "alice@example.com", True, "Alice"))
    claims: dict[str, Any] = field(default_factory=dict)  # merged into the next ID tokens (None drops a claim)
    sign_with: RSAKey | None = None
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "key-1", "use": "sig"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # why each refused token request was refused

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        return app

    async def discovery(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.url, "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token", "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "scopes_supported": ["openid", "email", "profile"]})

    async def jwks(self, _request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("redirect_uri") not in self.redirect_uris:
            # A real provider shows its own error page: never redirect to an unregistered URI.
            return web.Response(status=400, text="unknown client or redirect_uri")
        back = {"state": q.get("state", "")}
        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            back["error"] = "invalid_request"
        elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge") or not q.get("nonce"):
            back["error"] = "invalid_request"
            back["error_description"] = "PKCE S256 and a nonce are required"
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = {"redirect_uri": q["redirect_uri"], "challenge": q["code_challenge"],
                                "nonce": q["nonce"], "user": self.user}
            back["code"] = code
        raise web.HTTPFound(q["redirect_uri"] + "?" + urlencode(back))

    def _refuse(self, why: str, error: str = "invalid_grant", status: int = 400) -> web.Response:
        self.refused.append(why)
        return web.json_response({"error": error, "error_description": why}, status=status)

    async def token(self, request: web.Request) -> web.Response:
        basic = request.headers.get("Authorization", "")
        if not basic.startswith("Basic "):
            return self._refuse("no client authentication", "invalid_client", 401)
        client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if (unquote(client_id), unquote(secret)) != (CLIENT_ID, CLIENT_SECRET):
            return self._refuse("wrong client secret", "invalid_client", 401)
        form = await request.post()
        grant = self.codes.pop(str(form.get("code", "")), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return self._refuse("unknown or used code")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return self._refuse("redirect_uri differs from the authorization request's")
        digest = hashlib.sha256(str(form.get("code_verifier", "")).encode()).digest()
        if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant["challenge"]:
            return self._refuse("PKCE verifier does not match the challenge")
        user: User = grant["user"]
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "sub": user.sub, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
                                  "nonce": grant["nonce"], "name": user.name}
        if user.email is not None:
            claims.update(email=user.email, email_verified=user.email_verified)
        for name, value in self.claims.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return web.json_response({"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                                  "expires_in": 300, "id_token": id_token})
