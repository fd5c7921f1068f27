import logging
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from core.templates import (
    BYTE_CAP,
    DEFAULTS,
    EVERYWHERE,
    MEDIA,
    OUTPUT_CAP,
    SUBJECT_CAP,
    Rendered,
    Scope,
    TemplateError,
    TemplateSet,
    default_source,
    incident_context,
    scope_order,
)
from core.types import Severity

EVENTS = ["i_new", "i_ack", "i_unack", "i_snooze", "i_wake", "i_rslv", "i_reopen", "i_assign", "i_comm", "i_merge",
          "i_storm", "default"]
START = datetime(2026, 5, 4, 3, 12, tzinfo=UTC)
TITLE = "db-1 <disk> 95% & *full* [eu_west]"
INCIDENT = {"incident_id": 7, "num": "00A7", "title": TITLE, "description": "Disk /var is 95% full.",
            "incident_severity": Severity.CRITICAL, "progress": "Triggered", "channel_name": "Payments",
            "labels": {"zone": "a", "service": "db", "host": "db-1"}, "alert_cnt": 3,
            "responders": [{"person_id": 1, "person_name": "Ann"}, "Bob"], "start_time": START,
            "close_time": START + timedelta(hours=1, minutes=5)}
BASE = "https://vigil.example"
URL = f"{BASE}/incidents/7"
BOOM = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"


def ctx(event_type="i_new", actor_name=None, **changes):
    return incident_context({**INCIDENT, **changes}, event_type=event_type, actor_name=actor_name, base_url=BASE + "/")


def everything(r: Rendered) -> str:
    return (r.subject or "") + "\n" + r.text + "\n" + (r.html or "")


@pytest.mark.parametrize("medium", MEDIA)
@pytest.mark.parametrize("event_type", EVENTS)
def test_every_default_renders(medium, event_type):
    r = TemplateSet().render(medium, event_type, ctx(event_type, actor_name="Eve"))
    assert not r.used_fallback and r.error is None
    assert r.text.strip() and len(r.text) <= OUTPUT_CAP[medium]
    assert len(r.text.encode()) <= BYTE_CAP.get(medium, 10**9)
    assert "db-1" in r.text
    if medium == "voice":  # read aloud: no links, no emoji, no markup symbols
        assert "http" not in r.text and "<" not in r.text and "*" not in r.text
        assert all(ord(c) < 0x2000 for c in r.text)
    else:
        assert URL in everything(r)
    if medium == "telegram_bot":
        assert "db-1 &lt;disk&gt; 95% &amp; *full*" in r.text and "<disk>" not in r.text
    if medium in ("slack_bot", "feishu_bot"):
        assert "&lt;disk&gt;" in r.text
    if medium == "sms":
        assert r.text.startswith("[Critical]")
    if medium == "email":
        assert r.subject.startswith("[Critical]") and "\n" not in r.subject and len(r.subject) <= SUBJECT_CAP
        assert "&lt;disk&gt;" in r.html and "<disk>" not in r.html and TITLE in r.text
    else:
        assert r.subject is None and r.html is None


@pytest.mark.parametrize("medium", MEDIA)
def test_defaults_stay_within_the_cap_for_huge_incidents(medium):
    huge = ctx(title="T" * 5000, description="d" * 50_000, channel_name="c" * 500,
               labels={f"k{i}": "v" * 300 for i in range(200)})
    r = TemplateSet().render(medium, "i_new", huge)
    assert not r.used_fallback and len(r.text) <= OUTPUT_CAP[medium]
    assert len(r.text.encode()) <= BYTE_CAP.get(medium, 10**9)
    if medium == "email":
        assert len(r.subject) <= SUBJECT_CAP and len(r.html) <= OUTPUT_CAP["email"]


@pytest.mark.parametrize("event_type, shipped", [
    ("i_rslv", ("sms", "i_rslv")),
    ("i_storm", ("sms", "i_storm")),
    ("i_ack", ("sms", "default")),
    ("i_future_event", ("sms", "default")),
])
def test_event_specific_default_else_generic(event_type, shipped):
    assert default_source("sms", event_type) == DEFAULTS[shipped]


def test_defaults_are_short_and_useful_at_3am():
    sms = TemplateSet().render("sms", "i_new", ctx()).text
    assert sms.startswith("[Critical] Triggered: db-1") and "Payments" in sms and "3 alerts" in sms
    closed = TemplateSet().render("sms", "i_rslv", ctx("i_rslv", "Eve")).text
    assert closed.startswith("[Critical] Closed by Eve: db-1") and "(lasted 1h 5m)" in closed
    voice = TemplateSet().render("voice", "i_ack", ctx("i_ack", "Eve")).text
    assert voice.startswith("Vigil. Critical incident, acknowledged by Eve.")
    email = TemplateSet().render("email", "i_new", ctx())
    assert "Started:    2026-05-04 03:12 UTC" in email.text and "Responders: Ann, Bob" in email.text
    assert "service=db, host=db-1, zone=a" in email.text  # well-known labels first


