"""Signed incident links: no sign-in wall at 3 a.m., and nothing for a forged, expired or foreign token."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.clock import utcnow
from core.links import make_token
from tests.web.conftest import SECRET_KEY, Browser, new_incident, new_member


async def test_link_signs_in_as_its_member_and_drops_the_token(app, browser: Browser):
    bob = await new_member(app, "bob", password=None)  # no password needed to open a page sent to you
    iid = await new_incident(app, "api latency high")
    status, location, _ = await browser.get(f"/incidents/{iid}?t={make_token(SECRET_KEY, bob, iid, utcnow())}")
    assert (status, location) == (303, f"/incidents/{iid}")  # the clean URL: the token leaves the address bar
    status, _, body = await browser.get(location)
    assert status == 200 and "api latency high" in body and ">bob<" in body


async def test_link_uses_the_members_current_role(app, browser: Browser):
    bob = await new_member(app, "bob", role="admin")
    iid = await new_incident(app)
    token = make_token(SECRET_KEY, bob, iid, utcnow())
    await app.patch(f"/members/{bob}", {"role": "observer"})  # demoted after the page was sent
    await browser.get(f"/incidents/{iid}?t={token}")
    assert "observer" in (await browser.get("/account"))[2]


def _forged(token: str) -> str:
    body, sig = token.rsplit(".", 1)
    return f"{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"


@pytest.mark.parametrize("case", ["forged", "expired", "other incident", "other secret", "garbage", "removed"])
async def test_bad_link_changes_nothing_and_asks_for_sign_in(app, browser: Browser, case: str):
    bob = await new_member(app, "bob")
    iid = await new_incident(app, "one")
    other = await new_incident(app, "two", channel="staging")
    now = utcnow()
    token = {
        "forged": _forged(make_token(SECRET_KEY, bob, iid, now)),
        "expired": make_token(SECRET_KEY, bob, iid, now - timedelta(hours=25)),
        "other incident": make_token(SECRET_KEY, bob, other, now),
        "other secret": make_token("some-other-vigil-secret-key-000000000", bob, iid, now),
        "garbage": "1.2.3",
        "removed": make_token(SECRET_KEY, bob, iid, now),
    }[case]
    if case == "removed":
        await app.delete(f"/members/{bob}")
    status, location, _ = await browser.get(f"/incidents/{iid}?t={token}")
    assert (status, location) == (303, f"/incidents/{iid}")
    status, location, body = await browser.get(location)
    assert (status, location) == (303, f"/login?next=/incidents/{iid}")
    assert "Sign in" in (await browser.get(location))[2]
    assert (await browser.get("/account"))[0] == 303  # still nobody signed in


async def test_link_for_another_member_replaces_the_session(app, browser: Browser):
    await new_member(app, "alice")
    bob = await new_member(app, "bob")
    iid = await new_incident(app)
    await browser.sign_in("alice@example.com")
    await browser.get(f"/incidents/{iid}?t={make_token(SECRET_KEY, bob, iid, utcnow())}")
    assert ">bob<" in (await browser.get(f"/incidents/{iid}"))[2]


async def test_sign_in_is_off_without_a_secret_key(aiohttp_client, db_url):
    from bot.server import create_app
    from core.settings import Settings

    client = await aiohttp_client(create_app(Settings(database_url=db_url, base_url="http://vigil.test")))
    resp = await client.get("/login")
    assert resp.status == 503 and "VIGIL_SECRET_KEY" in await resp.text()
    resp = await client.get("/incidents/1?t=1.1.9999999999.AAAAAAAAAAAAAAAAAAAAAA", allow_redirects=False)
    assert resp.status == 303 and "Set-Cookie" not in resp.headers


async def test_pages_carry_security_headers_and_cookie_flags(app, browser: Browser):
    await new_member(app, "alice")
    resp = await app.client.get("/login")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"
    cookie = resp.headers["Set-Cookie"]
    assert "vigil_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http://vigil.test; an https base_url makes it Secure


async def test_secure_cookie_when_base_url_is_https(aiohttp_client, db_url):
    from bot.server import create_app
    from core.settings import Settings

    client = await aiohttp_client(create_app(Settings(database_url=db_url, base_url="https://oncall.example.com",
                                                      secret_key=SECRET_KEY)))
    resp = await client.get("/login")
    assert resp.status == 200 and "Secure" in resp.headers["Set-Cookie"]
