"""Single sign-on over OpenID Connect: /login/sso sends the browser to the provider, /login/sso/callback
brings it back signed in (the authorization code flow with PKCE; core/oidc.py has the protocol, core/sso.py
who the identity is in Vigil).

Every request to the provider (discovery, JWKS, token) goes through the shared egress-guarded session, so
the provider's host must be allowed like any outgoing request. The session this makes is the password
sign-in's kind (bot/web/auth.py, role and credentials checked on every request); no TOTP code is asked:
the provider did the second factor.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp_session import get_session

from bot.egress import EgressRefused
from bot.keys import HTTP, SESSIONS, SETTINGS
from bot.web import auth
from bot.web.render import page, redirect
from core import oidc, sign_in, sso, sso_provider
from core.clock import utcnow

log = logging.getLogger("vigil.web.sso")

CALLBACK = "/login/sso/callback"
PENDING_SECONDS = 600  # time to sign in at the provider (a password manager, a push to a phone)
METADATA_SECONDS = 3600  # discovery and JWKS are cached this long; an unknown key id fetches the JWKS again
MAX_ANSWER_BYTES = 256 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=10)

PROVIDER_DOWN = "Single sign-on is not available right now: the sign-in provider did not answer as expected."
TRY_AGAIN = "Try again in a minute, or sign in with your e-mail and password."
START_AGAIN = ("This sign-in did not start on this browser, or took longer than ten minutes. Nobody was signed "
               "in; start again from the sign-in page.")


class ProviderDown(Exception):
    """The provider could not be reached or answered something unusable; the message is for the operator."""


@dataclass
class OidcClient:
    """The provider as Vigil talks to it: discovery and JWKS, cached, and the code exchange.

    The provider in effect is read per request (core/sso_provider.py) and may change while Vigil runs, so the
    cached documents are kept with the issuer, client id and version they were fetched for, and a change
    fetches them again."""

    _provider: tuple[tuple[str, ...], float, oidc.Provider] | None = None
    _jwks: tuple[tuple[str, ...], float, Any] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _json(self, http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
        host = urlsplit(url).hostname
        try:
            async with http.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kw) as resp:
                raw = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise ProviderDown(f"{host} answered more than {MAX_ANSWER_BYTES} bytes")
                try:
                    return resp.status, json.loads(raw)
                except ValueError:
                    raise ProviderDown(f"{host} answered HTTP {resp.status} that is not JSON") from None
        except EgressRefused as exc:
            raise ProviderDown(f"{host} is {exc} (see VIGIL_EGRESS_ALLOW)") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderDown(f"{host} could not be reached ({type(exc).__name__})") from None

    @staticmethod
    def _key(config: sso_provider.OidcConfig) -> tuple[str, ...]:
        return (config.issuer, config.client_id, config.version)

    async def provider(self, http: aiohttp.ClientSession, config: sso_provider.OidcConfig) -> oidc.Provider:
        async with self._lock:
            if (self._provider and self._provider[0] == self._key(config)
                    and time.monotonic() - self._provider[1] < METADATA_SECONDS):
                return self._provider[2]
            url = config.issuer + "/.well-known/openid-configuration"
            status, doc = await self._json(http, "GET", url)
            if status != 200:
                raise ProviderDown(f"the discovery document answered HTTP {status}")
            try:
                found = oidc.provider_from_discovery(config.issuer, doc)
            except oidc.OidcError as exc:
                raise ProviderDown(str(exc)) from None
            self._provider = (self._key(config), time.monotonic(), found)
            return found

    async def jwks(self, http: aiohttp.ClientSession, config: sso_provider.OidcConfig, provider: oidc.Provider,
                   fresh: bool = False) -> Any:
        key = (*self._key(config), provider.jwks_uri)
        if (not fresh and self._jwks and self._jwks[0] == key
                and time.monotonic() - self._jwks[1] < METADATA_SECONDS):
            return self._jwks[2]
        status, keys = await self._json(http, "GET", provider.jwks_uri)
        if status != 200:
            raise ProviderDown(f"the JWKS answered HTTP {status}")
        self._jwks = (key, time.monotonic(), keys)
        return keys

    async def identity(self, http: aiohttp.ClientSession, config: sso_provider.OidcConfig, code: str,
                       pending: oidc.Pending, redirect_uri: str) -> oidc.Identity:
        """Redeem the code and verify the ID token; OidcError when the provider refuses or the token fails."""
        provider = await self.provider(http, config)
        headers, body = oidc.token_request(provider, config.client_id, config.client_secret, code, redirect_uri,
                                           pending.verifier)
        status, tokens = await self._json(http, "POST", provider.token_endpoint, headers=headers, data=body)
        if status != 200:
            error = tokens.get("error") if isinstance(tokens, dict) else None
            raise oidc.OidcError(f"the provider refused the sign-in code (HTTP {status}"
                                 + (f", {str(error)[:60]})" if error else ")"))
        now = int(utcnow().timestamp())
        try:
            return oidc.verify_id_token(provider, config.client_id, tokens, await self.jwks(http, config, provider),
                                        pending.nonce, now)
        except oidc.UnknownKey:
            # The provider rotated its keys since they were cached: fetch them once more.
            return oidc.verify_id_token(provider, config.client_id, tokens,
                                        await self.jwks(http, config, provider, fresh=True), pending.nonce, now)


CLIENT = web.AppKey("oidc_client", OidcClient)


class Misconfigured(Exception):
    """The provider stored by API cannot be used (its secret was sealed under another VIGIL_SECRET_KEY)."""


async def current(request: web.Request) -> sso_provider.OidcConfig | None:
    """The provider in effect for this request (the one set by API, else VIGIL_OIDC_*), or None: off."""
    async with request.app[SESSIONS]() as db:
        try:
            return await sso_provider.effective(db, request.app[SETTINGS])
        except ValueError as exc:
            raise Misconfigured(str(exc)) from None


async def button_name(request: web.Request) -> str:
    """What the sign-in page's "Sign in with ..." names, or empty for no button: read per request, so a
    provider set or removed by API shows at once."""
    try:
        config = await current(request)
    except Misconfigured:
        return ""
    return config.name if config else ""


async def _config_or_problem(request: web.Request) -> sso_provider.OidcConfig | web.Response:
    try:
        config = await current(request)
    except Misconfigured as exc:
        log.error("single sign-on: the provider set by API cannot be used: %s", exc)
        return _problem(request, 502, "Sign-in provider unavailable", f"{PROVIDER_DOWN} {TRY_AGAIN}")
    if config is None:
        return _problem(request, 404, "Single sign-on is off", "This Vigil has no sign-in provider configured. "
                        "Sign in with your e-mail and password.")
    return config


def _problem(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return page(request, "message.html", status=status, viewer=None, title=title, message=message)


def _redirect_uri(request: web.Request) -> str:
    # The registered callback: from the configured base URL, never from the request's Host header.
    return request.app[SETTINGS].resolved_base_url() + CALLBACK


async def start(request: web.Request) -> web.StreamResponse:
    """GET /login/sso: remember a new sign-in in the session and send the browser to the provider."""
    if not auth.enabled(request):
        return auth.off_page(request)
    config = await _config_or_problem(request)
    if isinstance(config, web.Response):
        return config
    try:
        provider = await request.app[CLIENT].provider(request.app[HTTP], config)
    except ProviderDown as exc:
        log.warning("single sign-on: %s", exc)
        return _problem(request, 502, "Sign-in provider unavailable", f"{PROVIDER_DOWN} {TRY_AGAIN}")
    pending = oidc.Pending.new()
    session = await get_session(request)
    session["sso"] = {"state": pending.state, "nonce": pending.nonce, "verifier": pending.verifier,
                      "next": auth.safe_next(request.query.get("next")), "at": int(utcnow().timestamp())}
    return redirect(oidc.authorization_url(provider, config.client_id, _redirect_uri(request), config.scopes,
                                           pending))


async def callback(request: web.Request) -> web.StreamResponse:
    """GET /login/sso/callback: the provider sends the browser back with a code (or an error)."""
    if not auth.enabled(request):
        return auth.off_page(request)
    config = await _config_or_problem(request)
    if isinstance(config, web.Response):
        return config
    session = await get_session(request)
    saved = session.pop("sso", None)  # one use, whatever happens next
    given_state = request.query.get("state", "")
    if (not isinstance(saved, dict) or utcnow().timestamp() - saved.get("at", 0) > PENDING_SECONDS
            or not hmac.compare_digest(str(saved.get("state", "")).encode(), given_state.encode())):
        return _problem(request, 400, "Sign-in not recognised", START_AGAIN)
    if "error" in request.query:
        # The person cancelled, or the provider does not let them use Vigil. Its words, shown as text.
        said = request.query.get("error_description") or request.query["error"]
        return _problem(request, 401, "The provider did not sign you in",
                        f"The sign-in provider answered: {said[:200]}. Nobody was signed in.")
    code = request.query.get("code", "")
    if not code:
        return _problem(request, 400, "Sign-in not recognised", START_AGAIN)
    pending = oidc.Pending(saved["state"], saved["nonce"], saved["verifier"])
    try:
        identity = await request.app[CLIENT].identity(request.app[HTTP], config, code, pending,
                                                          _redirect_uri(request))
    except ProviderDown as exc:
        log.warning("single sign-on: %s", exc)
        return _problem(request, 502, "Sign-in provider unavailable", f"{PROVIDER_DOWN} {TRY_AGAIN}")
    except oidc.OidcError as exc:
        log.warning("single sign-on refused: %s", exc)
        return _problem(request, 401, "Sign-in could not be verified",
                        f"Vigil could not verify the sign-in provider's answer: {exc}. Nobody was signed in.")
    async with request.app[SESSIONS]() as db:
        try:
            member = await sso.member_for(db, identity, config.auto_provision_role, utcnow())
        except sso.Refused as exc:
            log.info("single sign-on: %s/%s refused", identity.issuer, identity.subject)
            return _problem(request, 403, "You cannot sign in to Vigil", str(exc))
        await db.commit()
        login = await sign_in.login_of(db, member.id)
        await auth.begin(request, member, login.epoch if login else 0, "sso")
    return redirect(saved.get("next") or "/")


def setup(app: web.Application) -> None:
    app[CLIENT] = OidcClient()
    app.router.add_get("/login/sso", start)
    app.router.add_get(CALLBACK, callback)
