"""Twilio SMS and voice against a local fake of Twilio's REST API, and the keypad-callback helpers."""

from __future__ import annotations

import socket
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree as ET

import pytest

from bot.adapters.errors import DeliveryError
from bot.media.base import Contact, Message
from bot.media.twilio import (
    TwilioConfig,
    TwilioSmsProvider,
    TwilioVoiceProvider,
    parse_keypad,
    twilio_signature,
    twiml_for,
    verify_twilio_signature,
)

CALLBACK = "https://vigil.example.com/adapters/twilio/voice"
PROVIDERS = [TwilioSmsProvider, TwilioVoiceProvider]


def config(running, **overrides) -> TwilioConfig:
    fake = running.fake
    values = dict(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_number=next(iter(fake.numbers)),
        base_url=running.url,
        callback_url=CALLBACK,
        timeout=2.0,
    )
    return TwilioConfig(**{**values, **overrides})


async def test_sms_reaches_twilio_with_numbers_and_body(twilio, session, alice, page):
    sid = await TwilioSmsProvider(config(twilio), session).send(alice, page)

    [seen] = twilio.fake.requests
    assert sid.startswith("SM")
    assert (seen.resource, seen.account_sid) == ("Messages", twilio.fake.account_sid)
    assert seen.form == {"To": alice.phone, "From": "+15005550006", "Body": page.text}


async def test_voice_call_carries_a_keypad_menu_pointing_at_the_callback(twilio, session, alice, page):
    sid = await TwilioVoiceProvider(config(twilio), session).send(alice, page)

    [seen] = twilio.fake.requests
    assert sid.startswith("CA")
    assert (seen.resource, seen.form["To"], seen.form["From"]) == ("Calls", alice.phone, "+15005550006")
    gather = ET.fromstring(seen.form["Twiml"]).find("Gather")
    assert gather is not None and gather.get("numDigits") == "1" and gather.get("method") == "POST"
    action = urlsplit(gather.get("action", ""))
    assert f"{action.scheme}://{action.netloc}{action.path}" == CALLBACK
    assert dict(parse_qsl(action.query)) == {"token": page.action_token}
    said = gather.findtext("Say") or ""
    assert page.subject in said and "Press 1 to acknowledge, 2 to escalate" in said


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (500, {}, True, None),
        (503, {"Retry-After": "7"}, True, 7.0),
        (429, {"Retry-After": "30"}, True, 30.0),
        (400, {}, False, None),
        (404, {}, False, None),
    ],
)
async def test_scripted_status_is_classified(
    twilio, session, alice, page, assert_no_secret, provider, status, headers, retryable, retry_after
):
    twilio.fake.fail_next(status, 20000 + status, f"scripted {status}", headers)

    with pytest.raises(DeliveryError) as caught:
        await provider(config(twilio), session).send(alice, page)

    assert (caught.value.retryable, caught.value.retry_after) == (retryable, retry_after)
    assert f"HTTP {status}" in str(caught.value)
    assert_no_secret(caught.value, twilio.fake.auth_token)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_wrong_auth_token_is_permanent_and_not_echoed(
    twilio, session, alice, page, assert_no_secret, provider
):
    wrong = "not-the-token-5d1f0e"
    with pytest.raises(DeliveryError) as caught:
        await provider(config(twilio, auth_token=wrong), session).send(alice, page)

    assert not caught.value.retryable
    assert "20003" in str(caught.value)
    assert_no_secret(caught.value, wrong, twilio.fake.auth_token)


async def test_unowned_from_number_is_permanent(twilio, session, alice, page):
    with pytest.raises(DeliveryError) as caught:
        await TwilioSmsProvider(config(twilio, from_number="+15005550001"), session).send(alice, page)

    assert not caught.value.retryable
    assert "21606" in str(caught.value)


async def test_member_without_phone_is_permanent(twilio, session, page):
    with pytest.raises(DeliveryError) as caught:
        await TwilioSmsProvider(config(twilio), session).send(Contact(member_id=3, name="Bob"), page)

    assert not caught.value.retryable
    assert twilio.fake.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_slow_twilio_times_out_as_retryable(twilio, session, alice, page, assert_no_secret, provider):
    twilio.fake.delay = 1.0

    with pytest.raises(DeliveryError) as caught:
        await provider(config(twilio, timeout=0.1), session).send(alice, page)

    assert caught.value.retryable
    assert "timed out" in str(caught.value)
    assert_no_secret(caught.value, twilio.fake.auth_token)


