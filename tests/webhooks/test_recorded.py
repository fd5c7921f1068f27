"""Recorded payloads (tests/webhooks/fixtures/, sources in its README) through the parsers and ingest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.types import EventStatus, Image
from webhooks import grafana, n9e, zabbix

RECORDED = Path(__file__).parent / "fixtures"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- Grafana ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "grafana/docs_unified_firing.json",
        "grafana/v9_unified_mixed.json",
        "grafana/v11_unified_values_image.json",
    ],
)
def test_grafana_unified_alerts_dedup_on_their_fingerprint(name, now):
    body = recorded(name)
    events = grafana.parse(body, {}, now)
    assert [e.alert_key for e in events] == [a["fingerprint"] for a in body["alerts"]]
    # the labels are the alert's own (never the group's commonLabels), plus links and values
    for event, alert in zip(events, body["alerts"], strict=True):
        assert event.labels.items() >= alert["labels"].items()
        assert event.labels["generator_url"] == alert["generatorURL"]


def test_grafana_docs_example(now):
    high_memory, high_cpu = grafana.parse(recorded("grafana/docs_unified_firing.json"), {}, now)
    assert (high_memory.event_status, high_cpu.event_status) == (EventStatus.WARNING, EventStatus.WARNING)
    assert high_memory.title == "This alert was triggered for zone us-1"  # annotation summary
    assert high_memory.description == "The system has high memory usage"
    assert high_memory.event_time == at("2021-10-12T07:51:03.157076+00:00")  # startsAt was +02:00
    assert high_memory.labels == {
        "alertname": "High memory usage",
        "team": "blue",
        "zone": "us-1",
        "generator_url": "https://play.grafana.org/alerting/1afz29v7z/edit",
        "runbook_url": "https://myrunbook.com/runbook/1234",
        "silence_url": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana"
        "&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
        "values": "B=44.23943737541908, C=1",
    }  # empty dashboardURL / panelURL give no label
    assert high_memory.images == [] and high_cpu.alert_key == "bc97ff14869b13e3"


def test_grafana_9_group_with_resolved_and_firing_alerts(now):
    events = grafana.parse(recorded("grafana/v9_unified_mixed.json"), {}, now)
    # per-alert status decides, not the group's "firing"
    assert [e.event_status for e in events] == [EventStatus.OK, EventStatus.OK, EventStatus.WARNING]
    bad, other, second = events
    assert bad.event_time == at("2022-06-17T01:08:28.652747+00:00")  # resolved: endsAt (ns cut to us)
    assert second.event_time == at("2022-06-17T01:03:00.782137+00:00")  # firing: startsAt
    assert bad.title == "This is a summary field, failure on badhost.example.com"
    assert (
        bad.labels["instance"] == "badhost.example.com"
        and other.labels["instance"] == "otherhost.example.com"
    )
    assert second.labels["values"].startswith("[ var='B0' metric='camo_build_info{")  # valueString
    assert (second.title, second.description) == ("Testing **another** failing alert", "Description **here**")


def test_grafana_11_values_links_and_image(now):
    [event] = grafana.parse(recorded("grafana/v11_unified_values_image.json"), {}, now)
    panel = "https://play.grafana.org/d/ece9fb32-7f71-4be9-bd94-2f23608ae5b9?orgId=1&viewPanel=2"
    assert (event.event_status, event.title, event.alert_key) == (
        EventStatus.WARNING,
        "High memory usage",
        "e6349a25f5ef0e9e",
    )
    assert event.labels["values"] == "A=2473545728, B=0, C=1, minute=9"
    assert event.labels["panel_url"] == panel
    assert (
        event.labels["dashboard_url"]
        == "https://play.grafana.org/d/ece9fb32-7f71-4be9-bd94-2f23608ae5b9?orgId=1"
    )
    assert event.images == [
        Image(src="https://grafana.com/assets/img/blog/mixed_styles.png", alt="panel", href=panel)
    ]
    assert event.event_time == at("2024-03-01T02:09:00+00:00")


def test_grafana_7_legacy_no_data_alert(now):
    [event] = grafana.parse(recorded("grafana/v7_legacy_no_data.json"), {}, now)
    assert (event.event_status, event.title, event.alert_key) == (
        EventStatus.WARNING,
        "No Data alert",
        "grafana:1:3",
    )
    assert event.description == "The panel has no data."
    assert event.labels == {
        "rule_url": "http://localhost:3000/d/GG2qhR3Wz/alerttest?fullscreen&edit&tab=alert&panelId=6&orgId=1"
    }
    assert event.event_time == now  # legacy notifications carry no time


# --- Nightingale -----------------------------------------------------------------------------------


def test_n9e_v8_callback_event(now):
    [event] = n9e.parse(recorded("n9e/v8_callback_event.json"), {}, now)
    assert event.event_status is EventStatus.WARNING  # severity 2
    assert (event.title, event.alert_key) == ("测试事件回调", "54f5543591c6dc0e30139cae196a1eee")
    assert event.description == "Trigger value: 33.06867"
    assert event.event_time == datetime.fromtimestamp(1749180264, UTC)  # trigger_time
    assert event.labels == {
        "__name__": "cpu_usage_active",
        "cpu": "cpu-total",
        "ident": "ulric-flashcat.local",
        "rulename": "测试事件回调",
        "rule_id": "54",
        "busi_group": "DBA-Postgres",
        "cluster": "prom",
    }  # empty runbook_url and annotations add nothing; target_ident is already the ident tag


def test_n9e_flashduty_batch_and_recovery_meet_on_the_hash(now):
    event = recorded("n9e/v8_callback_event.json")
    recovery = {**event, "is_recovered": True, "last_eval_time": 1749180324}
    firing, recovered = n9e.parse([event, recovery], {}, now)  # SendFlashDuty posts a JSON array
    assert (firing.event_status, recovered.event_status) == (EventStatus.WARNING, EventStatus.OK)
    assert firing.alert_key == recovered.alert_key == event["hash"]
    assert recovered.event_time == datetime.fromtimestamp(1749180324, UTC)  # last_eval_time


# --- Zabbix ----------------------------------------------------------------------------------------

# What Zabbix puts in for each macro of Flashduty's block, in the formats Zabbix documents.
MACROS = {
    "{TRIGGER.SEVERITY}": "High",
    "{TRIGGER.NAME}": "Linux: High CPU utilization (over 90% for 5m)",
    "{EVENT.ID}": "48213",
    "{EVENT.TAGS}": "class:os, component:cpu, scope:performance, scope:capacity, target:linux, maintained",
    "{EVENT.ACK.STATUS}": "No",
    "{EVENT.VALUE}": "1",
    "{TRIGGER.ID}": "23817",
    "{TRIGGER.DESCRIPTION}": "CPU utilization is too high. The system might be slow to respond.",
    "{TRIGGER.EXPRESSION}": "min(/Linux by Zabbix agent/system.cpu.util,5m)>90",
    "{TRIGGER.HOSTGROUP.NAME}": "Linux servers, Production",
    "{HOST.IP}": "10.0.3.21",
    "{HOST.NAME}": "web-01.prod",
    "{ITEM.NAME}": "CPU utilization",
    "{ITEM.VALUE}": "96.4 %",
}
BLOCK = (RECORDED / "zabbix/flashduty_required_block.txt").read_text().strip()


def flashduty_fields(**macros: str) -> dict[str, str]:
    """The documented block's fields, each macro expanded as Zabbix would."""
    inner = BLOCK.removeprefix("-----Flashduty Required Starts-----").removesuffix(
        "-----Flashduty Required Ends-----"
    )
    values = {**MACROS, **macros}
    return {name: values[macro] for name, _, macro in (pair.partition("=") for pair in inner.split("||"))}


