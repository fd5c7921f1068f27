"""The personal center in a real browser (Debian's Chromium through Playwright) at phone width: the member
verifies their e-mail address with the code a real SMTP server (aiosmtpd) received. Screenshots of the page
at 390x844 and 1280x800 go to test-artifacts/web/ for reviewers."""

from __future__ import annotations

from datetime import timedelta

from core.clock import utcnow
from tests.web.conftest import new_member
from tests.web.personal import center, inbox, twilio  # noqa: F401  (fixtures)
from tests.web.test_pages_browser import PHONE, _base, _screenshots, _sign_in, chromium  # noqa: F401


async def test_verify_an_email_address_on_a_phone(center, inbox, chromium, db_url):  # noqa: F811
    alice = await new_member(center, "alice")
    start = (utcnow() - timedelta(hours=2)).replace(microsecond=0)
    await center.post("/schedules", {"name": "payments primary", "definition": {"time_zone": "UTC", "layers": [{
        "start": start.isoformat(), "members": [[{"member_id": alice}]], "rotation": {"unit": "days", "value": 1}}]}})
    await center.post("/mapping-tables/slack/rows", {"member_id": alice, "im_user_id": "U024BE7LH"})
    page = await (await chromium.new_context(viewport=PHONE)).new_page()
    await page.goto(f"{_base(center)}/account")
    await _sign_in(page, "alice@example.com")
    await page.wait_for_url("**/account")
    contact = page.locator("#contact-email")
    assert await contact.get_by_text("Not verified").is_visible()

    await contact.get_by_role("button", name="Send a code").click()
    await page.get_by_role("status").filter(has_text="A code is on its way").wait_for()
    code = await inbox.code_to("alice@example.com")
    await page.get_by_label("Code sent to alice@example.com").fill(code)
    await contact.get_by_role("button", name="Verify").click()
    await page.get_by_role("status").filter(has_text="Your e-mail address is verified.").wait_for()
    assert await contact.get_by_text("Verified", exact=True).is_visible()
    # the page fits the phone: nothing wider than the screen
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert await page.locator("#oncall").get_by_text("payments primary").first.is_visible()
    if "sqlite" in db_url:
        await page.goto(f"{_base(center)}/account")
        await _screenshots(page, "personal-center")
