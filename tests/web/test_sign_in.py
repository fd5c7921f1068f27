"""Password sign-in, the TOTP second factor, rate limits, CSRF, logout, and sessions cut by role changes.

Every test runs on SQLite and PostgreSQL against a real Vigil (aiohttp test server)."""

from __future__ import annotations

import pyotp

from tests.web.conftest import PASSWORD, Browser, new_incident, new_member


async def test_password_sign_in_opens_the_page_asked_for(app, browser: Browser):
    await new_member(app, "alice")
    iid = await new_incident(app, "disk full on db-1")
    status, location, _ = await browser.get(f"/incidents/{iid}")
    assert status == 303 and location == f"/login?next=/incidents/{iid}"
    status, location, _ = await browser.sign_in("Alice@Example.com", next_path=f"/incidents/{iid}")
    assert (status, location) == (303, f"/incidents/{iid}")
    status, _, body = await browser.get(f"/incidents/{iid}")
    assert status == 200 and "disk full on db-1" in body and "alice" in body


async def test_wrong_password_or_unknown_account_signs_nobody_in(app, browser: Browser):
    await new_member(app, "alice")
    for email, password in (("alice@example.com", "not the password at all"), ("nobody@example.com", PASSWORD)):
        status, _, body = await browser.sign_in(email, password)
        assert status == 401 and "do not match" in body
    assert (await browser.get("/account"))[0] == 303


async def test_member_without_password_cannot_sign_in(app, browser: Browser):
    await new_member(app, "carol", password=None)
    status, _, _ = await browser.sign_in("carol@example.com", "")
    assert status == 401


async def test_next_never_leaves_the_site(app, browser: Browser):
    await new_member(app, "alice")
    status, location, _ = await browser.sign_in("alice@example.com", next_path="//evil.example/phish")
    assert (status, location) == (303, "/")


async def _enrol_totp(browser: Browser) -> tuple[str, int]:
    """Turn on the second factor from the account page; the secret and the step its first code used."""
    status, location, _ = await browser.post("/account/totp/start", {"current": PASSWORD}, form_at="/account")
    assert status == 303
    body = (await browser.get("/account"))[2]
    secret = body.split('id="totp-key">')[1].split("<")[0].replace(" ", "")
    totp = pyotp.TOTP(secret)
    step = totp.timecode(__import__("datetime").datetime.now())
    status, location, _ = await browser.post("/account/totp", {"code": totp.generate_otp(step)}, form_at="/account")
    assert (status, location) == (303, "/account?done=totp")
    return secret, step


async def test_totp_is_asked_for_and_verified_once(app, browser: Browser):
    await new_member(app, "alice")
    await browser.sign_in("alice@example.com")
    secret, step = await _enrol_totp(browser)
    assert "Second factor on" in (await browser.get("/account?done=totp"))[2]

    browser.forget()
    status, location, _ = await browser.sign_in("alice@example.com", next_path="/account")
    assert (status, location) == (303, "/login/code")
    assert (await browser.get("/account"))[0] == 303  # a right password alone is not signed in
    totp = pyotp.TOTP(secret)
    status, _, body = await browser.post("/login/code", {"code": "000000" if totp.generate_otp(step) != "000000"
                                                         else "111111"})
    assert status == 401 and "not right" in body
    # The code used at enrolment was spent there: it cannot sign in again (RFC 6238 5.2).
    status, _, _ = await browser.post("/login/code", {"code": totp.generate_otp(step)})
    assert status == 401
    status, location, _ = await browser.post("/login/code", {"code": totp.generate_otp(step + 1)})
    assert (status, location) == (303, "/account")
    assert (await browser.get("/account"))[0] == 200


async def test_code_page_without_a_right_password_goes_back_to_sign_in(app, browser: Browser):
    assert (await browser.get("/login/code"))[:2] == (303, "/login")
    status, location, _ = await browser.post("/login/code", {"code": "123456"}, form_at="/login")
    assert (status, location) == (303, "/login")


async def test_failed_sign_ins_are_limited_per_account(app, browser: Browser):
    await new_member(app, "alice")
    for _ in range(5):
        assert (await browser.sign_in("alice@example.com", "wrong password guess"))[0] == 401
    status, _, body = await browser.sign_in("alice@example.com")  # even the right password now
    assert status == 429 and "Too many failed sign-ins" in body
    await new_member(app, "bob")  # another account from the same address still gets in
    assert (await browser.sign_in("bob@example.com"))[0] == 303


async def test_failed_sign_ins_are_limited_per_address(app, browser: Browser, monkeypatch):
    from bot.web import login
    from core.sign_in_limits import Limits

    monkeypatch.setattr(login, "LIMITS", Limits(per_account=5, per_address=4))
    await new_member(app, "alice")
    for n in range(4):
        assert (await browser.sign_in(f"guess{n}@example.com", "wrong password guess"))[0] == 401
    assert (await browser.sign_in("alice@example.com"))[0] == 429


