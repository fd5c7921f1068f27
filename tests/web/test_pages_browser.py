"""The pages in a real browser (Debian's Chromium, headless, through Playwright; reference/web_testing.md):
sign in with a password, with a password and a TOTP code, and open a card's link with no session.

Screenshots of the pages at phone (390x844) and desktop (1280x800) width go to test-artifacts/web/ for
reviewers; they are not compared with anything."""

from __future__ import annotations

import os
from pathlib import Path

import pyotp
import pytest

from core.clock import utcnow
from core.links import incident_link
from tests.web.conftest import PASSWORD, SECRET_KEY, new_incident, new_member

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 800}


@pytest.fixture
async def chromium():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.environ.get("VIGIL_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Chromium is required (VIGIL_REQUIRE_SERVICES=1) but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


def _base(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.client.make_url("")).rstrip("/")


async def _screenshots(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)


async def _sign_in(page, email: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_sign_in_with_password(app, chromium, db_url):
    await new_member(app, "alice")
    iid = await new_incident(app, "payments API 5xx above 2%")
    page = await (await chromium.new_context(viewport=PHONE)).new_page()
    await page.goto(f"{_base(app)}/incidents/{iid}")
    assert page.url.endswith(f"/login?next=/incidents/{iid}")
    if "sqlite" in db_url:
        await _screenshots(page, "sign-in")
    await _sign_in(page, "alice@example.com", "a wrong password!!")
    await page.get_by_role("alert").wait_for()
    await _sign_in(page, "alice@example.com")
    await page.wait_for_url(f"**/incidents/{iid}")
    assert await page.get_by_role("heading", level=1).inner_text() == "payments API 5xx above 2%"
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/login")


async def test_sign_in_with_totp(app, chromium):
    await new_member(app, "alice")
    page = await (await chromium.new_context(viewport=DESKTOP)).new_page()
    await page.goto(f"{_base(app)}/account")
    await _sign_in(page, "alice@example.com")
    await page.wait_for_url("**/account")
    await page.locator("#current-totp").fill(PASSWORD)
    await page.get_by_role("button", name="Add an authenticator app").click()
    totp = pyotp.TOTP((await page.locator("#totp-key").inner_text()).replace(" ", ""))
    step = totp.timecode(utcnow())
    await page.get_by_label("Code", exact=True).fill(totp.generate_otp(step))  # not the phone's "country code"
    await page.get_by_role("button", name="Turn on").click()
    await page.get_by_text("Second factor on").wait_for()
    await page.get_by_role("button", name="Sign out").click()

    await page.goto(f"{_base(app)}/account")
    await _sign_in(page, "alice@example.com")
    await page.wait_for_url("**/login/code")
    await page.get_by_label("Six-digit code").fill(totp.generate_otp(step + 1))  # the enrolment code is spent
    await page.get_by_role("button", name="Verify").click()
    await page.wait_for_url("**/account")
    assert "alice@example.com" in await page.content()


async def test_card_link_opens_the_incident_signed_in(app, chromium, db_url):
    bob = await new_member(app, "bob", password=None)
    iid = await new_incident(app, "disk 95% full on db-1")
    link = incident_link(_base(app), SECRET_KEY, bob, iid, utcnow())
    page = await (await chromium.new_context(viewport=PHONE)).new_page()
    await page.goto(link)
    assert page.url == f"{_base(app)}/incidents/{iid}"  # the token is gone from the address bar
    assert await page.get_by_role("heading", level=1).inner_text() == "disk 95% full on db-1"
    assert await page.get_by_role("navigation", name="Main").get_by_text("bob").count() == 1
    if "sqlite" in db_url:
        await _screenshots(page, "incident")
        await page.goto(f"{_base(app)}/incidents")
        await _screenshots(page, "incident-list")
    forged = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    other = await (await chromium.new_context(viewport=PHONE)).new_page()
    await other.goto(forged)
    assert "/login?next=" in other.url
