"""Single sign-on over OpenID Connect against a local provider (tests/fakes/oidc.py), on SQLite and PostgreSQL.

The test is the browser: it starts at /login/sso, follows the redirect to the provider with its own HTTP
client, and brings the provider's redirect back to Vigil's callback, as a browser would."""

from __future__ import annotations

import socket
import time

import aiohttp
import pyotp
import pytest
from joserfc.jwk import RSAKey

from bot.keys import SESSIONS
from core import sign_in
from core.clock import utcnow
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider, User
from tests.kit import LOCAL_FAKES
from tests.web.conftest import SECRET_KEY, Browser, new_member

VIGIL = "http://vigil.test"


@pytest.fixture
async def provider(aiohttp_server) -> FakeOidcProvider:  # type: ignore[no-untyped-def]
    fake = FakeOidcProvider(redirect_uris={VIGIL + "/login/sso/callback"})
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def auto_role() -> str:
    return ""  # auto-provisioning off, as by default; tests that want it parametrize this


@pytest.fixture
def settings(db_url: str, provider: FakeOidcProvider, auto_role: str):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    return Settings(database_url=db_url, admin_token="test-admin-token-0123456789abcdef", base_url=VIGIL,
                    sweep_interval_seconds=0.2, egress_allow=list(LOCAL_FAKES), secret_key=SECRET_KEY,
                    oidc_issuer=provider.url, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
                    oidc_name="Example SSO", oidc_auto_provision_role=auto_role)


async def sso(browser: Browser, provider: FakeOidcProvider, next_path: str = "/account",
              state: str | None = None) -> tuple[int, str, str]:
    """Sign in through the provider; `state` replaces the one the provider sends back."""
    status, location, _ = await browser.get(f"/login/sso?next={next_path}")
    assert status == 303 and location.startswith(provider.url + "/authorize?"), (status, location)
    async with aiohttp.ClientSession() as http:
        resp = await http.get(location, allow_redirects=False)
    back = resp.headers["Location"]
    assert back.startswith(VIGIL + "/login/sso/callback?"), back
    if state is not None:
        back = back.replace("state=", "state=" + state + "&was=")
    return await browser.get(back[len(VIGIL):])


async def signed_in(browser: Browser) -> bool:
    return (await browser.get("/account"))[0] == 200


async def members(app) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {m["email"]: m for m in (await app.get("/members"))["items"]}


async def test_login_page_offers_single_sign_on(app, browser: Browser):
    body = (await browser.get("/login?next=/incidents"))[2]
    assert 'href="/login/sso?next=/incidents"' in body and "Sign in with Example SSO" in body


async def test_member_signs_in_by_verified_email_without_totp(app, browser: Browser, provider):
    alice = await new_member(app, "alice")
    secret = pyotp.random_base32()
    async with app.app[SESSIONS]() as db:  # alice has a second factor for her password
        await sign_in.enable_totp(db, alice, SECRET_KEY, secret, pyotp.TOTP(secret).now(), utcnow())
        await db.commit()
    status, location, _ = await sso(browser, provider, "/incidents")
    assert (status, location) == (303, "/incidents")  # no /login/code: the provider did the second factor
    status, _, body = await browser.get("/account")
    assert status == 200 and "alice@example.com" in body
    assert provider.refused == []


async def test_the_link_survives_an_email_change_at_the_provider(app, browser: Browser, provider):
    await new_member(app, "alice")
    assert (await sso(browser, provider))[0] == 303
    browser.forget()
    provider.user = User("alice-sub-1", "alice.renamed@example.com", True, "Alice")
    assert (await sso(browser, provider))[:2] == (303, "/account")
    assert "alice@example.com" in (await browser.get("/account"))[2]
    # and someone else who now has alice's old address at the provider is not alice
    browser.forget()
    provider.user = User("mallory-sub", "alice@example.com", False, "Mallory")
    status, _, body = await sso(browser, provider)
    assert status == 403 and "verified" in body and not await signed_in(browser)


async def test_state_mismatch_signs_nobody_in(app, browser: Browser, provider):
    await new_member(app, "alice")
    status, _, body = await sso(browser, provider, state="forged")
    assert status == 400 and "start again" in body and not await signed_in(browser)
    # a callback this browser never started (another browser's code and state) is refused the same way
    status, location, _ = await browser.get("/login/sso")
    async with aiohttp.ClientSession() as http:
        back = (await http.get(location, allow_redirects=False)).headers["Location"]
    browser.forget()
    status, _, _ = await browser.get(back[len(VIGIL):])
    assert status == 400 and not await signed_in(browser)


@pytest.mark.parametrize("claims, said", [
    ({"nonce": "another-sign-in"}, "nonce"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3900}, "expired"),
    ({"aud": "another-client"}, "aud"),
    ({"iss": "https://impostor.example"}, "iss"),
    ({"email_verified": None, "sub": None}, "sub"),
])
async def test_a_bad_id_token_signs_nobody_in(app, browser: Browser, provider, claims, said):
    await new_member(app, "alice")
    provider.claims = claims
    status, _, body = await sso(browser, provider)
    assert status == 401 and "could not verify" in body and said in body
    assert not await signed_in(browser)