@pytest.mark.parametrize("overrides, medium, event_type, expected", [
    ({("sms", "i_new"): "{{ title|upper }} #{{ num }}"}, "sms", "i_new", TITLE.upper() + " #00A7"),
    ({("sms", "default"): "ANY {{ event_label }} {{ actor_name }}"}, "sms", "i_ack", "ANY Acknowledged"),
    ({("sms", "default"): "ANY", ("sms", "i_ack"): "ACK"}, "sms", "i_ack", "ACK"),
    ({("sms", "default"): "ANY"}, "sms", "i_rslv", "ANY"),  # an override default beats a shipped event file
    ({("im", "i_new"): "{{ incident.title }} {{ missing }}{{ missing.deeper.still }}|"}, "im", "i_new", TITLE + " |"),
    ({("im", "i_new"): "{{ start_time|datetime('%H:%M %Z', 'Asia/Shanghai') }}"}, "im", "i_new", "11:12 CST"),
    ({("im", "i_new"): "{{ close_time|datetime('%H:%M') }} {{ duration_seconds|duration }}"}, "im", "i_new",
     "04:17 1h 5m"),
    ({("im", "i_new"): "{{ title|md_escape_telegram }}"}, "im", "i_new",
     r"db\-1 <disk\> 95% & \*full\* \[eu\_west\]"),
    ({("telegram_bot", "i_new"): "<b>{{ title }}</b> {{ title|html_escape }}"}, "telegram_bot", "i_new",
     "<b>db-1 &lt;disk&gt; 95% &amp; *full* [eu_west]</b> db-1 &lt;disk&gt; 95% &amp; *full* [eu_west]"),
    ({("sms", "i_new"): "{{ title|truncate(10) }}"}, "sms", "i_new", "db-1 <dis…"),
    ({("sms", "i_new"): "{% for r in responders %}{{ r }}{{ ',' if not loop.last }}{% endfor %}"}, "sms", "i_new",
     "Ann,Bob"),
    ({("sms", "i_new"): "{% set ns = namespace(n=0) %}{% for k in labels %}{% set ns.n = ns.n + 1 %}{% endfor %}"
                        "{{ ns.n }}"}, "sms", "i_new", "3"),
])
def test_valid_override_is_used(overrides, medium, event_type, expected):
    r = TemplateSet(overrides).render(medium, event_type, ctx(event_type))
    assert (r.text, r.used_fallback, r.error) == (expected, False, None)


def test_email_override_with_blocks():
    source = ("{% block subject %}PAGE\n {{ title }}{% endblock %}{% block text %}T {{ title }}{% endblock %}"
              "{% block html %}<b>{{ title }}</b>{% endblock %}")
    r = TemplateSet({("email", "default"): source}).render("email", "i_new", ctx())
    assert (r.subject, r.text, r.html) == ("PAGE " + TITLE, "T " + TITLE,
                                           "<b>db-1 &lt;disk&gt; 95% &amp; *full* [eu_west]</b>")
    plain = TemplateSet({("email", "i_new"): "{% block subject %}S{% endblock %}{% block text %}a<b\nc{% endblock %}"})
    r = plain.render("email", "i_new", ctx())
    assert r.text == "a<b\nc" and "a&lt;b\nc" in r.html and not r.used_fallback


def test_unicode_everywhere():
    context = ctx(title="数据库 主库宕机 🔥", channel_name="支付", actor_name=None)
    for medium in MEDIA:
        r = TemplateSet().render(medium, "i_new", context)
        assert not r.used_fallback and ("数据库 主库宕机" in r.text)
    assert "🔥" not in TemplateSet().render("voice", "i_new", context).text
    r = TemplateSet({("sms", "i_new"): "{{ title }}·{{ channel_name }}"}).render("sms", "i_new", context)
    assert r.text == "数据库 主库宕机 🔥·支付"