def test_zabbix_block_names_the_documented_fields():
    assert list(flashduty_fields()) == [
        "event_severity", "event_name", "event_id", "event_tags", "event_ack", "event_value", "trigger_id",
        "trigger_desc", "trigger_expr", "host_group", "host_ip", "host_name", "item_name", "item_value",
    ]  # fmt: skip


def zabbix_bodies(**macros: str) -> list[dict[str, str]]:
    """The same event as flat fields (a webhook media type) and as the block inside a message (3.x/4.x)."""
    message = "Problem started at 01:50:00 on 2026.11.23\n" + BLOCK
    for macro, value in {**MACROS, **macros}.items():
        message = message.replace(macro, value)
    return [
        {**flashduty_fields(**macros), "zabbix_url": "https://zabbix.example.com/"},
        {"subject": "Problem: High CPU", "message": message, "zabbix_url": "https://zabbix.example.com/"},
    ]


@pytest.mark.parametrize("shape", ["fields", "message"])
def test_zabbix_flashduty_problem(shape, now):
    body = zabbix_bodies()[["fields", "message"].index(shape)]
    [event] = zabbix.parse(body, {}, now)
    assert event.event_status is EventStatus.CRITICAL  # High
    assert event.title == "Linux: High CPU utilization (over 90% for 5m)"
    assert event.alert_key == "zabbix:23817:web-01.prod"
    assert (
        event.description
        == "CPU utilization is too high. The system might be slow to respond.\nLast value: 96.4 %"
    )
    assert event.labels == {
        "class": "os",
        "component": "cpu",
        "scope": "performance,capacity",
        "target": "linux",
        "maintained": "true",
        "host": "web-01.prod",
        "host_name": "web-01.prod",
        "host_ip": "10.0.3.21",
        "host_group": "Linux servers, Production",
        "item_name": "CPU utilization",
        "trigger_id": "23817",
        "event_id": "48213",
        "severity": "High",
        "event_url": "https://zabbix.example.com/tr_events.php?triggerid=23817&eventid=48213",
    }
    assert event.event_time == now  # the block carries no time


