"""Vigil's Zabbix media type: severities, recovery pairing, tags, macros, times."""

from datetime import UTC, datetime

import pytest

from core.types import EventStatus
from tests.webhooks.conftest import fixture
from webhooks.errors import InvalidParameter
from webhooks.zabbix import parse


def problem(**fields):
    body = {
        "event_id": "1",
        "event_name": "CPU high",
        "event_severity": "High",
        "event_value": "1",
        "trigger_id": "23817",
        "host_host": "web-01",
        **fields,
    }
    return {k: v for k, v in body.items() if v is not None}


def one(body, now):
    [event] = parse(body, {}, now)
    return event


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"event_severity": "Disaster"}, EventStatus.CRITICAL),
        ({"event_severity": "High"}, EventStatus.CRITICAL),
        ({"event_severity": "Average"}, EventStatus.WARNING),
        ({"event_severity": "Warning"}, EventStatus.WARNING),
        ({"event_severity": "Information"}, EventStatus.INFO),
        ({"event_severity": "Not classified"}, EventStatus.INFO),
        ({"event_severity": "not classified"}, EventStatus.INFO),
        ({"event_severity": None, "event_nseverity": "5"}, EventStatus.CRITICAL),
        ({"event_severity": None, "event_nseverity": 3}, EventStatus.WARNING),
        ({"event_severity": None, "event_nseverity": "0"}, EventStatus.INFO),
        ({"event_severity": "{EVENT.SEVERITY}", "event_nseverity": "2"}, EventStatus.WARNING),
        ({"event_value": "0"}, EventStatus.OK),
        ({"event_value": 0, "event_severity": None}, EventStatus.OK),
        ({"event_value": 1, "event_update_status": "1"}, EventStatus.CRITICAL),
    ],
)
def test_status(fields, expected, now):
    assert one(problem(**fields), now).event_status is expected


def test_problem_and_recovery_share_the_alert_key(now):
    a, b = (one(fixture("zabbix", n), now) for n in ("problem", "recovery"))
    assert a.alert_key == b.alert_key == "zabbix:23817:web-01.prod"
    assert (a.event_status, b.event_status) == (EventStatus.CRITICAL, EventStatus.OK)


@pytest.mark.parametrize(
    "fields, key",
    [
        ({}, "zabbix:23817:web-01"),
        ({"host_host": None, "host_name": "Web 01"}, "zabbix:23817:Web 01"),
        ({"host_host": "{HOST.HOST}"}, "zabbix:23817:"),
    ],
)
def test_alert_key(fields, key, now):
    assert one(problem(**fields), now).alert_key == key


@pytest.mark.parametrize(
    "tags, expected",
    [
        ('[{"tag":"scope","value":"cpu"},{"tag":"scope","value":"perf"}]', {"scope": "cpu,perf"}),
        (
            [{"tag": "app.name", "value": "shop"}, {"tag": "prod", "value": ""}],
            {"app_name": "shop", "prod": "true"},
        ),
        ({"team": "core"}, {"team": "core"}),
        ("", {}),
        ("{EVENT.TAGSJSON}", {}),
        ([{"tag": "", "value": "x"}], {}),
        ([{"tag": "服务", "value": "数据库"}], {"__": "数据库"}),
        ("scope:cpu, scope:perf, team:core", {"scope": "cpu,perf", "team": "core"}),  # {EVENT.TAGS}
        ("url:http://x:8080/a, prod", {"url": "http://x:8080/a", "prod": "true"}),
    ],
)
def test_tags_become_labels(tags, expected, now):
    labels = one(problem(event_tags=tags, host_host=None, trigger_id="7", event_id=None), now).labels
    assert {k: v for k, v in labels.items() if k not in ("trigger_id", "severity")} == expected


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"event_timestamp": 1795369800}, datetime(2026, 11, 22, 17, 50, tzinfo=UTC)),
        ({"event_timestamp": "1795369800"}, datetime(2026, 11, 22, 17, 50, tzinfo=UTC)),
        ({"event_date": "2026.11.22", "event_time": "17:50:00"}, datetime(2026, 11, 22, 17, 50, tzinfo=UTC)),
        (
            {"event_date": "2026.11.23", "event_time": "01:50:00", "event_tz": "+08:00"},
            datetime(2026, 11, 22, 17, 50, tzinfo=UTC),
        ),
        (
            {"event_date": "2026.11.22", "event_time": "12:50:00", "event_tz": "-0500"},
            datetime(2026, 11, 22, 17, 50, tzinfo=UTC),
        ),
        (
            {
                "event_value": "0",
                "event_date": "2026.11.22",
                "event_time": "10:00:00",
                "event_recovery_date": "2026.11.22",
                "event_recovery_time": "17:50:00",
            },
            datetime(2026, 11, 22, 17, 50, tzinfo=UTC),
        ),
        ({"event_date": "{EVENT.DATE}", "event_time": "{EVENT.TIME}"}, None),
        ({}, None),
    ],
)
def test_event_time(fields, expected, now):
    assert one(problem(**fields), now).event_time == (expected or now)


