"""Access logs carry no integration keys or tokens: query values are redacted, names kept."""

from __future__ import annotations

import logging

import pytest

from bot.access_log import RedactedAccessLogger, redact
from tests.kit import Api, until


@pytest.mark.parametrize("target, logged", [
    ("/healthz", "/healthz"),
    ("/event/push/alert/standard?integration_key=abc123", "/event/push/alert/standard?integration_key=***"),
    ("/cb?token=t0k&channel_id=5", "/cb?token=***&channel_id=***"),
    ("/cb?secret", "/cb?***"),  # a bare value is a value
    ("/cb?a=&b=x=y", "/cb?a=***&b=***"),
    ("/cb?", "/cb?"),
    ("/cb?&&k=v", "/cb?&&k=***"),
    ("https://vigil.example/page?token=t0k#frag", "https://vigil.example/page?token=***"),
    ("-", "-"),
])
def test_redact(target, logged):
    assert redact(target) == logged


async def test_a_push_and_a_refused_call_leave_no_secret_in_the_access_log(settings, aiohttp_server, aiohttp_client,
                                                                          caplog):
    from bot.server import create_app

    caplog.set_level(logging.INFO, logger="aiohttp.access")  # aiohttp asks once per connection
    server = await aiohttp_server(create_app(settings), access_log_class=RedactedAccessLogger)
    app = Api(await aiohttp_client(server), settings.admin_token)
    _, key = await app.channel_with_integration()
    caplog.clear()
    await app.push(key, {"event_status": "Critical", "title_rule": "disk full", "alert_key": "k"},
                   headers={"Referer": f"https://grafana.example/alerting?integration_key={key}"})
    await app.client.get("/api/v1/incidents", params={"token": settings.admin_token})

    def lines() -> list[str]:  # a line is written once the response has gone out, so the client may be first
        return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]

    await until(lambda: len(lines()) == 2)
    assert key not in caplog.text and settings.admin_token not in caplog.text
    assert '"POST /event/push/alert/standard?integration_key=*** HTTP/1.1" 200' in lines()[0]
    assert '"https://grafana.example/alerting?integration_key=***"' in lines()[0]
    assert '"GET /api/v1/incidents?token=*** HTTP/1.1" 401' in lines()[1]
