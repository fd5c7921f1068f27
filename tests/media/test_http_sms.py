"""The templated HTTP SMS gateway against a local fake gateway, and the shared HTTP helpers."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from bot.adapters._http import is_retryable_status, parse_retry_after, redact
from bot.adapters.errors import DeliveryError
from bot.media.base import Contact, Medium, Message
from bot.media.http_sms import HttpSmsConfig, HttpSmsProvider, json_path
from bot.media.registry import PROVIDERS, build_provider

JSON_BODY = '{"to": {{ to.phone|tojson }}, "text": {{ message.text|tojson }}, "ref": {{ message.incident_id|tojson }}}'


def config(running, **overrides) -> HttpSmsConfig:
    values = dict(
        method="POST",
        url=running.url + "/v1/sms?to={{ to.phone }}&ref={{ message.incident_id }}",
        body=JSON_BODY,
        headers={"X-Api-Key": "{{ secret.api_key }}", "Content-Type": "application/json"},
        secrets={"api_key": running.fake.api_key},
        success_path="status",
        success_value="ok",
        message_id_path="data.id",
        timeout=2.0,
    )
    return HttpSmsConfig(**{**values, **overrides})


async def test_post_renders_url_headers_and_json_body(gateway, session, alice, page):
    message_id = await HttpSmsProvider(config(gateway), session).send(alice, page)

    [seen] = gateway.fake.requests
    assert message_id.startswith("gw-")
    assert (seen.method, seen.path) == ("POST", "/v1/sms")
    assert seen.query == {"to": alice.phone, "ref": page.incident_id}
    assert seen.headers["X-Api-Key"] == gateway.fake.api_key
    assert json.loads(seen.body) == {"to": alice.phone, "text": page.text, "ref": page.incident_id}


async def test_get_percent_encodes_every_url_value(gateway, session, alice):
    tricky = Message(subject="s", text="CPU > 95% & load=high #1 + more", incident_id="a/b?c")
    cfg = config(
        gateway, method="GET", body=None, url=gateway.url + "/send?to={{ to.phone }}&text={{ message.text }}"
    )

    await HttpSmsProvider(cfg, session).send(alice, tricky)

    [seen] = gateway.fake.requests
    assert (seen.method, seen.body) == ("GET", b"")
    assert seen.query == {"to": alice.phone, "text": tricky.text}


async def test_form_body_with_urlencode_filter(gateway, session, alice, page):
    cfg = config(
        gateway,
        body="to={{ to.phone|urlencode }}&msg={{ message.text|urlencode }}",
        headers={"X-Api-Key": "{{ secret.api_key }}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    await HttpSmsProvider(cfg, session).send(alice, page)

    assert parse_qs(gateway.fake.requests[0].body.decode()) == {"to": [alice.phone], "msg": [page.text]}


async def test_without_message_id_path_returns_empty_id(gateway, session, alice, page):
    assert await HttpSmsProvider(config(gateway, message_id_path=None), session).send(alice, page) == ""


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable", "retry_after"),
    [
        (500, "oops", {}, True, None),
        (502, "", {"Retry-After": "5"}, True, 5.0),
        (429, '{"status":"slow down"}', {"Retry-After": "20"}, True, 20.0),
        (408, "", {}, True, None),
        (400, '{"status":"error","error":"bad number"}', {}, False, None),
        (200, '{"status":"error","error":"number blocked"}', {}, False, None),
        (200, '{"data":{}}', {}, False, None),
        (200, "not json", {}, False, None),
    ],
)
async def test_replies_are_classified(
    gateway, session, alice, page, assert_no_secret, status, body, headers, retryable, retry_after
):
    gateway.fake.answer_next(status, body, headers)

    with pytest.raises(DeliveryError) as caught:
        await HttpSmsProvider(config(gateway), session).send(alice, page)

    assert (caught.value.retryable, caught.value.retry_after) == (retryable, retry_after)
    assert_no_secret(caught.value, gateway.fake.api_key)


async def test_retry_after_as_http_date(gateway, session, alice, page):
    gateway.fake.answer_next(503, "", {"Retry-After": "Wed, 21 Oct 2037 07:28:00 GMT"})

    with pytest.raises(DeliveryError) as caught:
        await HttpSmsProvider(config(gateway), session).send(alice, page)

    assert caught.value.retryable and caught.value.retry_after is not None and caught.value.retry_after > 3600


async def test_secret_echoed_by_the_gateway_is_redacted(gateway, session, alice, page, assert_no_secret):
    wrong = "k3y/with+odd=chars&more"
    cfg = config(
        gateway,
        url=gateway.url + "/v1/sms?apikey={{ secret.api_key }}&to={{ to.phone }}",
        secrets={"api_key": wrong},
    )
    with pytest.raises(DeliveryError) as caught:
        await HttpSmsProvider(cfg, session).send(alice, page)

    assert not caught.value.retryable
    assert "HTTP 401" in str(caught.value) and "***" in str(caught.value)
    assert_no_secret(caught.value, wrong, gateway.fake.api_key)


async def test_slow_gateway_times_out_as_retryable(gateway, session, alice, page, assert_no_secret):
    gateway.fake.delay = 1.0

    with pytest.raises(DeliveryError) as caught:
        await HttpSmsProvider(config(gateway, timeout=0.1), session).send(alice, page)

    assert caught.value.retryable
    assert_no_secret(caught.value, gateway.fake.api_key)


async def test_unreachable_gateway_is_retryable(gateway, session, alice, page, assert_no_secret):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    cfg = config(gateway, url=closed + "/send?key={{ secret.api_key }}")

    with pytest.raises(DeliveryError) as caught:
        await HttpSmsProvider(cfg, session).send(alice, page)

    assert caught.value.retryable
    assert_no_secret(caught.value, gateway.fake.api_key)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ message.no_such_field }}", "UndefinedError"),
        ("{{ message.__class__.__mro__ }}", "unsafe"),
        ("{{ to.phone.__class__.__subclasses__() }}", "unsafe"),
    ],
)
async def test_bad_or_unsafe_template_is_permanent(gateway, session, alice, page, template, problem):
    cfg = config(gateway, body=template)
    with pytest.raises(DeliveryError) as caught:
        await HttpSmsProvider(cfg, session).send(alice, page)

    assert not caught.value.retryable
    assert problem in str(caught.value)
    assert gateway.fake.requests == []


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("url", "http://x/{{ to.phone", "http_sms.url"),
        ("url", "ftp://gw.example.com/send?to={{ to.phone }}", "http_sms.url: must be an http or https URL"),
        ("url", "{{ secret.gateway }}/send", "http_sms.url: must be an http or https URL"),
        ("body", "{% if %}", "http_sms.body"),
        ("headers", {"X-Api-Key": "{{ secret.api_key"}, "http_sms.headers.X-Api-Key"),
        ("method", "DELETE", "method"),
    ],
)
def test_bad_config_names_the_field(field, value, named):
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        HttpSmsConfig(**{"url": "http://x/", field: value})


def test_member_without_phone_renders_permanent_error(gateway, session, page):
    provider = HttpSmsProvider(config(gateway), session)
    with pytest.raises(DeliveryError) as caught:
        provider.render(Contact(member_id=1, name="No Phone"), page)
    assert not caught.value.retryable


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:59:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("token abc123 here", ["abc123"], "token *** here"),
        ("q=a%2Fb%2Bc", ["a/b+c"], "q=***"),
        ("q=a%2Fb+c", ["a/b c"], "q=***"),
        ("nothing", ["", "zzz"], "nothing"),
        ("abcdef", ["abc", "abcdef"], "***"),
    ],
)
def test_redact(text, secrets, expected):
    assert redact(text, secrets) == expected


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_is_retryable_status(status, retryable):
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("path", "expected"),
    [("status", "ok"), ("data.id", "m1"), ("data.items.1", "b"), ("data.items.5", None), ("missing", None)],
)
def test_json_path(path, expected):
    document = {"status": "ok", "data": {"id": "m1", "items": ["a", "b"]}}
    assert json_path(document, path) == expected


# The registry and factory in bot/media/registry.py, exercised with each provider's minimal config.
MINIMAL = {
    "email": {"host": "smtp.example.com", "from_addr": "vigil@example.com"},
    "twilio_sms": {"account_sid": "AC1", "auth_token": "t", "from_number": "+15005550006"},
    "twilio_voice": {"account_sid": "AC1", "auth_token": "t", "from_number": "+15005550006"},
    "aliyun_sms": {"access_key_id": "k", "access_key_secret": "s", "sign_name": "S", "template_code": "T"},
    "http_sms": {"url": "http://gw.example/send?to={{ to.phone }}"},
}


@pytest.mark.parametrize(
    ("name", "medium"),
    [
        ("email", Medium.EMAIL),
        ("twilio_sms", Medium.SMS),
        ("twilio_voice", Medium.VOICE),
        ("aliyun_sms", Medium.SMS),
        ("http_sms", Medium.SMS),
    ],
)
async def test_build_provider_from_registry(session, name, medium):
    provider = build_provider(name, MINIMAL[name], session)

    assert (provider.name, provider.medium) == (name, medium)
    assert type(provider) is PROVIDERS[name]


def test_registry_lists_every_provider_once():
    assert sorted(PROVIDERS) == sorted(MINIMAL)


@pytest.mark.parametrize(
    ("name", "config", "problem"),
    [
        ("pigeon", {}, "unknown media provider 'pigeon'"),
        ("twilio_sms", {"account_sid": "AC1", "auth_token": "t"}, "from_number"),
        ("email", {"host": "h", "from_addr": "v@x", "bogus": 1}, "bogus"),
        ("twilio_sms", {"account_sid": "AC1", "auth_token": "t", "from_number": "+15005550006",
                        "base_url": "gopher://127.0.0.1:6379/"}, "(?s)base_url.*must be an http or https URL"),
        ("aliyun_sms", {"access_key_id": "k", "access_key_secret": "s", "sign_name": "V", "template_code": "T",
                        "base_url": "file:///etc/passwd"}, "(?s)base_url.*must be an http or https URL"),
    ],
)
def test_build_provider_rejects_bad_input(name, config, problem):
    with pytest.raises(ValueError, match=problem):
        build_provider(name, config)


@pytest.mark.parametrize("phone", ["13800138000", "+0123", "+1 415 555 0100", ""])
def test_contact_phone_must_be_e164(phone):
    with pytest.raises(ValueError, match="contact.phone"):
        Contact(member_id=1, name="x", phone=phone)


async def test_every_attempt_of_a_delivery_carries_its_idempotency_key(gateway, session):
    """A send interrupted by a crash is sent again; a gateway that honours the key delivers it once."""
    from bot.media.senders import _sender
    from core.paging import Page, Recipient

    cfg = config(gateway, headers={**config(gateway).headers, "Idempotency-Key": "{{ message.idempotency_key }}"})
    send = _sender(HttpSmsProvider(cfg, session), "k")
    ann = Recipient(7, "ann", None, "+14155550100", "UTC")
    for delivery_id in (31, 31, 32):
        await send(ann, Page(5, delivery_id, "escalation", "Critical", None, "disk full", None, "http://v/incidents/5"))
    keys = [r.headers["Idempotency-Key"] for r in gateway.fake.requests]
    assert keys == ["vigil-delivery-31", "vigil-delivery-31", "vigil-delivery-32"]
