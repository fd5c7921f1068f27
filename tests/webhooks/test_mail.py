"""How an e-mail integration reads a message (webhooks/mail.py): pure, table-tested."""

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from pydantic import ValidationError

from core.types import EventStatus, Severity
from webhooks.mail import BadMail, MailRules, key_of, parse, severity_of, text_of_html

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
KEY = "0123456789abcdef0123456789abcdef"


def message(subject="disk full on db-1", text="97% used", html=None, **headers) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zabbix <zabbix@example.com>"
    msg["To"] = f"{KEY}@alerts.example.com"
    if subject is not None:
        msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


@pytest.mark.parametrize("address, key", [
    (f"{KEY}@alerts.example.com", KEY),
    (f"{KEY.upper()}@ALERTS.example.com", KEY),  # servers may change case; keys are lower-case hex
    (f"{KEY}@other.example.com", None),
    (f"{KEY[:-1]}@alerts.example.com", None),
    (f"{KEY}x@alerts.example.com", None),
    ("postmaster@alerts.example.com", None),
    ("no-at-sign", None),
])
def test_key_of_address(address, key):
    assert key_of(address, "alerts.example.com") == key


@pytest.mark.parametrize("subject, status", [
    ("PROBLEM: disk full on db-1 is CRITICAL", EventStatus.CRITICAL),
    ("Disaster: db-1 down", EventStatus.CRITICAL),
    ("[warning] queue slow", EventStatus.WARNING),
    ("info: backup done", EventStatus.INFO),
    ("disk full on db-1", EventStatus.WARNING),  # no rule matches: the default
    ("criticality review", EventStatus.WARNING),  # keywords are whole words
    ("RESOLVED: disk full on db-1 is CRITICAL", EventStatus.OK),  # recovery wins over severity
    ("[OK] disk full on db-1", EventStatus.OK),
    ("Disk OK again", EventStatus.OK),
    ("book club", EventStatus.WARNING),
])
def test_status_from_subject(subject, status):
    assert parse(message(subject), MailRules(), NOW).event_status is status


def test_custom_severity_rules_first_match_wins():
    rules = MailRules(severity_rules=[{"keyword": "P1", "severity": "Critical"}, {"keyword": "db", "severity": "Info"}],
                      default_severity="Info")
    assert severity_of("P1 db down", rules) is Severity.CRITICAL
    assert severity_of("db slow", rules) is Severity.INFO
    assert severity_of("something", rules) is Severity.INFO


@pytest.mark.parametrize("firing, recovered", [
    ("PROBLEM: disk full on db-1", "RESOLVED: disk full on db-1"),
    ("[FIRING:2] HighCPU (instance db-1)", "[RESOLVED] HighCPU (instance db-1)"),
    ("** PROBLEM Service Alert: db-1/disk is CRITICAL **", "** RECOVERY Service Alert: db-1/disk is OK **"),
    ("Disk full on DB-1 - critical", "disk full on db-1 - RECOVERED"),
])
def test_subject_dedup_pairs_a_problem_with_its_recovery(firing, recovered):
    a, b = parse(message(firing), MailRules(), NOW), parse(message(recovered), MailRules(), NOW)
    assert a.event_status is not EventStatus.OK and b.event_status is EventStatus.OK
    assert a.alert_key == b.alert_key


def test_different_subjects_are_different_alerts():
    assert parse(message("disk full on db-1"), MailRules(), NOW).alert_key != \
        parse(message("disk full on db-2"), MailRules(), NOW).alert_key


@pytest.mark.parametrize("rules, subject, headers, key", [
    ({"dedup": "header", "dedup_header": "X-Alert-Id"}, "anything", {"X_Alert_Id": " evt-42 "}, "evt-42"),
    ({"dedup": "subject_regex", "dedup_regex": r"ticket #(?P<key>\d+)"}, "re: ticket #881 is open", {}, "881"),
    ({"dedup": "subject_regex", "dedup_regex": r"host=(\S+)"}, "cpu high host=db-1 now", {}, "db-1"),
    ({"dedup": "subject_regex", "dedup_regex": r"db-\d+"}, "cpu high on db-7", {}, "db-7"),
])
def test_configured_dedup_key(rules, subject, headers, key):
    assert parse(message(subject, **headers), MailRules(**rules), NOW).alert_key == key