async def test_unreachable_twilio_is_retryable(twilio, session, alice, page, assert_no_secret):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with pytest.raises(DeliveryError) as caught:
        await TwilioSmsProvider(config(twilio, base_url=closed), session).send(alice, page)

    assert caught.value.retryable
    assert_no_secret(caught.value, twilio.fake.auth_token)


def test_provider_requires_a_session(twilio):
    with pytest.raises(ValueError, match="ClientSession"):
        TwilioSmsProvider(config(twilio))


@pytest.mark.parametrize(
    ("field", "value"),
    [("account_sid", "XX123"), ("from_number", "5550006"), ("timeout", 0)],
)
def test_bad_config_names_the_field(field, value):
    good = dict(account_sid="AC123", auth_token="t", from_number="+15005550006")
    with pytest.raises(ValueError, match=field):
        TwilioConfig(**{**good, field: value})


# Twilio's documented validation example (twilio-node api-snippets, signature_validation).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}
DOC_SIGNATURE = "GvWf1cFY/Q7PnoempGyD5oXAezc="


@pytest.mark.parametrize(
    ("token", "url", "params", "signature", "valid"),
    [
        ("12345", DOC_URL, DOC_PARAMS, DOC_SIGNATURE, True),
        ("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", DOC_PARAMS, DOC_SIGNATURE, True),
        ("12345", DOC_URL, list(DOC_PARAMS.items())[::-1], DOC_SIGNATURE, True),
        ("12345", DOC_URL, {**DOC_PARAMS, "Digits": "1"}, DOC_SIGNATURE, False),
        ("12345", "https://mycompany.com/myapp.php?foo=1&bar=3", DOC_PARAMS, DOC_SIGNATURE, False),
        ("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE, False),
        ("12345", DOC_URL, DOC_PARAMS, "", False),
        ("", DOC_URL, DOC_PARAMS, DOC_SIGNATURE, False),
    ],
)
def test_verify_twilio_signature(token, url, params, signature, valid):
    assert verify_twilio_signature(token, url, params, signature) is valid


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"Digits": "1", "token": "t1"}, ("ack", "t1")),
        ({"Digits": "2", "token": "t1"}, ("escalate", "t1")),
        ({"Digits": "3", "token": "t1"}, None),
        ({"Digits": "", "token": "t1"}, None),
        ({"Digits": "1"}, None),
        ({"token": "t1"}, None),
    ],
)
def test_parse_keypad(params, expected):
    assert parse_keypad(params) == expected


async def test_keypad_callback_round_trip(twilio, session, alice, page):
    """The call's TwiML action, signed by Twilio on a press of 2, verifies and parses to escalate."""
    await TwilioVoiceProvider(config(twilio), session).send(alice, page)
    action = ET.fromstring(twilio.fake.requests[0].form["Twiml"]).find("Gather").get("action")
    form = {"CallSid": "CA" + "1" * 32, "Digits": "2", "From": alice.phone, "To": "+15005550006"}
    signature = twilio_signature(twilio.fake.auth_token, action, form)

    assert verify_twilio_signature(twilio.fake.auth_token, action, form, signature)
    assert not verify_twilio_signature(twilio.fake.auth_token, action, {**form, "Digits": "1"}, signature)
    assert parse_keypad({**dict(parse_qsl(urlsplit(action).query)), **form}) == (
        "escalate",
        page.action_token,
    )


@pytest.mark.parametrize(
    ("subject", "callback", "token", "gathers"),
    [
        ("Disk <90%> & rising", CALLBACK, "t", True),
        ("No callback configured", None, "t", False),
        ("No token on the message", CALLBACK, None, False),
    ],
)
def test_twiml_escapes_and_gathers_only_when_it_can_call_back(subject, callback, token, gathers):
    twiml = twiml_for(Message(subject=subject, text="x", incident_id="i", action_token=token), callback)

    root = ET.fromstring(twiml)
    assert (root.find("Gather") is not None) is gathers
    assert subject in "".join(root.itertext())


async def test_sms_body_is_cut_to_twilio_limit(twilio, session, alice):
    long = Message(subject="s", text="x" * 5000, incident_id="i")
    await TwilioSmsProvider(config(twilio), session).send(alice, long)

    assert len(twilio.fake.requests[0].form["Body"]) == 1600