async def test_post_without_csrf_token_is_refused_and_changes_nothing(app, browser: Browser):
    await new_member(app, "alice")
    status, _, _ = await browser.post("/login", {"email": "alice@example.com", "password": PASSWORD}, csrf=False)
    assert status == 403
    assert (await browser.get("/account"))[0] == 303
    await browser.sign_in("alice@example.com")
    new = "a brand new password 42"
    for token in (None, "forged-token"):
        data = {"current": PASSWORD, "password": new, "repeat": new}
        if token:
            data["csrf"] = token
        status, _, body = await browser.post("/account/password", data, csrf=False)
        assert status == 403 and "Nothing was changed" in body
    assert (await browser.get("/account"))[0] == 200  # still signed in: nothing changed
    browser.forget()
    assert (await browser.sign_in("alice@example.com", new))[0] == 401
    assert (await browser.sign_in("alice@example.com"))[0] == 303  # the old password still works


async def test_logout_needs_the_token_and_ends_the_session(app, browser: Browser):
    await new_member(app, "alice")
    await browser.sign_in("alice@example.com")
    assert (await browser.post("/logout", {}, csrf=False))[0] == 403
    assert (await browser.get("/account"))[0] == 200
    status, location, _ = await browser.post("/logout", {}, form_at="/account")
    assert (status, location) == (303, "/login")
    assert (await browser.get("/account"))[0] == 303


async def test_demoted_member_is_signed_out(app, browser: Browser):
    alice = await new_member(app, "alice")
    await browser.sign_in("alice@example.com")
    assert (await browser.get("/account"))[0] == 200
    await app.patch(f"/members/{alice}", {"role": "observer"})
    assert (await browser.get("/account"))[:2] == (303, "/login?next=/account")
    await browser.sign_in("alice@example.com")  # signing in again carries the new role
    assert "observer" in (await browser.get("/account"))[2]


async def test_removed_member_is_signed_out(app, browser: Browser):
    alice = await new_member(app, "alice")
    await browser.sign_in("alice@example.com")
    await app.delete(f"/members/{alice}")  # the password row goes with the member
    assert (await browser.get("/account"))[0] == 303
    assert (await browser.sign_in("alice@example.com"))[0] == 401


async def test_password_changed_elsewhere_ends_other_sessions(app, browser: Browser, aiohttp_client):
    alice = await new_member(app, "alice")
    phone = Browser(await aiohttp_client(app.client.server))
    await browser.sign_in("alice@example.com")
    await phone.sign_in("alice@example.com")
    new = "another long password 7"
    status, _, _ = await browser.post("/account/password", {"current": PASSWORD, "password": new, "repeat": new},
                                      form_at="/account")
    assert status == 303
    assert (await browser.get("/account"))[0] == 200  # the browser that changed it stays signed in
    assert (await phone.get("/account"))[0] == 303  # the other one is out
    await app.call("PUT", f"/members/{alice}/password", {"password": "set by an admin 123"})
    assert (await browser.get("/account"))[0] == 303


async def test_first_password_needs_no_current_one_and_policy_holds(app, browser: Browser):
    from core.clock import utcnow
    from core.links import make_token
    from tests.web.conftest import SECRET_KEY

    carol = await new_member(app, "carol", password=None)
    iid = await new_incident(app)
    await browser.get(f"/incidents/{iid}?t={make_token(SECRET_KEY, carol, iid, utcnow())}")
    status, _, body = await browser.post("/account/password", {"password": "short", "repeat": "short"},
                                         form_at="/account")
    assert status == 400 and "at least 12 characters" in body
    first = "carol's first password"
    status, location, _ = await browser.post("/account/password", {"password": first, "repeat": first},
                                             form_at="/account")
    assert (status, location) == (303, "/account?done=password")
    browser.forget()
    assert (await browser.sign_in("carol@example.com", first))[0] == 303


async def test_admin_sets_passwords_through_the_open_api(app):
    alice = await new_member(app, "alice", password=None)
    _, token = await _member_token(app, "bob", "responder")
    body = await app.call("PUT", f"/members/{alice}/password", {"password": "x" * 20}, token=token, expect=403)
    assert body["error"]["code"] == "AccessDenied"
    body = await app.call("PUT", f"/members/{alice}/password", {"password": "short"}, expect=400)
    assert "password" in body["error"]["message"]
    await app.call("PUT", "/members/999999/password", {"password": "x" * 20}, expect=404)
    assert "password" not in str(await app.get(f"/members/{alice}"))  # never shown with the member


async def _member_token(app, name: str, role: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    m = await app.post("/members", {"name": name, "email": f"{name}@example.com", "role": role})
    tok = await app.post("/tokens", {"name": f"{name}-token", "member_id": m["member_id"], "role": role})
    return m["member_id"], tok["token"]
