"""Alibaba Cloud SendSms against a local fake that verifies signature v1.0 the way Aliyun does."""

from __future__ import annotations

import json
import socket

import pytest

from bot.adapters.errors import DeliveryError
from bot.media.aliyun_sms import AliyunSmsConfig, AliyunSmsProvider, canonical_query, rpc_signature
from bot.media.base import Contact


def config(running, **overrides) -> AliyunSmsConfig:
    [(key_id, secret)] = running.fake.keys.items()
    values = dict(
        access_key_id=key_id,
        access_key_secret=secret,
        sign_name="Vigil",
        template_code="SMS_100001",
        template_params={"title": "subject", "incident": "incident_id"},
        base_url=running.url,
        timeout=2.0,
    )
    return AliyunSmsConfig(**{**values, **overrides})


def secret_of(running) -> str:
    return next(iter(running.fake.keys.values()))


async def test_send_sms_is_signed_and_templated(aliyun, session, alice, page):
    biz_id = await AliyunSmsProvider(config(aliyun), session).send(alice, page)

    [seen] = aliyun.fake.requests  # recorded only after the fake re-verified the signature
    assert biz_id.endswith("^0")
    assert seen["PhoneNumbers"] == "8613800138000"
    assert (seen["SignName"], seen["TemplateCode"], seen["OutId"]) == ("Vigil", "SMS_100001", "inc-42")
    assert json.loads(seen["TemplateParam"]) == {"title": page.subject[:35], "incident": "inc-42"}
    assert (seen["Action"], seen["Version"], seen["SignatureMethod"]) == (
        "SendSms",
        "2017-05-25",
        "HMAC-SHA1",
    )
    assert secret_of(aliyun) not in json.dumps(seen)


async def test_each_send_uses_a_fresh_nonce(aliyun, session, alice, page):
    provider = AliyunSmsProvider(config(aliyun), session)
    await provider.send(alice, page)
    await provider.send(alice, page)

    nonces = {r["SignatureNonce"] for r in aliyun.fake.requests}
    assert len(nonces) == 2


async def test_template_values_are_cut_to_the_variable_limit(aliyun, session, alice, page):
    await AliyunSmsProvider(config(aliyun, param_max_chars=10), session).send(alice, page)

    assert json.loads(aliyun.fake.requests[0]["TemplateParam"])["title"] == page.subject[:10]


# Aliyun's documented SendSms example (SMS "signature method" topic) and the RPC DescribeRegions example.
SMS_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
RPC_DOC_PARAMS = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}


@pytest.mark.parametrize(
    ("params", "secret", "expected"),
    [
        (SMS_DOC_PARAMS, "testSecret", "zJDF+Lrzhj/ThnlvIToysFRq6t4="),
        ({**SMS_DOC_PARAMS, "Signature": "ignored"}, "testSecret", "zJDF+Lrzhj/ThnlvIToysFRq6t4="),
        (RPC_DOC_PARAMS, "testsecret", "OLeaidS1JvxuMvnyHOwuJ+uX5qY="),
    ],
)
def test_rpc_signature_matches_aliyun_documented_examples(params, secret, expected):
    assert rpc_signature("GET", params, secret) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"b": "2", "a": "1"}, "a=1&b=2"),
        ({"k": "a b*c~d"}, "k=a%20b%2Ac~d"),
        ({"k": "+/="}, "k=%2B%2F%3D"),
        ({"k": "阿"}, "k=%E9%98%BF"),
    ],
)
def test_canonical_query_uses_pop_percent_encoding(params, expected):
    assert canonical_query(params) == expected


async def test_wrong_secret_is_permanent_and_never_shown(aliyun, session, alice, page, assert_no_secret):
    wrong = "wrong-secret-Qq1Ww2Ee3"
    with pytest.raises(DeliveryError) as caught:
        await AliyunSmsProvider(config(aliyun, access_key_secret=wrong), session).send(alice, page)

    assert not caught.value.retryable
    assert "SignatureDoesNotMatch" in str(caught.value)
    assert_no_secret(caught.value, wrong, secret_of(aliyun))


async def test_unknown_access_key_is_permanent(aliyun, session, alice, page, assert_no_secret):
    with pytest.raises(DeliveryError) as caught:
        await AliyunSmsProvider(config(aliyun, access_key_id="LTAI-unknown"), session).send(alice, page)

    assert not caught.value.retryable
    assert "InvalidAccessKeyId.NotFound" in str(caught.value)
    assert_no_secret(caught.value, secret_of(aliyun))


async def test_illegal_number_in_a_200_reply_is_permanent(aliyun, session, page, assert_no_secret):
    short = Contact(member_id=9, name="Short", phone="+861380")
    with pytest.raises(DeliveryError) as caught:
        await AliyunSmsProvider(config(aliyun), session).send(short, page)

    assert not caught.value.retryable
    assert "isv.MOBILE_NUMBER_ILLEGAL" in str(caught.value)
    assert_no_secret(caught.value, secret_of(aliyun))


async def test_unapproved_template_is_permanent(aliyun, session, alice, page):
    with pytest.raises(DeliveryError) as caught:
        await AliyunSmsProvider(config(aliyun, template_code="SMS_999"), session).send(alice, page)

    assert not caught.value.retryable
    assert "isv.SMS_TEMPLATE_ILLEGAL" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable", "retry_after"),
    [
        (200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit"}, {}, True, 60.0),
        (200, {"Code": "isp.SYSTEM_ERROR", "Message": "system error"}, {}, True, None),
        (200, {"Code": "isv.AMOUNT_NOT_ENOUGH", "Message": "balance"}, {}, False, None),
        (200, {"Message": "no code"}, {}, False, None),
        (
            400,
            {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."},
            {},
            True,
            None,
        ),
        (500, {"Code": "InternalError", "Message": "internal"}, {}, True, None),
        (503, {"Code": "ServiceUnavailable", "Message": "busy"}, {"Retry-After": "12"}, True, 12.0),
        (429, {"Code": "Throttling", "Message": "slow down"}, {"Retry-After": "3"}, True, 3.0),
    ],
)
async def test_reply_codes_are_classified(
    aliyun, session, alice, page, assert_no_secret, status, body, headers, retryable, retry_after
):
    aliyun.fake.answer_next(status, body, headers)

    with pytest.raises(DeliveryError) as caught:
        await AliyunSmsProvider(config(aliyun), session).send(alice, page)

    assert (caught.value.retryable, caught.value.retry_after) == (retryable, retry_after)
    assert_no_secret(caught.value, secret_of(aliyun))


async def test_slow_aliyun_times_out_as_retryable(aliyun, session, alice, page, assert_no_secret):
    aliyun.fake.delay = 1.0

    with pytest.raises(DeliveryError) as caught:
        await AliyunSmsProvider(config(aliyun, timeout=0.1), session).send(alice, page)

    assert caught.value.retryable
    assert_no_secret(caught.value, secret_of(aliyun))


async def test_unreachable_aliyun_is_retryable(aliyun, session, alice, page):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with pytest.raises(DeliveryError) as caught:
        await AliyunSmsProvider(config(aliyun, base_url=closed), session).send(alice, page)

    assert caught.value.retryable


@pytest.mark.parametrize(("field", "value"), [("template_params", {"x": "nope"}), ("sign_name", "")])
def test_bad_config_names_the_field(field, value):
    good = dict(access_key_id="k", access_key_secret="s", sign_name="S", template_code="T")
    with pytest.raises(ValueError, match=field):
        AliyunSmsConfig(**{**good, field: value})
