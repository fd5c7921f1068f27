"""One contract for every chat adapter in ADAPTERS: configuration errors name the field and never the
secret; unsigned, forged and garbage callbacks are refused; garbage never crashes parse_action."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from bot.adapters import ADAPTERS
from bot.adapters.base import InboundRequest
from core.types import Platform

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "contract-secret-Zx81-do-not-leak"

# Minimal valid configuration per platform (settings, secrets); values are fakes.
CONFIG: dict[Platform, tuple[dict, dict]] = {
    Platform.SLACK: ({"base_url": "http://127.0.0.1:9"}, {"bot_token": "xoxb-" + SECRET, "signing_secret": SECRET}),
    Platform.FEISHU: ({"base_url": "http://127.0.0.1:9"},
                      {"app_id": "cli_a1", "app_secret": SECRET, "verification_token": SECRET, "encrypt_key": SECRET}),
    Platform.DINGTALK: ({"card_template_id": "tpl.schema", "base_url": "http://127.0.0.1:9",
                         "oapi_base_url": "http://127.0.0.1:9", "stream_endpoint": "http://127.0.0.1:9"},
                        {"client_id": "ding1", "client_secret": SECRET}),
    Platform.WECOM: ({"base_url": "http://127.0.0.1:9", "agent_id": "1000002"},
                     {"corp_id": "ww1", "corp_secret": SECRET, "token": "tok" + SECRET[:10],
                      "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}),
    Platform.TEAMS: ({"tenant_id": "00000000-0000-0000-0000-000000000001", "service_url": "http://127.0.0.1:9/",
                      "token_url": "http://127.0.0.1:9/token", "openid_metadata_url": "http://127.0.0.1:9/oid",
                      "graph_base_url": "http://127.0.0.1:9"},
                     {"app_id": "00000000-0000-0000-0000-000000000002", "app_password": SECRET}),
}

PLATFORMS = sorted(ADAPTERS, key=lambda p: p.value)

GARBAGE = [
    InboundRequest(body=b"", headers={}),
    InboundRequest(body=b"not json at all", headers={"Content-Type": "application/json"}),
    InboundRequest(body=b'{"type": "block_actions", "payload": "x"}', headers={"Content-Type": "application/json"}),
    InboundRequest(body=b"payload=%7B%22type%22%3A%22block_actions%22%7D",
                   headers={"Content-Type": "application/x-www-form-urlencoded"}),
    InboundRequest(body=b"<xml><Encrypt>AAAA</Encrypt></xml>", headers={"Content-Type": "text/xml"},
                   query={"msg_signature": "0" * 40, "timestamp": str(int(NOW.timestamp())), "nonce": "1"}),
    InboundRequest(body=b'{"encrypt": "Zm9v"}', headers={"X-Lark-Signature": "0" * 64,
                                                        "X-Lark-Request-Timestamp": str(int(NOW.timestamp())),
                                                        "X-Lark-Request-Nonce": "n"}),
    InboundRequest(body=b'{"type": "invoke"}', headers={"Authorization": "Bearer abc.def.ghi"}),
    InboundRequest(body=b"\xff\xfe\x00garbage", headers={"X-Slack-Signature": "v0=00",
                                                         "X-Slack-Request-Timestamp": str(int(NOW.timestamp()))}),
]


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


def test_every_platform_with_a_card_renderer_has_an_adapter():
    from bot.cards import RENDERERS

    assert set(RENDERERS) <= set(ADAPTERS) | {Platform.TELEGRAM}, set(RENDERERS) - set(ADAPTERS)


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
async def test_builds_from_app_config_and_declares_itself(platform, http):
    settings, secrets = CONFIG[platform]
    adapter = ADAPTERS[platform].from_app(dict(settings), dict(secrets), http=http)
    assert adapter.platform is platform
    assert adapter.docs_url.startswith("https://") if hasattr(adapter, "docs_url") else True


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
async def test_missing_secret_is_named_without_leaking(platform, http):
    settings, secrets = CONFIG[platform]
    for name in secrets:
        broken = {k: v for k, v in secrets.items() if k != name}
        try:
            ADAPTERS[platform].from_app(dict(settings), broken, http=http)
        except ValueError as exc:
            assert SECRET not in str(exc)
            continue
        # an optional secret (e.g. Feishu's encrypt_key) may be left out


@pytest.mark.parametrize("platform", PLATFORMS, ids=lambda p: p.value)
@pytest.mark.parametrize("req", GARBAGE)
async def test_unsigned_forged_and_garbage_callbacks_are_refused(platform, req, http):
    settings, secrets = CONFIG[platform]
    adapter = ADAPTERS[platform].from_app(dict(settings), dict(secrets), http=http)
    assert adapter.verify(req, NOW) is False
    try:
        event = adapter.parse_action(req)
    except Exception as exc:  # parse_action may refuse, but only with a clean error
        assert SECRET not in str(exc)
    else:
        assert event is None or event.platform is platform
