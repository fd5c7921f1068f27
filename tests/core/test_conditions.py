"""The one match-condition language: both wire forms, every operator, validation messages, RE2 safety."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from core.conditions import (
    MAX_VALUES,
    CompiledTree,
    Condition,
    ConditionError,
    ConditionTree,
    FlashdutyCondition,
    compile_tree,
    field_value,
    matches,
    subject,
)
from core.types import EventStatus, Severity


def C(field, op, *values, ignore_case=False):
    raw = {"field": field, "op": op, "values": list(values)}
    return raw | {"ignore_case": True} if ignore_case else raw


def FD(key, oper, *vals):
    return {"key": key, "oper": oper, "vals": list(vals)}


ALERT = subject(
    title="CPU high on db-1", description="load 95% for 5m\nsecond line", severity=Severity.CRITICAL,
    status=EventStatus.WARNING, integration_id=42, channel_id=7,
    labels={"service": "db", "host": "db-1.prod", "cpu": "95.5", "ip": "10.0.0.7", "instance": "10.0.0.7:9100",
            "v6": "2001:db8::1", "region": "华东-1", "path": "/a[1]", "empty": ""},
)


MATCH_TABLE = [
    # equals / not_equals: exact, case-sensitive, every field kind
    ([[C("title", "equals", "CPU high on db-1")]], True, "equals title"),
    ([[C("title", "equals", "cpu high on db-1")]], False, "equals is case-sensitive"),
    ([[C("title", "equals", "cpu HIGH on DB-1", ignore_case=True)]], True, "equals ignore_case"),
    ([[C("severity", "equals", "Critical")]], True, "equals severity"),
    ([[C("status", "equals", "Warning")]], True, "equals event status"),
    ([[C("integration_id", "equals", "42")]], True, "equals integration_id"),
    ([[C("channel_id", "equals", 7)]], True, "number value is read as text"),
    ([[C("labels.service", "equals", "db")]], True, "equals label"),
    ([[C("labels.region", "equals", "华东-1")]], True, "equals unicode label"),
    ([[C("labels.empty", "equals", "")]], True, "empty label is present"),
    ([[C("labels.nope", "equals", "")]], False, "missing label equals nothing"),
    ([[C("labels.service", "not_equals", "web")]], True, "not_equals other"),
    ([[C("labels.service", "not_equals", "db")]], False, "not_equals same"),
    ([[C("labels.nope", "not_equals", "db")]], True, "not_equals on missing label is true"),
    # in / not_in
    ([[C("labels.service", "in", "web", "db")]], True, "in second value"),
    ([[C("labels.service", "in", "web", "api")]], False, "in none"),
    ([[C("labels.service", "in", "WEB", "DB", ignore_case=True)]], True, "in ignore_case"),
    ([[C("labels.nope", "in", "db")]], False, "in on missing label"),
    ([[C("labels.service", "not_in", "web", "api")]], True, "not_in none"),
    ([[C("labels.service", "not_in", "web", "db")]], False, "not_in one"),
    ([[C("labels.nope", "not_in", "db")]], True, "not_in on missing label is true"),
    # regex / not_regex (RE2, unanchored search)
    ([[C("title", "regex", "^CPU")]], True, "regex anchored start"),
    ([[C("title", "regex", "high")]], True, "regex searches"),
    ([[C("title", "regex", "^high")]], False, "regex anchored miss"),
    ([[C("title", "regex", "(?i)^cpu")]], True, "regex inline flag"),
    ([[C("title", "regex", "^cpu", ignore_case=True)]], True, "regex ignore_case"),
    ([[C("title", "regex", "^mem", "db-\\d$")]], True, "regex any of several"),
    ([[C("labels.region", "regex", r"^\p{Han}+-\d$")]], True, "regex unicode class"),
    ([[C("description", "regex", "^second line$")]], False, "regex ^ is start of text, not of line"),
    ([[C("description", "regex", "(?m)^second line$")]], True, "regex multiline flag"),
    ([[C("labels.nope", "regex", ".*")]], False, "regex on missing label"),
    ([[C("title", "not_regex", "^mem")]], True, "not_regex miss"),
    ([[C("title", "not_regex", "^CPU")]], False, "not_regex hit"),
    ([[C("labels.nope", "not_regex", "x")]], True, "not_regex on missing label is true"),
    # wildcard: whole value, only * and ? special
    ([[C("labels.host", "wildcard", "db-*.prod")]], True, "wildcard star"),
    ([[C("labels.host", "wildcard", "db-?.prod")]], True, "wildcard question mark"),
    ([[C("labels.host", "wildcard", "db-??.prod")]], False, "wildcard ? is exactly one character"),
    ([[C("labels.host", "wildcard", "db-1")]], False, "wildcard must match the whole value"),
    ([[C("labels.host", "wildcard", "*.dev", "*.prod")]], True, "wildcard any of several"),
    ([[C("labels.host", "wildcard", "db-1?prod")]], True, "wildcard dot is literal but ? matches it"),
    ([[C("labels.host", "wildcard", "db.1.prod")]], False, "wildcard dot is literal"),
    ([[C("labels.path", "wildcard", "/a[?]")]], True, "wildcard brackets are literal"),
    ([[C("labels.region", "wildcard", "华?-*")]], True, "wildcard ? is one unicode character"),
    ([[C("description", "wildcard", "load*line")]], True, "wildcard star spans newlines"),
    ([[C("labels.host", "wildcard", "DB-*", ignore_case=True)]], True, "wildcard ignore_case"),
    ([[C("labels.nope", "wildcard", "*")]], False, "wildcard on missing label"),
    # exists / not_exists
    ([[C("labels.service", "exists")]], True, "exists"),
    ([[C("labels.empty", "exists")]], True, "exists with empty value"),
    ([[C("labels.nope", "exists")]], False, "exists missing"),
    ([[C("labels.nope", "not_exists")]], True, "not_exists missing"),
    ([[C("labels.service", "not_exists")]], False, "not_exists present"),
    # numeric
    ([[C("labels.cpu", "gt", "90")]], True, "gt"),
    ([[C("labels.cpu", "gt", "95.5")]], False, "gt equal is false"),
    ([[C("labels.cpu", "ge", 95.5)]], True, "ge equal, number operand"),
    ([[C("labels.cpu", "lt", "1e2")]], True, "lt exponent"),
    ([[C("labels.cpu", "le", "-1")]], False, "le negative"),
    ([[C("integration_id", "lt", "100")]], True, "numeric on an id"),
    ([[C("title", "gt", "1")]], False, "numeric on non-number field is false"),
    ([[C("labels.nope", "lt", "1")]], False, "numeric on missing label"),
    # cidr
    ([[C("labels.ip", "cidr", "10.0.0.0/24")]], True, "cidr hit"),
    ([[C("labels.ip", "cidr", "10.0.1.0/24")]], False, "cidr miss"),
    ([[C("labels.ip", "cidr", "192.168.0.0/16", "10.0.0.7")]], True, "cidr any of several, bare address"),
    ([[C("labels.instance", "cidr", "10.0.0.0/8")]], True, "cidr host:port"),
    ([[C("labels.v6", "cidr", "2001:db8::/32")]], True, "cidr ipv6"),
    ([[C("labels.v6", "cidr", "0.0.0.0/0")]], False, "cidr ipv6 address never in an ipv4 net"),
    ([[C("title", "cidr", "0.0.0.0/0")]], False, "cidr on non-address"),
    ([[C("labels.nope", "cidr", "0.0.0.0/0")]], False, "cidr on missing label"),
    # Flashduty form
    ([[FD("severity", "IN", "Critical", "Warning")]], True, "fd IN exact"),
    ([[FD("severity", "NOTIN", "Critical")]], False, "fd NOTIN exact"),
    ([[FD("title", "IN", "/^CPU/")]], True, "fd regex"),
    ([[FD("title", "IN", "/^cpu/")]], False, "fd regex is case-sensitive"),
    ([[FD("labels.host", "IN", "db-*")]], True, "fd wildcard"),
    ([[FD("labels.host", "IN", "db-?.prod")]], True, "fd wildcard question mark"),
    ([[FD("labels.service", "IN", "*")]], True, "fd star means exists"),
    ([[FD("labels.nope", "IN", "*")]], False, "fd star on missing label"),
    ([[FD("labels.nope", "NOTIN", "*")]], True, "fd NOTIN star means not exists"),
    ([[FD("labels.cpu", "IN", "num:gt:90")]], True, "fd num"),
    ([[FD("labels.cpu", "NOTIN", "num:le:90")]], True, "fd NOTIN num"),
    ([[FD("labels.ip", "IN", "cidr:10.0.0.0/24")]], True, "fd cidr"),
    ([[FD("labels.service", "IN", "web", "/^d/")]], True, "fd mixed exact and regex"),
    ([[FD("labels.nope", "NOTIN", "db")]], True, "fd NOTIN on missing label is true"),
    ([[FD("data_source_id", "IN", 42)]], True, "fd data_source_id is the integration"),
    ([[FD("alert_severity", "IN", "Critical")]], True, "fd legacy severity key"),
    ([[FD("labels.region", "IN", "华东-?")]], True, "fd unicode wildcard"),
    # structure: OR of AND groups
    ([], True, "empty tree matches everything"),
    (None, True, "no tree matches everything"),
    ([[C("labels.service", "equals", "db"), C("severity", "equals", "Critical")]], True, "AND both"),
    ([[C("labels.service", "equals", "db"), C("severity", "equals", "Info")]], False, "AND one false"),
    ([[C("severity", "equals", "Info")], [C("labels.service", "equals", "db")]], True, "OR second group"),
    ([[C("severity", "equals", "Info")], [C("labels.service", "equals", "web")]], False, "OR no group"),
    ([[C("labels.service", "equals", "db"), FD("labels.cpu", "IN", "num:ge:95")]], True, "both forms in a group"),
]


@pytest.mark.parametrize("tree, expected", [r[:2] for r in MATCH_TABLE], ids=[r[2] for r in MATCH_TABLE])
def test_match_table(tree, expected):
    assert compile_tree(tree).matches(ALERT) is expected
    assert matches(tree, ALERT) is expected


ERROR_TABLE = [
    ({"a": 1}, "filters: must be a list of condition groups (OR of AND lists), got dict"),
    ([C("title", "exists")], "filters[0]: a group must be a non-empty list of conditions"),
    ([[C("title", "exists")], []], "filters[1]: a group must be a non-empty list of conditions"),
    ([["title"]], "filters[0][0]: a condition must be an object, got str"),
    ([[C("title", "exists")], [C("host", "equals", "x")]],
     "filters[1][0].field: unknown field 'host' (expected title, description, severity, status, integration_id, "
     "channel_id, labels.<key> or fields.<name>)"),
    ([[C("labels.", "exists")]], "filters[0][0].field: unknown field 'labels.'"),
    ([[{"op": "exists"}]], "filters[0][0].field: unknown field None"),
    ([[C("title", "like", "x")]], "filters[0][0].op: unknown operator 'like' (expected one of equals, not_equals,"),
    ([[{"field": "title", "op": "equals", "value": ["x"]}]],
     "filters[0][0]: unknown keys ['value'] (expected field, op, values, ignore_case)"),
    ([[{"field": "title", "oper": "IN", "vals": ["x"]}]],
     "filters[0][0]: mixes Vigil keys (field/op/values) with Flashduty keys (key/oper/vals)"),
    ([[C("title", "exists", "x")]], "filters[0][0].values: exists takes no values"),
    ([[C("title", "not_exists", "x")]], "filters[0][0].values: not_exists takes no values"),
    ([[C("title", "equals", "a", "b")]], "filters[0][0].values: equals takes exactly one value (use in for several)"),
    ([[C("title", "not_equals")]], "filters[0][0].values: not_equals takes exactly one value (use not_in for several)"),
    ([[C("title", "in")]], "filters[0][0].values: in needs at least one value"),
    ([[C("title", "regex")]], "filters[0][0].values: regex needs at least one value"),
    ([[C("title", "in", *map(str, range(MAX_VALUES + 1)))]], "filters[0][0].values: in takes at most 1000 values"),
    ([[C("labels.cpu", "gt", "1", "2")]], "filters[0][0].values: gt takes exactly one number"),
    ([[C("labels.cpu", "le")]], "filters[0][0].values: le takes exactly one number"),
    ([[C("labels.cpu", "gt", "ninety")]], "filters[0][0].values[0]: gt needs a number, got 'ninety'"),
    ([[C("labels.cpu", "ge", "nan")]], "filters[0][0].values[0]: ge needs a number, got 'nan'"),
    ([[C("labels.cpu", "lt", "1e999")]], "filters[0][0].values[0]: lt needs a number, got '1e999'"),
    ([[C("title", "exists"), C("title", "regex", "(")]], "filters[0][1].values[0]: invalid regex '(': missing )"),
    ([[C("title", "regex", "ok", r"(a)\1")]], r"filters[0][0].values[1]: invalid regex '(a)\\1': invalid escape"),
    ([[C("title", "not_regex", "(?=x)")]], "filters[0][0].values[0]: invalid regex '(?=x)': invalid perl operator"),
    ([[C("title", "regex", "a" * 1025)]], "filters[0][0].values[0]: regex longer than 1024 characters"),
    ([[C("title", "regex", "\ud800")]], "filters[0][0].values[0]: invalid regex '\\ud800': not valid Unicode"),
    ([[C("labels.ip", "cidr", "10.0.0.0/8", "10.0.0.0/33")]], "filters[0][0].values[1]: invalid CIDR '10.0.0.0/33'"),
    ([[{"field": "title", "op": "in", "values": "abc"}]], "filters[0][0].values: must be a list of strings, got str"),
    ([[C("title", "in", {"a": 1})]], "filters[0][0].values[0]: must be a string, got dict"),
    ([[C("title", "in", True)]], "filters[0][0].values[0]: must be a string, got bool"),
    ([[C("title", "in", "a") | {"ignore_case": "yes"}]], "filters[0][0].ignore_case: must be true or false"),
    ([[FD("title", "EQ", "x")]], "filters[0][0].oper: unknown operator 'EQ' (expected IN or NOTIN)"),
    ([[FD("foo", "IN", "x")]], "filters[0][0].key: unknown field 'foo'"),
    ([[FD("title", "IN")]], "filters[0][0].vals: IN needs at least one value"),
    ([[{"key": "title", "oper": "IN"}]], "filters[0][0].vals: must be a list of strings, got NoneType"),
    ([[FD("title", "IN", "ok", "/(/")]], "filters[0][0].vals[1]: invalid regex '(': missing )"),
    ([[FD("labels.cpu", "IN", "num:eq:5")]], "filters[0][0].vals[0]: expected num:gt|ge|lt|le:<number>, got 'num:eq:5'"),
    ([[FD("labels.cpu", "NOTIN", "num:gt:x")]], "filters[0][0].vals[0]: gt needs a number, got 'x'"),
    ([[FD("labels.ip", "IN", "cidr:nope")]], "filters[0][0].vals[0]: invalid CIDR 'nope'"),
    ([[FD("title", "IN", "x") | {"extra": 1}]], "filters[0][0]: unknown keys ['extra'] (expected key, oper, vals)"),
]


@pytest.mark.parametrize("tree, message", ERROR_TABLE, ids=[m.split(": ", 1)[1][:40] for _, m in ERROR_TABLE])
def test_validation_errors_name_the_path(tree, message):
    with pytest.raises(ConditionError) as exc:
        compile_tree(tree)
    assert str(exc.value).startswith(message)


def test_error_path_uses_the_callers_prefix():
    with pytest.raises(ConditionError, match=re.escape("cases[2].if[0][0].field: unknown field 'x'")):
        compile_tree([[C("x", "exists")]], where="cases[2].if")


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)+$", "(x+x+)+y", "^(\\w+\\s?)*$"])
def test_catastrophic_regex_runs_in_linear_time(pattern):
    # Python's re would backtrack for ages on these; RE2 answers at once (a hang would time the suite out).
    adversarial = "a" * 50_000 + "!" if "a" in pattern else ("x" * 50_000 if "x" in pattern else "ab " * 20_000 + "!")
    tree = compile_tree([[C("description", "regex", pattern)]])
    assert tree.matches(subject(description=adversarial)) is False
    assert compile_tree([[FD("description", "NOTIN", f"/{pattern}/")]]).matches(subject(description=adversarial))


@pytest.mark.parametrize("op", ["regex", "wildcard"])
def test_lone_surrogate_in_a_value_does_not_crash_matching(op):
    # json.loads accepts "\ud800", so an alert can carry one; RE2 needs UTF-8.
    tree = compile_tree([[C("title", op, "a*")]])
    assert tree.matches(subject(title="ab\ud800")) is True


@pytest.mark.parametrize("name, expected", [
    ("title", "CPU high on db-1"),
    ("severity", "Critical"),  # enums are read as their value
    ("status", "Warning"),
    ("integration_id", "42"),  # ids are read as text
    ("data_source_id", "42"),  # Flashduty's name for the integration
    ("channel_id", "7"),
    ("labels.service", "db"),
    ("labels.empty", ""),
    ("labels.nope", None),
    ("labels.a.b", None),
])
def test_field_value(name, expected):
    assert field_value(ALERT, name) == expected


def test_subject_leaves_unset_fields_absent_and_labels_as_text():
    subj = subject(labels={"port": 9100, "gone": None}, channel_id=3)
    assert subj == {"channel_id": "3", "labels": {"port": "9100"}}
    assert field_value(subj, "title") is None
    assert field_value({"labels": {"a.b": "x"}}, "labels.a.b") == "x"  # label keys may contain dots


def test_compiled_tree_reports_its_fields_and_is_memoised():
    raw = [[C("labels.service", "equals", "db"), FD("severity", "IN", "Critical")], [C("title", "exists")]]
    tree = compile_tree(raw)
    assert isinstance(tree, CompiledTree)
    assert tree.fields == {"labels.service", "severity", "title"}
    assert compile_tree([[dict(c) for c in g] for g in raw]) is tree  # same content, same compiled tree


# ---- pydantic models ---------------------------------------------------------------------------------------

TREE = TypeAdapter(ConditionTree)


def test_models_validate_both_forms_and_compile_like_dicts():
    raw = [[C("labels.cpu", "gt", 90), FD("data_source_id", "IN", 42)], [C("labels.ip", "cidr", "10.0.0.0/24")]]
    parsed = TREE.validate_python(raw)
    assert isinstance(parsed[0][0], Condition) and parsed[0][0].values == ["90"]
    assert isinstance(parsed[0][1], FlashdutyCondition) and parsed[0][1].vals == ["42"]
    assert compile_tree(parsed).matches(ALERT) is compile_tree(raw).matches(ALERT) is True
    assert TREE.validate_json(TREE.dump_json(parsed)) == parsed


@pytest.mark.parametrize("raw, message", [
    ([[C("title", "regex", "(")]], "values[0]: invalid regex '(': missing )"),
    ([[C("labels.cpu", "gt", "x")]], "values[0]: gt needs a number, got 'x'"),
    ([[C("title", "exists", "x")]], "values: exists takes no values"),
    ([[C("host", "exists")]], "field: unknown field 'host'"),
    ([[C("title", "like", "x")]], "Input should be 'equals', 'not_equals'"),
    ([[FD("title", "EQ", "x")]], "Input should be 'IN' or 'NOTIN'"),
    ([[FD("labels.ip", "IN", "cidr:x")]], "vals[0]: invalid CIDR 'x'"),
    ([[]], "List should have at least 1 item"),
    ([[{"field": "title", "op": "exists", "vals": []}]], "Extra inputs are not permitted"),
])
def test_models_reject_bad_conditions(raw, message):
    with pytest.raises(ValidationError) as exc:
        TREE.validate_python(raw)
    assert message in str(exc.value)


def test_models_publish_a_json_schema_with_both_forms():
    class Rule(BaseModel):
        filters: ConditionTree = []

    schema = Rule.model_json_schema()
    assert set(schema["$defs"]) == {"Condition", "FlashdutyCondition"}
    assert "labels" in schema["$defs"]["Condition"]["properties"]["field"]["pattern"]
    assert schema["$defs"]["FlashdutyCondition"]["properties"]["oper"]["enum"] == ["IN", "NOTIN"]
    assert Rule().filters == [] and compile_tree(Rule().filters).matches(ALERT)


# ---- properties ----------------------------------------------------------------------------------------

values = st.text(max_size=12)
plain = st.text(max_size=12).filter(lambda s: "*" not in s and "?" not in s and not s.startswith(("/", "num:",
                                                                                                  "cidr:")))


@given(values, values)
def test_equals_matches_iff_the_value_is_equal(x, value):
    assert compile_tree([[C("labels.k", "equals", x)]]).matches(subject(labels={"k": value})) is (value == x)
    assert compile_tree([[C("labels.k", "not_equals", x)]]).matches(subject(labels={"k": value})) is (value != x)


@given(plain, values)
def test_wildcard_without_specials_is_equals(x, value):
    assert compile_tree([[C("title", "wildcard", x)]]).matches(subject(title=value)) is (value == x)


@given(st.lists(plain, min_size=1, max_size=4), st.one_of(st.none(), values))
def test_flashduty_exact_values_agree_with_native_in(vals, value):
    subj = subject(labels={} if value is None else {"k": value})
    for fd, native in (("IN", "in"), ("NOTIN", "not_in")):
        assert (compile_tree([[FD("labels.k", fd, *vals)]]).matches(subj)
                is compile_tree([[C("labels.k", native, *vals)]]).matches(subj))


@given(values, st.one_of(st.none(), values))
def test_flashduty_regex_agrees_with_native_regex(text, value):
    pattern = re.escape(text)
    subj = subject(title=value)
    native = compile_tree([[C("title", "regex", pattern)]]).matches(subj)
    assert compile_tree([[FD("title", "IN", f"/{pattern}/")]]).matches(subj) is native
    assert native is (value is not None and text in value)


@given(st.lists(st.sampled_from(["db", "db*", "/^d/", "*", "num:gt:1", "cidr:10.0.0.0/8", "w?b"]), min_size=1),
       st.one_of(st.none(), st.sampled_from(["db", "web", "5", "10.1.2.3", "", "dbx"])))
def test_notin_is_the_negation_of_in(vals, value):
    subj = subject(labels={} if value is None else {"k": value})
    assert (compile_tree([[FD("labels.k", "NOTIN", *vals)]]).matches(subj)
            is not compile_tree([[FD("labels.k", "IN", *vals)]]).matches(subj))
