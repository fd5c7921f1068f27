import pytest

from core.templates import MEDIA, TemplateError, TemplateSet, incident_context

CTX = incident_context({"incident_id": 7, "num": "000007", "title": "db <down> 🔥", "incident_severity": "Critical",
                        "progress": "Triggered", "alert_cnt": 3, "labels": {"service": "db"},
                        "channel_name": "prod"}, event_type="i_new", base_url="https://vigil.example")
EVENTS = ["i_new", "i_ack", "i_rslv", "i_wake", "i_storm", "default"]


@pytest.mark.parametrize("medium", MEDIA)
@pytest.mark.parametrize("event_type", EVENTS)
def test_every_default_renders(medium, event_type):
    r = TemplateSet().render(medium, event_type, CTX)
    assert not r.used_fallback and r.error is None
    assert "db" in (r.subject or "") + r.text
    if medium != "voice":
        assert "https://vigil.example/incidents/7" in r.text
    else:
        assert "http" not in r.text and "🔥" not in r.text.replace("db <down> 🔥", "")
    if medium == "sms":
        assert len(r.text) <= 600
    if medium == "telegram_bot":
        assert "db &lt;down&gt;" in r.text
    if medium == "email":
        assert r.subject.startswith("[Critical]") and r.html.startswith("<html>")


@pytest.mark.parametrize("source, error", [
    ("{{ 1/0 }}", "ZeroDivisionError"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loops ran more than"),
    ("{% for i in range(50000) %}{{ 'xxxxxxxxxx' }}{% endfor %}", "longer than"),
    ("{{ incident.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
])
def test_broken_overrides_fall_back_to_the_default(source, error, caplog):
    r = TemplateSet({("sms", "i_new"): source}).render("sms", "i_new", CTX)
    assert r.used_fallback and error in r.error
    assert r.text.startswith("[Critical] Triggered: db <down>")
    assert "using the default" in caplog.text


def test_sandbox_hides_internals():
    r = TemplateSet({("im", "i_new"): "x{{ ''.__class__ }}y"}).render("im", "i_new", CTX)
    assert r.text == "xy"


def test_valid_override_is_used():
    r = TemplateSet({("sms", "default"): "{{ title|upper }} #{{ num }}"}).render("sms", "i_ack", CTX)
    assert r.text == "DB <DOWN> 🔥 #000007" and not r.used_fallback


@pytest.mark.parametrize("medium, source, message", [
    ("sms", "{% if %}", "line 1"),
    ("sms", "ok\n{{ x", "line 2"),
    ("fax", "x", "unknown medium"),
])
def test_validate_names_the_problem(medium, source, message):
    with pytest.raises(TemplateError, match=message):
        TemplateSet.validate(medium, source)