async def test_a_token_signed_with_another_key_signs_nobody_in(app, browser: Browser, provider):
    await new_member(app, "alice")
    provider.sign_with = RSAKey.generate_key(2048, {"kid": "key-1"})  # same key id, not the provider's key
    status, _, body = await sso(browser, provider)
    assert status == 401 and "signature" in body and not await signed_in(browser)
    provider.sign_with = RSAKey.generate_key(2048, {"kid": "key-2"})  # a key id the JWKS does not list
    status, _, body = await sso(browser, provider)
    assert status == 401 and "does not list" in body and not await signed_in(browser)


async def test_a_rotated_key_is_fetched_again(app, browser: Browser, provider):
    await new_member(app, "alice")
    assert (await sso(browser, provider))[0] == 303  # the JWKS is cached now
    provider.key = RSAKey.generate_key(2048, {"kid": "key-2", "use": "sig"})
    browser.forget()
    assert (await sso(browser, provider))[0] == 303


@pytest.mark.parametrize("auto_role", ["", "responder"])
async def test_unverified_email_is_never_matched(app, browser: Browser, provider, auto_role):
    await new_member(app, "alice")
    provider.user = User("someone", "alice@example.com", False, "Not Alice")
    status, _, body = await sso(browser, provider)
    assert status == 403 and "did not say your e-mail address is verified" in body
    assert not await signed_in(browser)
    assert set(await members(app)) == {"alice@example.com"}  # nobody provisioned either


async def test_unknown_member_without_auto_provisioning_is_refused(app, browser: Browser, provider):
    provider.user = User("bob-sub", "bob@example.com", True, "Bob")
    status, _, body = await sso(browser, provider)
    assert status == 403 and "no Vigil member with your e-mail address bob@example.com" in body
    assert not await signed_in(browser) and await members(app) == {}


@pytest.mark.parametrize("auto_role", ["observer"])
async def test_unknown_member_is_provisioned_with_the_configured_role(app, browser: Browser, provider):
    provider.user = User("bob-sub", "Bob@Example.com", True, "Bob Builder")
    assert (await sso(browser, provider))[:2] == (303, "/account")
    bob = (await members(app))["Bob@Example.com"]
    assert (bob["name"], bob["role"]) == ("Bob Builder", "observer")
    browser.forget()
    assert (await sso(browser, provider))[0] == 303  # the second time it is the same member
    assert len(await members(app)) == 1


@pytest.mark.parametrize("auto_role", ["responder"])
async def test_removed_member_cannot_sign_in_until_added_again(app, browser: Browser, provider):
    alice = await new_member(app, "alice")
    assert (await sso(browser, provider))[0] == 303
    await app.delete(f"/members/{alice}")
    assert not await signed_in(browser)  # the open session ends at once
    status, _, body = await sso(browser, provider)
    assert status == 403 and "removed" in body and not await signed_in(browser)
    assert await members(app) == {}  # not auto-provisioned back
    await new_member(app, "alice", password=None)  # an admin adds her again
    assert (await sso(browser, provider))[0] == 303 and await signed_in(browser)


async def test_provider_saying_no_signs_nobody_in(app, browser: Browser, provider):
    status, location, _ = await browser.get("/login/sso")
    state = location.split("state=")[1].split("&")[0]
    status, _, body = await browser.get(f"/login/sso/callback?state={state}&error=access_denied"
                                        "&error_description=%3Cb%3Enot+allowed%3C%2Fb%3E")
    assert status == 401 and "&lt;b&gt;not allowed" in body and not await signed_in(browser)


async def test_a_callback_works_once(app, browser: Browser, provider):
    await new_member(app, "alice")
    status, location, _ = await browser.get("/login/sso")
    async with aiohttp.ClientSession() as http:
        back = (await http.get(location, allow_redirects=False)).headers["Location"]
    assert (await browser.get(back[len(VIGIL):]))[0] == 303
    assert (await browser.get(back[len(VIGIL):]))[0] == 400  # the pending sign-in was used up


class TestProviderUnreachable:
    @pytest.fixture
    def settings(self, db_url, provider, request):  # type: ignore[no-untyped-def]
        from core.settings import Settings

        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{s.getsockname()[1]}"
        issuer = {"nothing listens": closed, "egress refuses": provider.url}[request.param]
        allow = list(LOCAL_FAKES) if request.param == "nothing listens" else []
        return Settings(database_url=db_url, admin_token="test-admin-token-0123456789abcdef", base_url=VIGIL,
                        egress_allow=allow, secret_key=SECRET_KEY, oidc_issuer=issuer,
                        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET)

    @pytest.mark.parametrize("settings", ["nothing listens", "egress refuses"], indirect=True)
    async def test_sign_in_page_says_so(self, app, browser: Browser):
        status, _, body = await browser.get("/login/sso")
        assert status == 502 and "did not answer" in body and not await signed_in(browser)


def test_settings_name_what_is_wrong():
    from pydantic import ValidationError

    from core.settings import Settings

    for kw, said in ((dict(oidc_issuer="http://sso.example.com"), "https"),
                     (dict(oidc_issuer="https://sso.example.com"), "VIGIL_OIDC_CLIENT_ID"),
                     (dict(oidc_auto_provision_role="root"), "not a role")):
        with pytest.raises(ValidationError, match=said):
            Settings(**kw)
    ok = Settings(oidc_issuer="https://sso.example.com/realms/ops/", oidc_client_id="v", oidc_client_secret="s")
    assert ok.oidc_issuer == "https://sso.example.com/realms/ops" and isinstance(ok.oidc_auto_provision_role, str)

