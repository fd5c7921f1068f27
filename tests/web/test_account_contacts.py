"""Contact methods in the personal center: a changed e-mail address or phone number is unverified until the
member enters the code sent to it, by real SMTP (aiosmtpd) or by SMS (the Twilio fake). Codes are single-use,
expire, allow five wrong tries, are sent at most once a minute, and are stored only as an HMAC."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.keys import SESSIONS
from core.clock import utcnow
from core.models import Member
from core.models.personal import ContactVerification
from tests.web.conftest import PASSWORD, Browser, new_member
from tests.web.personal import center, inbox, texted_codes, twilio  # noqa: F401  (fixtures)


async def _signed_in(center, name: str = "alice") -> tuple[Browser, int]:  # noqa: F811
    member_id = await new_member(center, name)
    browser = Browser(center.client)
    await browser.sign_in(f"{name}@example.com")
    return browser, member_id


async def _row(center, member_id: int, kind: str) -> ContactVerification:  # noqa: F811
    async with center.app[SESSIONS]() as db:
        return await db.get(ContactVerification, (member_id, kind))


async def test_an_email_address_is_verified_by_the_code_mailed_to_it(center, inbox):  # noqa: F811
    browser, _ = await _signed_in(center)
    body = (await browser.get("/account"))[2]
    assert "alice@example.com" in body and "Not verified" in body
    status, location, _ = await browser.post("/account/contacts/email/code", {}, form_at="/account")
    assert (status, location) == (303, "/account?done=email-sent#contacts")
    code = await inbox.code_to("alice@example.com")
    mail = inbox.messages[0]
    assert mail["Subject"] == "Your Vigil verification code" and mail["From"] == "vigil@example.com"

    wrong = "000000" if code != "000000" else "111111"
    status, _, body = await browser.post("/account/contacts/email/verify", {"code": wrong}, form_at="/account")
    assert status == 400 and "That code is not right. 4 tries left." in body
    status, location, _ = await browser.post("/account/contacts/email/verify", {"code": code[:3] + " " + code[3:]},
                                             form_at="/account")
    assert (status, location) == (303, "/account?done=email-verified#contacts")
    body = (await browser.get("/account?done=email-verified"))[2]
    assert "Your e-mail address is verified." in body and "Verified</span>" in body

    # single use: the same code again finds nothing to check
    status, _, body = await browser.post("/account/contacts/email/verify", {"code": code}, form_at="/account")
    assert status == 400 and "No code is out for this e-mail address" in body


async def test_a_changed_phone_gets_a_text_and_is_unverified_until_its_code(center, twilio):  # noqa: F811
    browser, member_id = await _signed_in(center)
    status, location, _ = await browser.post("/account/contacts/phone", {"phone": "+1 (415) 555-0100"},
                                             form_at="/account")
    assert (status, location) == (303, "/account?done=phone-sent#contacts")
    [code] = texted_codes(twilio, "+14155550100")
    body = (await browser.get("/account"))[2]
    assert "+14155550100" in body and body.count("Not verified") == 2  # e-mail and phone
    await browser.post("/account/contacts/phone/verify", {"code": code}, form_at="/account")
    assert (await _row(center, member_id, "phone")).verified_value == "+14155550100"
    assert "Not verified" in (await browser.get("/account"))[2]  # the e-mail address still is

    # Changed through the Open API by an admin: unverified again, with no code out for the new number.
    await center.patch(f"/members/{member_id}", {"phone": "+14155550199"})
    [phone] = [c for c in (await center.get(f"/members/{member_id}/contacts"))["items"] if c["kind"] == "phone"]
    assert phone == {"kind": "phone", "value": "+14155550199", "verified": False, "code_out": False,
                     "code_expires_at": 0}
    # the code sent to the old number cannot verify the new one
    status, _, body = await browser.post("/account/contacts/phone/verify", {"code": code}, form_at="/account")
    assert status == 400 and "No code is out" in body

    status, _, body = await browser.post("/account/contacts/phone", {"phone": "0415 555 0100"}, form_at="/account")
    assert status == 400 and "international form" in body
    status, location, _ = await browser.post("/account/contacts/phone", {"phone": ""}, form_at="/account")
    assert location == "/account?done=phone-removed#contacts"
    async with center.app[SESSIONS]() as db:
        assert (await db.get(Member, member_id)).phone is None


async def test_five_wrong_codes_end_the_code(center, inbox):  # noqa: F811
    browser, _ = await _signed_in(center)
    await browser.post("/account/contacts/email/code", {}, form_at="/account")
    code = await inbox.code_to("alice@example.com")
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, 6)]
    for i, guess in enumerate(wrong):
        status, _, body = await browser.post("/account/contacts/email/verify", {"code": guess}, form_at="/account")
        assert status == 400 and "not right" in body, i
    status, _, body = await browser.post("/account/contacts/email/verify", {"code": code}, form_at="/account")
    assert status == 400 and "Too many wrong codes. Send a new one." in body
    assert "Not verified" in (await browser.get("/account"))[2]


async def test_an_expired_code_is_refused_and_codes_are_stored_as_an_hmac(center, inbox):  # noqa: F811
    browser, member_id = await _signed_in(center)
    await browser.post("/account/contacts/email/code", {}, form_at="/account")
    code = await inbox.code_to("alice@example.com")
    row = await _row(center, member_id, "email")
    stored = [str(v) for v in (row.pending_value, row.code_hash, row.verified_value)]
    assert len(row.code_hash) == 64 and not any(code in v for v in stored)
    async with center.app[SESSIONS]() as db:  # ten minutes and a second later
        await db.execute(update(ContactVerification).where(ContactVerification.member_id == member_id)
                         .values(code_expires_at=utcnow() - timedelta(seconds=1)))
        await db.commit()
    status, _, body = await browser.post("/account/contacts/email/verify", {"code": code}, form_at="/account")
    assert status == 400 and "That code has expired. Send a new one." in body


async def test_codes_go_out_at_most_once_a_minute(center, inbox):  # noqa: F811
    browser, _ = await _signed_in(center)
    assert (await browser.post("/account/contacts/email/code", {}, form_at="/account"))[0] == 303
    status, _, body = await browser.post("/account/contacts/email/code", {}, form_at="/account")
    assert status == 429 and "less than a minute ago" in body
    await inbox.code_to("alice@example.com")
    assert len(inbox.messages) == 1


async def test_an_email_change_needs_the_password_and_an_address_nobody_else_has(center, inbox):  # noqa: F811
    browser, member_id = await _signed_in(center)
    await new_member(center, "bob")
    status, _, body = await browser.post("/account/contacts/email", {"email": "al@example.com", "current": "nope"},
                                         form_at="/account")
    assert status == 400 and "current password is not right" in body
    status, _, body = await browser.post("/account/contacts/email", {"email": "BOB@example.com",
                                                                     "current": PASSWORD}, form_at="/account")
    assert status == 409 and "belongs to another member" in body
    status, _, body = await browser.post("/account/contacts/email", {"email": "not an address",
                                                                     "current": PASSWORD}, form_at="/account")
    assert status == 400 and "not an e-mail address" in body
    status, location, _ = await browser.post("/account/contacts/email", {"email": "al@example.com",
                                                                         "current": PASSWORD}, form_at="/account")
    assert location == "/account?done=email-sent#contacts"
    assert await inbox.code_to("al@example.com")
    async with center.app[SESSIONS]() as db:
        assert (await db.get(Member, member_id)).email == "al@example.com"


async def test_a_form_without_its_csrf_token_changes_nothing(center, inbox, twilio):  # noqa: F811
    browser, member_id = await _signed_in(center)
    for path, data in (("/account/contacts/phone", {"phone": "+14155550100"}),
                       ("/account/contacts/email", {"email": "x@example.com", "current": PASSWORD}),
                       ("/account/contacts/email/code", {}), ("/account/contacts/email/verify", {"code": "123456"})):
        status, _, _ = await browser.post(path, data, csrf=False)
        assert status == 403, path
    async with center.app[SESSIONS]() as db:
        member = await db.get(Member, member_id)
        assert (member.email, member.phone) == ("alice@example.com", None)
        assert (await db.execute(select(ContactVerification))).first() is None
    assert inbox.messages == [] and twilio.requests == []