@pytest.mark.parametrize("source, error", [
    ("{% if %}", "TemplateError: line 1"),  # syntax: also refused by validate
    ("{{ 1/0 }}", "ZeroDivisionError"),
    ("{{ ''.__class__.__mro__ }}", "SecurityError: access to attribute '__class__' of 'str'"),
    ("{{ incident.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),
    ("{{ missing.__class__ }}", "SecurityError"),
    ("{{ cycler.__init__.__globals__ }}", "SecurityError"),
    ("{% set l = [1] %}{{ l.append(2) }}", "SecurityError"),  # no mutation of lists, dicts, sets
    ("{{ 'x'.center(10**9) }}", "SecurityError"),
    ("{{ 'x'|center(10**9) }}", "SecurityError: filter center"),
    ("{{ 'x' * 10**9 }}", "SecurityError: repetition"),
    ("{{ 7 ** (10 ** 9) }}", "SecurityError: power"),
    ("{{ '%0999999999d' % 1 }}", "SecurityError: format width"),
    ("{{ '%0999999999d'|format(1) }}", "SecurityError: format width"),
    ("{{ '{:>999999999}'.format(1) }}", "SecurityError"),
    ("{{ 'x'|replace('', 'y' * 1000)|replace('', 'y' * 1000) }}", "SecurityError: replace"),
    ("{% set a = 'xxxxxxxxxx' %}" + "{% set a = a ~ a %}" * 40 + "{{ a|length }}", "SecurityError: template built"),
    ("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
     "SecurityError: template built"),
    ("{{ lipsum(10**6) }}", "UndefinedError"),
    ("{{ start_time|datetime(tz='Mars/Olympus') }}", "unknown time zone 'Mars/Olympus'"),
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
    ("{% for i in range(50000) %}{{ 'xxxxxxxxxx' }}{% endfor %}", "TemplateError: output is longer than 600"),
    (BOOM, "TemplateError: output is longer than 600"),  # nested huge loops with output: the size cap stops it
    (BOOM.replace("x", ""), "SecurityError: template did more than 100000 steps"),  # silent loops: the budget
    ("{% for i in range(10**6) %}{% endfor %}", "OverflowError"),  # the sandbox's own range cap
])
def test_broken_override_falls_back_to_the_default_and_logs(source, error, caplog):
    caplog.set_level(logging.WARNING, logger="vigil.templates")
    r = TemplateSet({("sms", "i_new"): source}).render("sms", "i_new", ctx())
    assert r.used_fallback and error in r.error
    assert r.text == TemplateSet().render("sms", "i_new", ctx()).text
    record = next(rec for rec in caplog.records if rec.name == "vigil.templates")
    assert record.levelno == logging.WARNING and error in record.getMessage() and "sms/i_new" in record.getMessage()


def test_exponential_macro_recursion_hits_the_budget_or_deadline():
    source = "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    r = TemplateSet({("im", "i_new"): source}).render("im", "i_new", ctx())
    assert r.used_fallback and r.error.startswith("SecurityError: template")


@pytest.mark.parametrize("medium, source, error", [
    ("email", "{% block subject %}S{% endblock %}{% block text %}{{ 1/0 }}{% endblock %}", "ZeroDivisionError"),
    ("email", "{% block subject %}{{ 'S' * 300 }}{% endblock %}{% block text %}t{% endblock %}", "subject is longer"),
    ("email", "{% block text %}t{% endblock %}", "needs {% block subject %}"),
    ("voice", "{{ 'word ' * 100 }}", "longer than 400"),
    ("wecom_bot", "{{ '数' * 2000 }}", "longer than 4096 bytes"),
])
def test_medium_specific_failures_fall_back(medium, source, error):
    r = TemplateSet({(medium, "i_new"): source}).render(medium, "i_new", ctx())
    assert r.used_fallback and error in r.error and "db-1" in r.text


def test_unknown_medium_still_pages(caplog):
    r = TemplateSet().render("fax", "i_new", ctx())
    assert r.used_fallback and "unknown medium 'fax'" in r.error
    assert r.text == f"[Critical] {TITLE} {URL}"
    assert "unknown medium 'fax'" in caplog.text


@pytest.mark.parametrize("medium, source, message", [
    ("sms", "{% if %}", "line 1: Expected an expression"),
    ("sms", "ok\n{{ x", "line 2:"),
    ("sms", "a\nb\n{{ x|no_such_filter }}", "line 3: No filter named 'no_such_filter'"),
    ("sms", "{% for %}", "line 1"),
    ("sms", "{% if x %}\n{{ y|nope }}{% endif %}", "line 2: no filter named 'nope'"),
    ("sms", "{% if x is nope %}{% endif %}", "line 1: no test named 'nope'"),
    ("sms", "\n{% include 'other' %}", "line 2: templates cannot extend, include or import"),
    ("fax", "x", "medium: unknown medium 'fax'"),
    ("email", "{{ title }}", "email template needs {% block subject %}...{% endblock %} and {% block text %}"),
    ("email", "{% block subject %}x{% endblock %}", "needs {% block text %}"),
    ("sms", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "the template nests too deeply"),
    ("sms", "{% if x %}" * 2000 + "{% endif %}" * 2000, "the template nests too deeply"),
])
def test_validate_names_the_problem(medium, source, message):
    with pytest.raises(TemplateError) as info:
        TemplateSet.validate(medium, source)
    assert message in str(info.value)


@pytest.mark.parametrize("medium", MEDIA)
def test_shipped_defaults_validate(medium):
    TemplateSet.validate(medium, default_source(medium, "default"))


@pytest.mark.parametrize("medium, source", [
    ("sms", "{{ 1/0 }}"),  # runtime errors are for render to catch, not for validate
    ("email", "{% block subject %}s{% endblock %}{% block text %}t{% endblock %}"),
    ("telegram_bot", "<b>{{ title }}</b>"),
])
def test_validate_accepts(medium, source):
    TemplateSet.validate(medium, source)


def test_incident_context_normalises_the_store_and_flashduty_shapes():
    c = incident_context({"incident_id": 9, "title": "t", "severity": Severity.WARNING, "labels": {"a": 1},
                          "start_time": datetime(2026, 1, 1, 0, 0), "ack_time": 1_767_225_660, "close_time": 0,
                          "responders": [{"email": "x@y.z"}], "detail_url": "https://fd/9"},
                         event_type="i_ack", base_url="")
    assert c["incident_severity"] == c["severity"] == "Warning" and c["icon"] == "🟠"
    assert c["start_time"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert c["ack_time"] == datetime(2026, 1, 1, 0, 1, tzinfo=UTC) and c["close_time"] is None
    assert c["labels"] == {"a": "1"} and c["responders"] == ["x@y.z"] and c["detail_url"] == "https://fd/9"
    assert c["num"] == "9" and c["event_label"] == "Acknowledged" and c["actor_name"] == ""
    assert c["incident"]["title"] == "t" and c["duration_seconds"] is None


def test_html_default_is_well_formed():
    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag not in ("br", "meta"):
                self.open.append(tag)

        def handle_endtag(self, tag):
            assert self.open.pop() == tag

    parser = Tags()
    parser.feed(TemplateSet().render("email", "i_new", ctx()).html.removeprefix("<!doctype html>"))
    assert parser.open == []


# ---- scopes: templates per channel and per escalation rule (issue 13 item 16) -------------------------

SCOPED = {
    ("sms", "default", 0, 0): "everywhere-default",
    ("sms", "i_ack", 0, 0): "everywhere-ack",
    ("sms", "default", 7, 0): "channel-7-default",
    ("sms", "i_new", 8, 0): "channel-8-new",
    ("sms", "default", 8, 3): "rule-3-default",
    ("email", "i_new", 9, 0): "channel-9-email",
}


@pytest.mark.parametrize("medium, event_type, channel_id, rule_id, expected", [
    ("sms", "i_new", 0, 0, "everywhere-default"),  # no scope: only the templates for every incident
    ("sms", "i_ack", 0, 0, "everywhere-ack"),
    ("sms", "i_new", 7, 0, "channel-7-default"),  # the channel's default beats the global event template...
    ("sms", "i_ack", 7, 0, "channel-7-default"),  # ...even the global one for that very event
    ("sms", "i_new", 7, 5, "channel-7-default"),  # a rule without templates of its own: the channel's
    ("sms", "i_new", 8, 0, "channel-8-new"),
    ("sms", "i_ack", 8, 0, "everywhere-ack"),  # the channel has none for i_ack and no default: global
    ("sms", "i_new", 8, 3, "rule-3-default"),  # the rule's default beats the channel's event template
    ("sms", "i_new", 9, 0, "everywhere-default"),  # channel 9's template is for another medium
    ("email", "i_new", 9, 0, "channel-9-email"),
    ("email", "i_new", 0, 0, None),  # nothing anywhere: the shipped default
    ("voice", "i_new", 8, 3, None),
    ("sms", "i_new", None, None, "everywhere-default"),  # an incident without channel or rule
    ("sms", "i_new", 0, 3, "everywhere-default"),  # a rule id without its channel names no scope
])
def test_the_most_specific_scope_with_a_template_wins(medium, event_type, channel_id, rule_id, expected):
    assert TemplateSet(SCOPED).source(medium, event_type, channel_id, rule_id) == expected


def test_unscoped_keys_hold_everywhere():
    both = TemplateSet({("sms", "i_new"): "plain", ("sms", "i_new", 4, 0): "scoped"})
    assert both.source("sms", "i_new") == "plain" and both.source("sms", "i_new", 4, 0) == "scoped"
    assert scope_order(4, 2) == [Scope(4, 2), Scope(4, 0), EVERYWHERE]
