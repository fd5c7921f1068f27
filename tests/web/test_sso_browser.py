"""Single sign-on in a real browser (Debian's Chromium through Playwright): the sign-in page's button, the
local OpenID Connect provider (tests/fakes/oidc.py), and back on the page asked for, signed in.

Vigil listens on a port chosen here so its base URL, and so the redirect_uri registered at the provider, is
the address the browser really uses."""

from __future__ import annotations

import socket

import pytest

from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider, User
from tests.kit import LOCAL_FAKES, Api
from tests.web.conftest import SECRET_KEY, new_incident, new_member
from tests.web.test_pages_browser import DESKTOP, PHONE, _screenshots, chromium  # noqa: F401  (the fixture)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
async def provider(aiohttp_server, port) -> FakeOidcProvider:  # type: ignore[no-untyped-def]
    fake = FakeOidcProvider(redirect_uris={f"http://127.0.0.1:{port}/login/sso/callback"},
                            user=User("kc-alice", "alice@example.com", True, "Alice"))
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def settings(db_url, provider, port):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    return Settings(database_url=db_url, admin_token="test-admin-token-0123456789abcdef",
                    base_url=f"http://127.0.0.1:{port}", sweep_interval_seconds=0.2, egress_allow=list(LOCAL_FAKES),
                    secret_key=SECRET_KEY, oidc_issuer=provider.url, oidc_client_id=CLIENT_ID,
                    oidc_client_secret=CLIENT_SECRET, oidc_name="Keycloak")


@pytest.fixture
async def app(settings, aiohttp_client, port):  # type: ignore[no-untyped-def]
    from bot.server import create_app

    client = await aiohttp_client(create_app(settings), server_kwargs={"port": port})
    yield Api(client, "test-admin-token-0123456789abcdef")


async def test_sign_in_through_the_provider(app, chromium, provider, port, db_url):  # noqa: F811
    await new_member(app, "alice", password=None)  # she never had a Vigil password
    iid = await new_incident(app, "checkout latency p99 above 2 s")
    page = await (await chromium.new_context(viewport=PHONE)).new_page()
    await page.goto(f"http://127.0.0.1:{port}/incidents/{iid}")
    assert page.url.endswith(f"/login?next=/incidents/{iid}")
    if "sqlite" in db_url:
        await _screenshots(page, "sign-in-sso")
    await page.get_by_role("link", name="Sign in with Keycloak").click()
    await page.wait_for_url(f"**/incidents/{iid}")  # through the provider and back
    assert await page.get_by_role("heading", level=1).inner_text() == "checkout latency p99 above 2 s"
    assert provider.refused == []
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login")


async def test_unverified_email_shows_why_and_signs_nobody_in(app, chromium, provider, port):  # noqa: F811
    await new_member(app, "alice", password=None)
    provider.user = User("someone", "alice@example.com", False, "Not Alice")
    page = await (await chromium.new_context(viewport=DESKTOP)).new_page()
    await page.goto(f"http://127.0.0.1:{port}/login")
    await page.get_by_role("link", name="Sign in with Keycloak").click()
    await page.wait_for_url("**/login/sso/callback?**")
    assert await page.get_by_role("heading", level=1).inner_text() == "You cannot sign in to Vigil"
    await page.goto(f"http://127.0.0.1:{port}/account")
    assert "/login?next=/account" in page.url
