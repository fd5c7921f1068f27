"""Self-service on the Open API (issue 13, item 11): a responder reads and changes their own contacts and
notification preferences with their own token; admins still can for anyone; nobody changes their own role;
a contact changed through the API is verified by the code sent to it, as in the personal center."""

from __future__ import annotations

from tests.kit import Api
from tests.web.personal import center, inbox, texted_codes, twilio  # noqa: F401  (fixtures)


async def _member(app: Api, name: str, role: str = "responder") -> tuple[int, str]:
    return await app.member_with_token(name, role=role)


async def _error(app: Api, method: str, path: str, body=None, *, status: int, token: str) -> str:
    return (await app.call(method, path, body, expect=status, token=token))["error"]["message"]


async def test_a_responder_changes_their_own_preferences_and_contacts_only(center):  # noqa: F811
    app = center
    rita, tok = await _member(app, "rita")
    bob, bob_tok = await _member(app, "bob")
    changed = await app.patch(f"/members/{rita}", {"preferences": {"Critical": ["voice", "app"]},
                                                   "fallback": ["app", "sms"], "phone": "+14155550100",
                                                   "time_zone": "Europe/Berlin"}, token=tok)
    assert changed["preferences"]["Critical"] == ["voice", "app"] and changed["fallback"] == ["app", "sms"]
    assert (await app.get(f"/members/{rita}", token=tok))["phone"] == "+14155550100"
    contacts = {c["kind"]: c for c in (await app.get(f"/members/{rita}/contacts", token=tok))["items"]}
    assert contacts["phone"]["verified"] is False and contacts["email"]["value"] == "rita@example.com"

    assert "only the member themself or an admin" in await _error(
        app, "PATCH", f"/members/{bob}", {"preferences": {"Critical": ["im"]}}, status=403, token=tok)
    assert "only the member themself or an admin" in await _error(
        app, "GET", f"/members/{bob}/contacts", status=403, token=tok)
    assert await _error(app, "PATCH", f"/members/{rita}", {"role": "admin"}, status=403, token=tok) == \
        "role: a member cannot change their own role; an admin can"
    await app.patch(f"/members/{rita}", {"role": "responder", "name": "Rita"}, token=tok)  # unchanged role is fine
    assert "belongs to another member" in await _error(
        app, "PATCH", f"/members/{rita}", {"email": "BOB@example.com"}, status=409, token=tok)
    assert "unknown medium" in await _error(
        app, "PATCH", f"/members/{rita}", {"preferences": {"Info": ["fax"]}}, status=400, token=tok)
    assert (await app.get(f"/members/{bob}"))["preferences"]["Critical"] == ["im", "sms"]

    # an admin still changes anyone, role included
    await app.patch(f"/members/{bob}", {"role": "observer", "preferences": {"Info": ["email"]}})
    assert (await app.get(f"/members/{bob}"))["role"] == "observer"
    # an observer's token reads but does not write, not even its own member
    assert "cannot do this" in await _error(app, "PATCH", f"/members/{bob}", {"name": "B"}, status=403, token=bob_tok)


async def test_a_contact_changed_through_the_api_is_verified_by_its_code(center, twilio, inbox):  # noqa: F811
    app = center
    rita, tok = await _member(app, "rita")
    await app.patch(f"/members/{rita}", {"phone": "+14155550100"}, token=tok)
    sent = await app.post(f"/members/{rita}/contacts/phone/code", token=tok)
    assert sent["kind"] == "phone" and sent["sent_to"] == "+14155550100" and sent["expires_at"] > 0
    [code] = texted_codes(twilio, "+14155550100")
    assert "six digits" in await _error(app, "POST", f"/members/{rita}/contacts/phone/verify", {"code": "12345"},
                                        status=400, token=tok)
    verified = await app.post(f"/members/{rita}/contacts/phone/verify", {"code": code}, token=tok)
    assert verified == {"kind": "phone", "value": "+14155550100", "verified": True, "code_out": False,
                        "code_expires_at": 0}
    assert "No code is out" in await _error(app, "POST", f"/members/{rita}/contacts/phone/verify", {"code": code},
                                            status=400, token=tok)
    # a changed number is unverified again
    await app.patch(f"/members/{rita}", {"phone": "+14155550111"}, token=tok)
    [phone] = [c for c in (await app.get(f"/members/{rita}/contacts", token=tok))["items"] if c["kind"] == "phone"]
    assert phone["verified"] is False

    # only the member proves their contact: not another member, not an admin
    bob, bob_tok = await _member(app, "bob")
    assert "only the member themself" in await _error(app, "POST", f"/members/{rita}/contacts/email/code",
                                                      status=403, token=bob_tok)
    assert "only the member themself" in await _error(app, "POST", f"/members/{rita}/contacts/email/code",
                                                      status=403, token=app.token)
    await app.post(f"/members/{rita}/contacts/email/code", token=tok)
    assert "less than a minute ago" in await _error(app, "POST", f"/members/{rita}/contacts/email/code",
                                                    status=429, token=tok)
    code = await inbox.code_to("rita@example.com")
    assert (await app.post(f"/members/{rita}/contacts/email/verify", {"code": code}, token=tok))["verified"]
    spec = await app.client.get("/api/v1/openapi.json")
    paths = (await spec.json())["paths"]
    assert {"/api/v1/members/{id}/contacts", "/api/v1/members/{id}/contacts/{kind}/code",
            "/api/v1/members/{id}/contacts/{kind}/verify"} <= paths.keys()