@pytest.mark.parametrize("rules", [
    {"dedup": "header", "dedup_header": "X-Alert-Id"},
    {"dedup": "subject_regex", "dedup_regex": r"ticket #(\d+)"},
])
def test_dedup_falls_back_to_the_subject(rules):
    plain = parse(message("disk full"), MailRules(), NOW).alert_key
    assert parse(message("disk full"), MailRules(**rules), NOW).alert_key == plain


@pytest.mark.parametrize("rules, field", [
    ({"dedup": "header"}, "dedup_header"),
    ({"dedup": "header", "dedup_header": "X Alert"}, "dedup_header"),
    ({"dedup": "subject_regex"}, "dedup_regex"),
    ({"dedup": "subject_regex", "dedup_regex": "(unclosed"}, "dedup_regex"),
    ({"dedup": "body"}, "dedup"),
    ({"recovery_keywords": ["  "]}, "recovery_keywords[0]"),
    ({"severity_rules": [{"keyword": "x", "severity": "Ok"}]}, "severity"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_rules_name_the_field(rules, field):
    with pytest.raises(ValidationError, match=field.replace("[", r"\[")):
        MailRules(**rules)


def test_fields_of_the_event():
    ev = parse(message("  disk   full\ton db-1 ", "line one\nline two\n", Date="Sat, 05 Dec 2026 11:58:00 +0000"),
               MailRules(), NOW)
    assert ev.title == "disk full on db-1"
    assert ev.description == "line one\nline two"
    assert ev.labels == {"from": "zabbix@example.com"}
    assert ev.event_time == datetime(2026, 12, 5, 11, 58, tzinfo=UTC)


@pytest.mark.parametrize("date", ["Sat, 05 Dec 2026 13:00:00 +0000", "not a date", None])
def test_future_or_unreadable_date_means_now(date):
    headers = {"Date": date} if date else {}
    assert parse(message(**headers), MailRules(), NOW).event_time is None


def test_html_body_becomes_its_text():
    html = ("<html><head><style>p{color:red}</style><title>x</title></head><body><h1>Disk &amp; CPU</h1>"
            "<p>db-1 at <b>97%</b></p><script>alert(1)</script><table><tr><td>a</td><td>b</td></tr></table></body></html>")
    ev = parse(message(text=None, html=html), MailRules(), NOW)
    assert ev.description == "Disk & CPU\ndb-1 at 97%\nab"
    assert text_of_html("<p>one<br>two</p>") == "one\ntwo"


def test_text_part_is_preferred_to_html():
    assert parse(message(text="plain words", html="<p>html words</p>"), MailRules(), NOW).description == "plain words"


def test_no_subject_takes_the_first_body_line():
    assert parse(message(None, "first line\nsecond"), MailRules(), NOW).title == "first line"


def test_encoded_subject_and_utf8_body():
    ev = parse(message("=?utf-8?b?56OB55uY5ruh?= db-1", "磁盘已满 \u0000"), MailRules(), NOW)
    assert ev.title == "磁盘满 db-1"
    assert ev.description == "磁盘已满 \ufffd"  # U+0000 is stored as U+FFFD on every database


@pytest.mark.parametrize("raw, reason", [
    (b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nbody\r\n",
     "unknown charset 'x-no-such-charset'"),
    (b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     b"!!!not base64***\r\n", "base64"),
    (b"From: a@example.com\r\n\r\n", "neither a subject nor a text or HTML body"),
    (b"From: a@example.com\r\nContent-Type: image/png\r\n\r\nPNG\r\n", "neither a subject nor a text or HTML body"),
])
def test_unreadable_mail_is_refused_with_the_reason(raw, reason):
    with pytest.raises(BadMail, match=reason):
        parse(raw, MailRules(), NOW)


def test_undecodable_bytes_in_a_header_become_replacement_characters():
    raw = b"From: a@example.com\r\nSubject: disk \xff\xfe full\r\n\r\nbody\r\n"
    ev = parse(raw, MailRules(), NOW)
    assert ev.title.startswith("disk ") and ev.title.endswith(" full")
    ev.title.encode("utf-8")  # storable: no lone surrogates left