def test_links_and_description(now):
    event = one(
        problem(
            zabbix_url="https://zbx.example.com/",
            trigger_description="Too busy",
            event_opdata="96 %",
            item_value="96",
            host_ip="10.0.0.1",
        ),
        now,
    )
    assert event.labels["event_url"] == "https://zbx.example.com/tr_events.php?triggerid=23817&eventid=1"
    assert event.labels["host_ip"] == "10.0.0.1"
    assert event.description == "Too busy\nOperational data: 96 %\nLast value: 96"


def test_non_web_zabbix_url_gives_no_link(now):
    assert "event_url" not in one(problem(zabbix_url="javascript:alert(1)"), now).labels


def test_title_falls_back_to_trigger_description(now):
    assert one(problem(event_name=None, trigger_description="Disk full"), now).title == "Disk full"
    # Flashduty's name for it
    assert one(problem(event_name=None, trigger_desc="Disk full"), now).title == "Disk full"


def test_flashduty_block_fields_yield_to_the_body(now):
    block = "-----FlashDuty Required Starts-----event_value=1||trigger_id=9||event_severity=Average-----FlashDuty Required Ends-----"
    event = one({"message": f"text\n{block}\n", "event_severity": "Disaster", "event_name": "Down"}, now)
    assert (event.event_status, event.alert_key, event.title) == (EventStatus.CRITICAL, "zabbix:9:", "Down")


@pytest.mark.parametrize(
    "body, field",
    [
        ([], "body"),
        (problem(event_value=None), "event_value"),
        (problem(event_value="2"), "event_value"),
        (problem(event_value="{EVENT.VALUE}"), "event_value"),
        (problem(event_severity="Major"), "event_severity"),
        (problem(event_severity=None), "event_severity"),
        (problem(event_severity=None, event_nseverity="9"), "event_nseverity"),
        (problem(trigger_id=None), "trigger_id"),
        (problem(trigger_id="{TRIGGER.ID}"), "trigger_id"),
        (problem(event_name=None), "event_name"),
        (problem(event_name={"a": 1}), "event_name"),
        (problem(event_tags="[not json"), "event_tags"),
        (problem(event_tags=5), "event_tags"),
        (problem(event_tags=["x"]), "event_tags[0]"),
        (problem(event_tags=[{"tag": "a", "value": {"b": 1}}]), "event_tags[0].value"),
        (problem(event_date="22/11/2026", event_time="17:50"), "event_date"),
        (problem(event_date="2026.11.22", event_time="17:50:00", event_tz="Europe/Paris"), "event_tz"),
        (problem(event_date="2026.11.22", event_time="17:50:00", event_tz="+25:00"), "event_tz"),
        (problem(event_timestamp=10**20), "event_timestamp"),
    ],
)
def test_bad_input_names_the_field(body, field, now):
    with pytest.raises(InvalidParameter) as err:
        parse(body, {}, now)
    assert err.value.field == field and field in str(err.value)


def test_recovery_needs_no_severity(now):
    assert one(problem(event_value="0", event_severity=None), now).event_status is EventStatus.OK
