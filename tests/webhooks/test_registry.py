"""The format registry and the query overrides every format shares (reference 1.1)."""

import pytest

from core.types import EventStatus
from tests.webhooks.conftest import fixture
from webhooks.errors import InvalidParameter
from webhooks.registry import PARSERS, alert_count

SAMPLES = {  # one firing and one recovery sample per format
    "standard": (("standard", "full"), ("standard", "recovery")),
    "prometheus": (("alertmanager", "firing"), ("alertmanager", "partly_resolved")),
    "grafana": (("grafana", "unified_firing"), ("grafana", "legacy_ok")),
    "zabbix": (("zabbix", "problem"), ("zabbix", "recovery")),
    "n9e": (("n9e", "firing_batch"), ("n9e", "recovered_single")),
}


def test_registry_lists_every_format():
    assert set(PARSERS) == set(SAMPLES) == {"standard", "prometheus", "grafana", "zabbix", "n9e"}


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@pytest.mark.parametrize("severity", ["Critical", "Info", "warning"])
def test_severity_override_applies_to_every_format_but_not_to_recoveries(fmt, severity, now):
    firing, recovery = (
        PARSERS[fmt](fixture(*sample), {"severity": severity}, now) for sample in SAMPLES[fmt]
    )
    want = EventStatus(severity.capitalize())
    assert firing and all(e.event_status is want for e in firing)
    assert any(e.event_status is EventStatus.OK for e in recovery)
    plain = PARSERS[fmt](fixture(*SAMPLES[fmt][1]), {}, now)
    assert [e.event_status is EventStatus.OK for e in recovery] == [
        e.event_status is EventStatus.OK for e in plain
    ]


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_title_rule_override_applies_to_every_format(fmt, now):
    events = PARSERS[fmt](
        fixture(*SAMPLES[fmt][0]), {"title_rule": "[TPL]{{.EventSeverity}}: {{.Title}}"}, now
    )
    plain = PARSERS[fmt](fixture(*SAMPLES[fmt][0]), {}, now)
    assert [e.title for e in events] == [f"{p.event_status.value}: {p.title}"[:512] for p in plain]
    assert {e.title_rule for e in events} == {"[TPL]{{.EventSeverity}}: {{.Title}}"}


@pytest.mark.parametrize(
    "query, title",
    [
        ({"title_rule": "$instance::$alertname"}, "api-1:9100 / HighLatency"),
        ({"title_rule": "[TPL]${service} ${missing}"}, "checkout <no value>"),
        ({"title_rule": "x" * 600}, "x" * 512),
        ({"title_rule": ""}, "p99 latency above 2s"),
        ({"title_rule": "   "}, "p99 latency above 2s"),
        (
            {"title_rule": "[TPL]{{.Labels.missing}}"},
            "[TPL]{{.Labels.missing}}",
        ),  # renders to nothing: keep the rule
    ],
)
def test_title_rule_override_renders_against_labels(query, title, now):
    first = PARSERS["prometheus"](fixture("alertmanager", "firing"), query, now)[0]
    assert first.title == title


def test_severity_override_renders_into_title(now):
    [event] = PARSERS["standard"](
        fixture("standard", "full"), {"severity": "Info", "title_rule": "[TPL]{{.EventSeverity}}"}, now
    )
    assert (event.event_status, event.title) == (EventStatus.INFO, "Info")


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@pytest.mark.parametrize("severity", ["Ok", "high", "1"])
def test_bad_severity_override_is_rejected(fmt, severity, now):
    with pytest.raises(InvalidParameter) as err:
        PARSERS[fmt](fixture(*SAMPLES[fmt][0]), {"severity": severity}, now)
    assert err.value.field == "severity"


def test_bad_severity_override_is_rejected_for_an_empty_batch(now):
    with pytest.raises(InvalidParameter):
        PARSERS["n9e"]([], {"severity": "bogus"}, now)


def test_other_query_parameters_are_ignored(now):
    events = PARSERS["prometheus"](
        fixture("alertmanager", "firing"), {"integration_key": "k", "channel_id": "3"}, now
    )
    assert [e.event_status for e in events] == [EventStatus.CRITICAL, EventStatus.WARNING]


@pytest.mark.parametrize(("fmt", "sample"), [(fmt, s) for fmt in sorted(SAMPLES) for s in SAMPLES[fmt]])
def test_alert_count_before_parsing_is_what_the_parser_returns(fmt, sample, now):
    body = fixture(*sample)
    assert alert_count(fmt, body) == len(PARSERS[fmt](body, {}, now))


@pytest.mark.parametrize(("fmt", "body", "count"), [
    ("prometheus", {"alerts": [{}] * 4000}, 4000),
    ("grafana", {"alerts": [{}] * 3}, 3),
    ("n9e", [{}] * 5, 5),
    ("n9e", {"rule_name": "one event"}, 1),
    ("standard", {"title_rule": "t", "event_status": "Ok", "alerts": [{}] * 9}, 1),  # not a field of its own
    ("prometheus", {"alerts": "not a list"}, 1),  # the parser names the problem
    ("zabbix", [], 1),
])
def test_alert_count_reads_only_the_alert_list_of_the_format(fmt, body, count):
    assert alert_count(fmt, body) == count