@pytest.mark.parametrize("shape", [0, 1])
def test_zabbix_flashduty_update_and_recovery_stay_on_one_alert(shape, now):
    problem, ack, recovery = (
        zabbix.parse(zabbix_bodies(**macros)[shape], {}, now)[0]
        for macros in ({}, {"{EVENT.ACK.STATUS}": "Yes"}, {"{EVENT.VALUE}": "0"})
    )
    assert [e.event_status for e in (problem, ack, recovery)] == [
        EventStatus.CRITICAL,
        EventStatus.CRITICAL,
        EventStatus.OK,
    ]
    assert problem.alert_key == ack.alert_key == recovery.alert_key


# --- through the ingest endpoints ------------------------------------------------------------------


async def test_recorded_payloads_through_ingest(app):
    for fmt, bodies in [
        (
            "grafana",
            [recorded("grafana/docs_unified_firing.json"), recorded("grafana/v11_unified_values_image.json")],
        ),
        ("n9e", [[recorded("n9e/v8_callback_event.json")], recorded("n9e/v8_callback_event.json")]),
        ("zabbix", zabbix_bodies()),
    ]:
        _, key = await app.channel_with_integration(name=fmt, fmt=fmt)
        for body in bodies:
            await app.push(key, body, fmt)
    incidents = (await app.get("/incidents"))["items"]
    alerts = {}
    for inc in incidents:
        for alert in (await app.get(f"/incidents/{inc['incident_id']}"))["alerts"]:
            alerts[alert["alert_key"]] = alert
    # the n9e event and the two Zabbix shapes were each sent twice: one alert, two events
    assert {k: (a["alert_severity"], a["event_cnt"]) for k, a in alerts.items()} == {
        "c6eadffa33fcdf37": ("Warning", 1),
        "bc97ff14869b13e3": ("Warning", 1),
        "e6349a25f5ef0e9e": ("Warning", 1),
        "54f5543591c6dc0e30139cae196a1eee": ("Warning", 2),
        "zabbix:23817:web-01.prod": ("Critical", 2),
    }
    assert alerts["54f5543591c6dc0e30139cae196a1eee"]["title"] == "测试事件回调"
