"""One big push cannot starve the others: the cap on alerts per request, the rate limit counted in alerts,
and a writer that takes turns between integrations, attacked over HTTP on SQLite and PostgreSQL."""

import asyncio

import pytest

from bot.server import create_app
from tests.kit import Api


def alertmanager(n: int, prefix: str = "host") -> dict:
    """An Alertmanager notification (webhook version 4) of `n` distinct firing alerts."""
    return {"version": "4", "status": "firing", "receiver": "vigil", "groupKey": '{}:{alertname="HostDown"}',
            "alerts": [{"status": "firing", "fingerprint": f"{prefix}-{i:06d}",
                        "labels": {"alertname": "HostDown", "instance": f"{prefix}-{i}", "severity": "critical"},
                        "annotations": {"summary": f"{prefix}-{i} is down"},
                        "startsAt": "2026-11-22T17:59:00Z"} for i in range(n)]}


async def vigil(settings, aiohttp_client, **overrides) -> Api:
    return Api(await aiohttp_client(create_app(settings.model_copy(update=overrides))), settings.admin_token)


async def total_incidents(app: Api, channel_id: int) -> int:
    return (await app.get(f"/incidents?channel_id={channel_id}&limit=1"))["total"]


async def test_a_push_over_the_cap_is_refused_whole_naming_the_cap_and_the_count(app):
    cid, key = await app.channel_with_integration(fmt="prometheus")
    body = await app.push(key, alertmanager(4000), "prometheus", expect=413)
    assert body["error"]["code"] == "RequestEntityTooLarge"
    assert "4000 alerts" in body["error"]["message"] and "at most 1000" in body["error"]["message"]
    assert await total_incidents(app, cid) == 0
    # Refused before it was counted: the integration's budget is whole.
    await app.push(key, alertmanager(1000), "prometheus")
    assert await total_incidents(app, cid) == 1000


async def test_the_cap_is_a_setting(settings, aiohttp_client):
    app = await vigil(settings, aiohttp_client, max_alerts_per_request=10)
    cid, key = await app.channel_with_integration(fmt="n9e")
    events = [{"rule_name": "disk full", "severity": 2, "tags": [f"host=db-{i}"], "is_recovered": False}
              for i in range(11)]
    body = await app.push(key, events, "n9e", expect=413)
    assert "11 alerts" in body["error"]["message"] and "at most 10" in body["error"]["message"]
    await app.push(key, events[:10], "n9e")
    assert await total_incidents(app, cid) == 10


async def test_the_rate_limit_counts_alerts_not_requests(settings, aiohttp_client):
    app = await vigil(settings, aiohttp_client, ingest_rate_per_second=10_000, ingest_rate_per_minute=600)
    cid, key = await app.channel_with_integration(fmt="prometheus")
    await app.push(key, alertmanager(500, "a"), "prometheus")  # one request, 500 of the minute's 600
    resp = await app.client.post("/event/push/alert/prometheus", params={"integration_key": key},
                                 json=alertmanager(200, "b"))
    body = await resp.json()
    assert resp.status == 429 and body["error"]["code"] == "RequestTooFrequently"
    assert 1 <= int(resp.headers["Retry-After"]) <= 10  # 100 alerts short at 10 a second
    await app.push(key, alertmanager(50, "c"), "prometheus")  # what is left still fits
    assert await total_incidents(app, cid) == 550


async def every(period: float, until: asyncio.Task, action) -> list[float]:
    """Start `action` every `period` s until `until` is done; how long each took from when it was due.

    Measured from when it was due, not when it was sent: the test client shares the server's event loop,
    so a frozen server also delays the sending, and only the due time tells.
    """
    loop = asyncio.get_running_loop()

    async def timed(i: int, due: float) -> float:
        await action(i)
        return loop.time() - due

    started, due = [], loop.time()
    while not until.done():
        due += period
        await asyncio.sleep(max(0.0, due - loop.time()))
        started.append(asyncio.create_task(timed(len(started), due)))
    return list(await asyncio.gather(*started))


async def test_a_big_push_does_not_hold_up_another_integration_or_the_server(settings, aiohttp_client):
    """While one integration pushes 2,000 new alerts at once, another's single event commits within 2 s
    and /healthz answers within 1 s (before: ~8 s on SQLite, ~28 s on PostgreSQL)."""
    app = await vigil(settings, aiohttp_client, max_alerts_per_request=2000)
    storm_channel, storm_key = await app.channel_with_integration("storm", fmt="prometheus")
    quiet_channel, quiet_key = await app.channel_with_integration("quiet")

    committed_during_storm = []

    async def page(i: int) -> None:
        await app.push(quiet_key, {"event_status": "Critical", "title_rule": f"checkout down {i}",
                                   "alert_key": f"checkout-{i}"})
        committed_during_storm.append(not storm.done())

    async def healthz(_: int) -> None:
        assert (await app.client.get("/healthz")).status == 200

    storm = asyncio.create_task(app.client.post("/event/push/alert/prometheus",
                                                params={"integration_key": storm_key}, json=alertmanager(2000)))
    pages, health = await asyncio.gather(every(0.1, storm, page), every(0.1, storm, healthz))
    resp = await storm
    assert resp.status == 200, await resp.text()
    assert len((await resp.json())["data"]["alert_keys"]) == 2000
    # A 200 means every alert of it is committed.
    assert await total_incidents(app, storm_channel) == 2000
    assert len(pages) >= 3, "the storm was over before the small pushes began: this test showed nothing"
    # Served in turns, not after the storm: most pages committed while the storm was still being applied.
    assert sum(committed_during_storm) >= len(pages) // 2, committed_during_storm
    assert max(pages) < 2.0, pages
    assert max(health) < 1.0, health
    assert await total_incidents(app, quiet_channel) == len(pages)


@pytest.mark.parametrize("fmt, body", [
    ("grafana", {"alerts": [{"status": "firing", "labels": {"alertname": f"a{i}"}} for i in range(1001)]}),
    ("n9e", [{"rule_name": "r", "severity": 1, "tags": [f"i={i}"]} for i in range(1001)]),
])
async def test_every_list_format_has_the_cap(app, fmt, body):
    _, key = await app.channel_with_integration(fmt=fmt)
    body = await app.push(key, body, fmt, expect=413)
    assert "1001 alerts" in body["error"]["message"]
