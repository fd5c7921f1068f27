"""Single sign-on configured through the Open API (PUT/GET/DELETE /api/v1/sso/oidc), without a restart: the
stored provider wins over VIGIL_OIDC_*, its client secret is sealed and never returned, and the sign-in flow
(tests/web/test_sso.py's browser, against tests/fakes/oidc.py) follows every change. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from bot.keys import SESSIONS
from core.crypto import seal
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider, User
from tests.kit import LOCAL_FAKES, Api
from tests.web.conftest import SECRET_KEY, Browser, new_member
from tests.web.test_sso import VIGIL, members, signed_in, sso

ADMIN = "test-admin-token-0123456789abcdef"


async def _provider(aiohttp_server) -> FakeOidcProvider:  # type: ignore[no-untyped-def]
    fake = FakeOidcProvider(redirect_uris={VIGIL + "/login/sso/callback"})
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def provider(aiohttp_server) -> FakeOidcProvider:  # type: ignore[no-untyped-def]
    return await _provider(aiohttp_server)


@pytest.fixture
async def env_provider(aiohttp_server) -> FakeOidcProvider:  # type: ignore[no-untyped-def]
    """Another provider, the one VIGIL_OIDC_* names in the tests that set it."""
    return await _provider(aiohttp_server)


@pytest.fixture
def env_oidc() -> bool:
    return False  # started without VIGIL_OIDC_*, as the issue asks; TestEnvironmentProvider sets them


@pytest.fixture
def settings(db_url: str, env_provider: FakeOidcProvider, env_oidc: bool):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    oidc: dict[str, Any] = dict(oidc_issuer=env_provider.url, oidc_client_id=CLIENT_ID,
                                oidc_client_secret=CLIENT_SECRET, oidc_name="Env SSO") if env_oidc else {}
    return Settings(database_url=db_url, admin_token=ADMIN, base_url=VIGIL, sweep_interval_seconds=0.2,
                    egress_allow=list(LOCAL_FAKES), secret_key=SECRET_KEY, **oidc)


def body(provider: FakeOidcProvider, **kw: Any) -> dict[str, Any]:
    return {"issuer": provider.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "name": "Example SSO",
            **kw}


async def error(app: Api, method: str, json: Any = None, *, status: int, token: str | None = None) -> str:
    return (await app.call(method, "/sso/oidc", json, expect=status, token=token))["error"]["message"]


async def test_configured_by_api_the_sign_in_works_at_once(app: Api, browser: Browser, provider):
    await new_member(app, "alice")
    assert (await app.get("/sso/oidc"))["source"] == "none"
    assert "Sign in with" not in (await browser.get("/login"))[2]
    assert (await browser.get("/login/sso"))[0] == 404

    got = await app.call("PUT", "/sso/oidc", body(provider))
    assert got["source"] == "api" and got["client_secret_set"] is True and got["issuer"] == provider.url
    assert (got["scopes"], got["name"], got["auto_provision"]) == ("openid email profile", "Example SSO", False)
    login = (await browser.get("/login?next=/incidents"))[2]
    assert 'href="/login/sso?next=/incidents"' in login and "Sign in with Example SSO" in login

    assert (await sso(browser, provider, "/incidents"))[:2] == (303, "/incidents")
    assert "alice@example.com" in (await browser.get("/account"))[2]
    assert provider.refused == []


async def test_the_secret_is_sealed_and_never_returned(app: Api, provider):
    put = await app.client.put("/api/v1/sso/oidc", json=body(provider), headers=app.headers())
    got = await app.client.get("/api/v1/sso/oidc", headers=app.headers())
    for resp in (put, got):
        assert resp.status == 200 and CLIENT_SECRET not in await resp.text()
        assert "client_secret" not in (await resp.json())["data"]
    async with app.app[SESSIONS]() as db:
        stored = (await db.execute(text("SELECT client_secret FROM sso_provider"))).scalar_one()
    assert stored and CLIENT_SECRET not in stored


async def test_a_left_out_secret_is_kept_and_a_new_one_used_at_once(app: Api, browser: Browser, provider):
    await new_member(app, "alice")
    await app.call("PUT", "/sso/oidc", body(provider))
    assert (await sso(browser, provider))[0] == 303  # discovery and JWKS are cached now
    browser.forget()

    renamed = {k: v for k, v in body(provider, name="Okta").items() if k != "client_secret"}
    got = await app.call("PUT", "/sso/oidc", renamed)
    assert got["client_secret_set"] is True and got["name"] == "Okta"
    assert "Sign in with Okta" in (await browser.get("/login"))[2]
    assert (await sso(browser, provider))[0] == 303 and await signed_in(browser)  # the stored secret still works
    browser.forget()

    await app.call("PUT", "/sso/oidc", body(provider, client_secret="not-the-secret"))
    status, _, page = await sso(browser, provider)
    assert status == 401 and "refused the sign-in code" in page and not await signed_in(browser)
    assert provider.refused == ["wrong client secret"]


async def test_auto_provisioning_as_set_by_api(app: Api, browser: Browser, provider):
    provider.user = User("bob-sub", "bob@example.com", True, "Bob")
    await app.call("PUT", "/sso/oidc", body(provider))
    status, _, page = await sso(browser, provider)
    assert status == 403 and "no Vigil member" in page and await members(app) == {}

    await app.call("PUT", "/sso/oidc", body(provider, auto_provision=True, default_role="responder"))
    assert (await sso(browser, provider))[:2] == (303, "/account")
    assert (await members(app))["bob@example.com"]["role"] == "responder"


@pytest.mark.parametrize("change, field", [
    ({"issuer": "ftp://sso.example.com"}, "issuer"),
    ({"issuer": "http://sso.example.com"}, "issuer"),  # http only on this machine
    ({"issuer": "https://sso.example.com/?tenant=1"}, "issuer"),
    ({"client_id": " "}, "client_id"),
    ({"scopes": "email profile"}, "scopes"),
    ({"default_role": "root"}, "default_role"),
    ({"client_secret": ""}, "client_secret"),
    ({"name": ""}, "name"),
    ({"auto_provision": "yes"}, "auto_provision"),
])
async def test_bad_input_is_refused_naming_the_field(app: Api, provider, change, field):
    before = await app.call("PUT", "/sso/oidc", body(provider))
    message = await error(app, "PUT", body(provider, **change), status=400)
    assert field in message, message
    assert await app.get("/sso/oidc") == before


async def test_a_secret_is_needed_first_and_for_another_client(app: Api, provider):
    no_secret = {k: v for k, v in body(provider).items() if k != "client_secret"}
    assert "client_secret" in await error(app, "PUT", no_secret, status=400)
    assert (await app.get("/sso/oidc"))["source"] == "none"
    await app.call("PUT", "/sso/oidc", body(provider))
    # a secret belongs to one client at one provider: another client id does not inherit it
    assert "client_secret" in await error(app, "PUT", {**no_secret, "client_id": "another"}, status=400)
    assert (await app.get("/sso/oidc"))["client_id"] == CLIENT_ID


@pytest.mark.parametrize("role", ["responder", "observer"])
async def test_only_admins_see_or_change_it(app: Api, browser: Browser, provider, role):
    m = await app.post("/members", {"name": "rita", "email": "rita@example.com", "role": role})
    token = (await app.post("/tokens", {"name": "rita", "member_id": m["member_id"], "role": role}))["token"]
    for method, json in (("GET", None), ("PUT", body(provider)), ("DELETE", None)):
        assert "cannot do this" in await error(app, method, json, status=403, token=token)
    assert (await app.get("/sso/oidc"))["source"] == "none"
    assert (await browser.get("/login/sso"))[0] == 404


async def test_a_secret_sealed_under_another_key_says_so(app: Api, browser: Browser, provider):
    await app.call("PUT", "/sso/oidc", body(provider))
    async with app.app[SESSIONS]() as db:
        await db.execute(text("UPDATE sso_provider SET client_secret = :s"),
                         {"s": seal("an-older-secret-key", {"client_secret": CLIENT_SECRET})})
        await db.commit()
    got = await app.get("/sso/oidc")
    assert got["source"] == "api" and "VIGIL_SECRET_KEY" in got["problem"]
    assert (await browser.get("/login/sso"))[0] == 502
    assert "Sign in with" not in (await browser.get("/login"))[2]


class TestEnvironmentProvider:
    @pytest.fixture
    def env_oidc(self) -> bool:
        return True

    async def test_the_stored_provider_wins_and_delete_returns_to_env(self, app: Api, browser: Browser, provider,
                                                                      env_provider):
        await new_member(app, "alice")
        got = await app.get("/sso/oidc")
        assert (got["source"], got["issuer"], got["client_secret_set"]) == ("env", env_provider.url, True)
        assert "Sign in with Env SSO" in (await browser.get("/login"))[2]
        assert (await sso(browser, env_provider))[0] == 303
        browser.forget()

        await app.call("PUT", "/sso/oidc", body(provider))
        assert "Sign in with Example SSO" in (await browser.get("/login"))[2]
        assert (await sso(browser, provider))[0] == 303  # sso() checks the browser was sent to `provider`
        browser.forget()

        got = await app.call("DELETE", "/sso/oidc")
        assert (got["source"], got["issuer"], got["name"]) == ("env", env_provider.url, "Env SSO")
        assert "Sign in with Env SSO" in (await browser.get("/login"))[2]
        assert (await sso(browser, env_provider))[0] == 303 and await signed_in(browser)
        assert (await app.call("DELETE", "/sso/oidc"))["source"] == "env"  # deleting nothing is fine


async def test_admins_setting_it_at_once_get_no_server_error(app: Api, provider):
    import asyncio

    async def put(i: int) -> int:
        resp = await app.client.put("/api/v1/sso/oidc", json=body(provider, name=f"SSO {i}"), headers=app.headers())
        return resp.status

    statuses = await asyncio.gather(*(put(i) for i in range(6)))
    assert set(statuses) <= {200, 409} and 200 in statuses, statuses
    got = await app.get("/sso/oidc")
    assert got["source"] == "api" and got["name"].startswith("SSO ") and got["client_secret_set"]
