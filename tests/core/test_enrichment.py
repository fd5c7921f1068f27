"""Label enrichment rules (core.enrichment): validation at save time and what a rule set does to an event."""

import pytest

from core.enrichment import EnrichmentError, MappingData, compile_rules, mapping_ids, parse
from core.types import AlertEvent, EventStatus

HOSTS = MappingData("host", {"web-1": {"team": "web", "owner": "ann"}, "db-1": {"team": "dba"}})


def ev(title="cpu high on web-1", description="", **labels):
    return AlertEvent(EventStatus.CRITICAL, title, "k", description=description, labels=labels)


def extract(source, pattern, **kw):
    return {"type": "extract", "source": source, "pattern": pattern, **kw}


CASES = [
    # (name, rules, event, labels after)
    ("extract from the title",
     [extract("title", r"on (?P<host>[a-z]+-\d+)")], ev(), {"host": "web-1"}),
    ("extract several groups from a label",
     [extract("labels.instance", r"(?P<ip>[\d.]+):(?P<port>\d+)")], ev(instance="10.0.0.1:9100"),
     {"instance": "10.0.0.1:9100", "ip": "10.0.0.1", "port": "9100"}),
    ("extract from the description", [extract("description", r"region=(?P<region>\w+)")],
     ev(description="x region=eu y"), {"region": "eu"}),
    ("no match adds nothing", [extract("title", r"on (?P<host>db-\d+)")], ev(), {}),
    ("an absent source label adds nothing", [extract("labels.nope", r"(?P<x>.+)")], ev(), {}),
    ("a group that did not take part adds nothing", [extract("title", r"(?P<a>zzz)?cpu")], ev(), {}),
    ("extract keeps the event's own label", [extract("title", r"on (?P<host>\S+)")], ev(host="given"),
     {"host": "given"}),
    ("extract with overwrite replaces it", [extract("title", r"on (?P<host>\S+)", overwrite=True)],
     ev(host="given"), {"host": "web-1"}),
    ("map adds the row's labels", [{"type": "map", "mapping_id": 1}], ev(host="web-1"),
     {"host": "web-1", "team": "web", "owner": "ann"}),
    ("map of an unknown key adds nothing", [{"type": "map", "mapping_id": 1}], ev(host="web-9"), {"host": "web-9"}),
    ("map without the key label adds nothing", [{"type": "map", "mapping_id": 1}], ev(), {}),
    ("map keeps existing labels", [{"type": "map", "mapping_id": 1}], ev(host="db-1", team="mine"),
     {"host": "db-1", "team": "mine"}),
    ("map with overwrite", [{"type": "map", "mapping_id": 1, "overwrite": True}], ev(host="db-1", team="mine"),
     {"host": "db-1", "team": "dba"}),
    ("a mapping gone maps nothing", [{"type": "map", "mapping_id": 2}], ev(host="web-1"), {"host": "web-1"}),
    ("rules see what earlier ones added: extract then map",
     [extract("title", r"on (?P<host>\S+)"), {"type": "map", "mapping_id": 1}], ev(),
     {"host": "web-1", "team": "web", "owner": "ann"}),
    ("compose", [{"type": "compose", "label": "svc", "template": "{service}-{env}"}], ev(service="api", env="prod"),
     {"service": "api", "env": "prod", "svc": "api-prod"}),
    ("compose with literal braces", [{"type": "compose", "label": "j", "template": "{{{service}}}"}],
     ev(service="api"), {"service": "api", "j": "{api}"}),
    ("compose with a missing label sets nothing", [{"type": "compose", "label": "svc", "template": "{a}-{b}"}],
     ev(a="1"), {"a": "1"}),
    ("compose does not evaluate anything", [{"type": "compose", "label": "x", "template": "{a} {{7*7}}"}],
     ev(a="{b}"), {"a": "{b}", "x": "{b} {7*7}"}),
    ("drop", [{"type": "drop", "labels": ["secret", "absent"]}], ev(secret="s", keep="k"), {"keep": "k"}),
    ("drop after compose uses then removes",
     [{"type": "compose", "label": "svc", "template": "{a}/{b}"}, {"type": "drop", "labels": ["a", "b"]}],
     ev(a="x", b="y"), {"svc": "x/y"}),
    ("long values are cut to 2048 characters", [extract("description", r"(?P<blob>.+)")],
     ev(description="z" * 3000), {"blob": "z" * 2048}),
]


@pytest.mark.parametrize(("rules", "event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(rules, event, expected):
    assert compile_rules(rules, {1: HOSTS}).apply(event).labels == expected


def test_unchanged_event_is_returned_as_is_and_the_input_is_not_mutated():
    event = ev(host="web-9")
    enricher = compile_rules([{"type": "map", "mapping_id": 1}], {1: HOSTS})
    assert enricher.apply(event) is event
    event = ev(host="web-1")
    assert enricher.apply(event).labels["team"] == "web"
    assert event.labels == {"host": "web-1"}


def test_extract_is_linear_time_on_a_pathological_pattern():
    # (a+)+$ backtracks exponentially in a backtracking engine; RE2 answers at once.
    enricher = compile_rules([extract("title", r"(?P<x>(a+)+)$")], {})
    assert enricher.apply(ev(title="a" * 50_000 + "!")).labels == {}


INVALID = [
    ("not a list", {"type": "drop"}, "rules must be a list"),
    ("unknown type", [{"type": "frobnicate"}], "rules[0] (frobnicate)"),
    ("bad regex", [{"type": "drop", "labels": ["a"]}, extract("title", "(?P<host>x")],
     "rules[1] (extract): invalid regex '(?P<host>x': missing )"),
    ("no named group", [extract("title", "on (\\S+)")], "rules[0] (extract): the regex 'on (\\\\S+)' has no named group"),
    ("bad source", [extract("severity", "(?P<x>.)")], "rules[0] (extract): source"),
    ("backreference (not RE2)", [extract("title", r"(?P<a>x)\1")], "rules[0] (extract): invalid regex"),
    ("map without mapping", [{"type": "map"}], "rules[0] (map): mapping_id: Field required"),
    ("compose stray brace", [{"type": "compose", "label": "x", "template": "{a"}],
     "rules[0] (compose): unmatched '{' at position 0"),
    ("compose no label", [{"type": "compose", "label": "x", "template": "plain"}],
     "rules[0] (compose): the template names no label"),
    ("compose bad placeholder", [{"type": "compose", "label": "x", "template": "{a b}"}],
     "rules[0] (compose): placeholder '{a b}' does not name a label"),
    ("compose bad label", [{"type": "compose", "label": "1x", "template": "{a}"}], "rules[0] (compose): label"),
    ("drop nothing", [{"type": "drop", "labels": []}], "rules[0] (drop): labels"),
    ("unknown field", [{"type": "drop", "labels": ["a"], "when": 1}], "rules[0] (drop): when: Extra inputs"),
    ("too many rules", [{"type": "drop", "labels": ["a"]}] * 51, "at most 50 rules"),
]


@pytest.mark.parametrize(("rules", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_rule_sets_name_the_rule_and_the_problem(rules, message):
    with pytest.raises(EnrichmentError) as exc:
        parse(rules)
    assert message in str(exc.value)


def test_mapping_ids_lists_the_mappings_used_once_each():
    rules = [{"type": "map", "mapping_id": 3}, {"type": "drop", "labels": ["a"]}, {"type": "map", "mapping_id": 3},
             {"type": "map", "mapping_id": 1}]
    assert mapping_ids(rules) == [3, 1]
