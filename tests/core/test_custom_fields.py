"""Custom fields, pure: what a value of each type may be, what an incident shows, and how conditions read
`fields.<name>` (issue 13 item 8)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from core.conditions import compile_tree, subject
from core.custom_fields import (
    FieldSpec,
    check_value,
    display,
    effective,
    filter_value,
    from_positions,
    positions_of,
)
from core.errors import InvalidInput

IMPACT = SimpleNamespace(name="impact", type="single_select", options=["High", "Medium", "Low"], default_value=None)
SYSTEMS = SimpleNamespace(name="systems", type="multi_select", options=["db", "api", "web"], default_value=None)
CUSTOMER = SimpleNamespace(name="customer", type="checkbox", options=[], default_value=False)
NOTE = SimpleNamespace(name="note", type="text", options=[], default_value=None)


@pytest.mark.parametrize(("definition", "value", "stored"), [
    (IMPACT, "High", "High"),
    (IMPACT, None, None),
    (SYSTEMS, ["web", "db"], ["db", "web"]),  # the definition's order, whatever order they were picked in
    (SYSTEMS, ["db", "db"], ["db"]),
    (SYSTEMS, [], None),  # nothing picked unsets it
    (CUSTOMER, True, True),
    (CUSTOMER, False, False),
    (NOTE, "  rollback in progress ", "rollback in progress"),
    (NOTE, "   ", None),
])
def test_a_value_is_stored_as(definition, value, stored) -> None:
    assert check_value(definition, value) == stored


@pytest.mark.parametrize(("definition", "value", "problem"), [
    (IMPACT, "Huge", "value: 'Huge' is not an option of impact (options: High, Medium, Low)"),
    (IMPACT, ["High"], "value: impact is a single select; give one of its options as a string, not a list"),
    (IMPACT, 1, "not a number"),
    (SYSTEMS, "db", "value: systems is a multi select; give a list of its options"),
    (SYSTEMS, ["db", "cache"], "value: 'cache' is not an option of systems"),
    (SYSTEMS, ["db", 3], "give a list of its options"),
    (CUSTOMER, "yes", "value: customer is a checkbox; give true or false, not a string"),
    (CUSTOMER, 1, "give true or false, not a number"),
    (NOTE, True, "value: note is a text field; give a string, not true/false"),
    (NOTE, "x" * 1001, "value: note takes at most 1000 characters"),
])
def test_a_bad_value_is_refused_naming_the_field_and_the_problem(definition, value, problem) -> None:
    with pytest.raises(InvalidInput, match=problem.replace("(", r"\(").replace(")", r"\)")):
        check_value(definition, value)


def test_effective_values_are_the_set_ones_else_the_defaults_in_definition_order() -> None:
    defs = [IMPACT, SYSTEMS, CUSTOMER, NOTE]
    assert effective(defs, {}) == {"customer": False}
    assert effective(defs, {"note": "x", "impact": "Low", "gone": "kept in storage, not shown"}) == {
        "impact": "Low", "customer": False, "note": "x"}
    assert list(effective(defs, {"note": "x", "impact": "Low"})) == ["impact", "customer", "note"]
    # an option removed from the definition no longer shows; the default takes its place
    assert effective([IMPACT, CUSTOMER], {"impact": "Gone", "customer": "not a bool"}) == {"customer": False}


@pytest.mark.parametrize(("value", "words"), [
    ("High", "High"), (["db", "web"], "db, web"), (True, "Yes"), (False, "No"), (None, "—"), ([], "—"),
])
def test_display(value, words) -> None:
    assert display(value) == words


@pytest.mark.parametrize(("spec", "problem"), [
    ({"name": "Impact", "display_name": "Impact", "type": "text"}, "name"),
    ({"name": "9lives", "display_name": "x", "type": "text"}, "name"),
    ({"name": "impact", "display_name": " ", "type": "text"}, "display_name"),
    ({"name": "impact", "display_name": "Impact", "type": "dropdown"}, "type"),
    ({"name": "impact", "display_name": "Impact", "type": "single_select"}, "needs at least one option"),
    ({"name": "impact", "display_name": "Impact", "type": "text", "options": ["a"]}, "has no options"),
    ({"name": "impact", "display_name": "Impact", "type": "multi_select", "options": ["a", "a "]}, "must not repeat"),
    ({"name": "impact", "display_name": "Impact", "type": "single_select", "options": ["a", ""]}, "option 1"),
    ({"name": "impact", "display_name": "Impact", "type": "single_select", "options": ["a"], "default_value": "b"},
     "default_value: 'b' is not an option of impact"),
    ({"name": "impact", "display_name": "Impact", "type": "checkbox", "default_value": "yes"},
     "default_value: impact is a checkbox"),
])
def test_a_bad_definition_is_refused(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        FieldSpec.model_validate(spec)


def test_a_definition_is_cleaned() -> None:
    spec = FieldSpec.model_validate({"name": "systems", "display_name": " Systems ", "type": "multi_select",
                                     "options": [" db", "api "], "default_value": ["api", "db"]})
    assert (spec.display_name, spec.options, spec.default_value) == ("Systems", ["db", "api"], ["db", "api"])


# ---- conditions over fields.<name> -------------------------------------------------------------------

SUBJECT = subject(title="db down", severity="Critical", fields={
    "impact": "High", "systems": ["db", "api"], "customer": True, "empty": [], "note": None})


def vigil(field: str, op: str, *values: str) -> list[list[dict[str, Any]]]:
    return [[{"field": field, "op": op, "values": list(values)}]]


def flashduty(key: str, oper: str, *vals: str) -> list[list[dict[str, Any]]]:
    return [[{"key": key, "oper": oper, "vals": list(vals)}]]


@pytest.mark.parametrize(("tree", "matched"), [
    (vigil("fields.impact", "equals", "High"), True),
    (vigil("fields.impact", "in", "Medium", "Low"), False),
    (vigil("fields.impact", "not_equals", "Low"), True),
    (vigil("fields.impact", "regex", "^Hi"), True),
    (flashduty("fields.impact", "IN", "High"), True),
    (flashduty("fields.impact", "NOTIN", "High"), False),
    # a multi-select: a positive condition holds when one chosen option matches ...
    (vigil("fields.systems", "in", "db"), True),
    (vigil("fields.systems", "in", "web"), False),
    (vigil("fields.systems", "wildcard", "a*"), True),
    (flashduty("fields.systems", "IN", "api", "web"), True),
    # ... a negated one when none does
    (vigil("fields.systems", "not_in", "web"), True),
    (vigil("fields.systems", "not_in", "db"), False),
    (flashduty("fields.systems", "NOTIN", "api"), False),
    (flashduty("fields.systems", "NOTIN", "web"), True),
    (vigil("fields.systems", "exists"), True),
    (vigil("fields.systems", "not_exists"), False),
    # a checkbox reads true / false
    (vigil("fields.customer", "equals", "true"), True),
    (flashduty("fields.customer", "IN", "false"), False),
    # an empty multi-select, an unset field and an unknown one are all missing
    (vigil("fields.empty", "exists"), False),
    (vigil("fields.empty", "not_in", "db"), True),
    (vigil("fields.note", "exists"), False),
    (vigil("fields.nope", "equals", "x"), False),
    (flashduty("fields.nope", "NOTIN", "x"), True),
    (flashduty("fields.nope", "IN", "*"), False),
    # and with the other fields
    ([[*vigil("fields.impact", "equals", "High")[0], *vigil("severity", "equals", "Critical")[0]]], True),
    ([[*vigil("fields.impact", "equals", "High")[0], *vigil("title", "regex", "api")[0]]], False),
])
def test_conditions_read_custom_fields(tree, matched) -> None:
    assert compile_tree(tree).matches(SUBJECT) is matched


def test_an_alert_subject_has_no_custom_fields() -> None:
    assert "fields" not in subject(title="x")
    assert compile_tree(vigil("fields.impact", "not_exists")).matches(subject(title="x"))


@pytest.mark.parametrize("field", ["fields.", "field.impact", "fields"])
def test_a_bad_custom_field_key_is_refused(field) -> None:
    with pytest.raises(ValueError, match="unknown field"):
        compile_tree(vigil(field, "exists"))


# ---- templates ----------------------------------------------------------------------------------------


def test_templates_see_the_incident_s_fields() -> None:
    from core.templates import TemplateSet, incident_context

    source = ("{{ title }}: impact {{ fields.impact }}, systems {{ fields.systems | join(', ') }}"
              "{% if fields.customer %}, customer facing{% endif %}{{ fields.nope }}")
    ctx = incident_context({"incident_id": 7, "title": "db down", "incident_severity": "Critical",
                            "fields": {"impact": "High", "systems": ["db", "api"], "customer": True}},
                           event_type="i_new", base_url="https://vigil.example.com")
    assert ctx["incident"]["fields"] == ctx["fields"]
    rendered = TemplateSet({("sms", "default"): source}).render("sms", "i_new", ctx)
    assert (rendered.used_fallback, rendered.text) == (False, "db down: impact High, systems db, api, customer facing")
    plain = incident_context({"incident_id": 7, "title": "db down"}, event_type="i_new", base_url="https://x")
    assert TemplateSet({("sms", "default"): source}).render("sms", "i_new", plain).text == "db down: impact , systems"


# ---- what a card's select chose ----------------------------------------------------------------------


@pytest.mark.parametrize(("definition", "positions", "value"), [
    (IMPACT, [1], "Medium"),
    (IMPACT, [], None),
    (SYSTEMS, [2, 0, 2], ["web", "db"]),
    (SYSTEMS, [], []),
    (CUSTOMER, [0], True),
    (CUSTOMER, [], False),
])
def test_from_positions(definition, positions, value) -> None:
    assert from_positions(definition, positions) == value


@pytest.mark.parametrize(("definition", "positions", "problem"), [
    (IMPACT, [3], "impact: that choice is no longer an option; refresh the card"),
    (SYSTEMS, [0, -1], "that choice is no longer an option"),
    (NOTE, [0], "note: a text field is set on the incident page or through the Open API"),
])
def test_from_positions_refuses(definition, positions, problem) -> None:
    with pytest.raises(InvalidInput, match=problem):
        from_positions(definition, positions)


@pytest.mark.parametrize(("definition", "value", "positions"), [
    (IMPACT, "Low", (2,)), (IMPACT, None, ()), (IMPACT, "Gone", ()),
    (SYSTEMS, ["web", "db"], (0, 2)), (CUSTOMER, True, (0,)), (CUSTOMER, False, ()),
])
def test_positions_of(definition, value, positions) -> None:
    assert positions_of(definition, value) == positions


@pytest.mark.parametrize(("detail", "words"), [
    ({"field": "impact", "display_name": "Impact", "from": None, "to": "High"},
     "Custom field Impact set to High by Ann via Slack"),
    ({"field": "systems", "display_name": "Systems", "to": ["db", "web"]}, "Custom field Systems set to db, web by Ann via Slack"),
    ({"field": "customer", "display_name": "Customer facing", "to": False},
     "Custom field Customer facing set to No by Ann via Slack"),
    ({"field": "impact", "display_name": "Impact", "from": "High", "to": None}, "Custom field Impact cleared by Ann via Slack"),
])
def test_the_timeline_says_what_was_set(detail, words) -> None:
    from bot.cards.timeline_words import headline

    assert headline("i_r_field", 1, "slack", detail, {1: "Ann"}) == words


# ---- incident list filters -----------------------------------------------------------------------------

LOW_BY_DEFAULT = SimpleNamespace(name="impact", type="single_select", options=["High", "Low"], default_value="Low")
DB_BY_DEFAULT = SimpleNamespace(name="systems", type="multi_select", options=["db", "api"], default_value=["db"])


@pytest.mark.parametrize(("definition", "raw", "expected"), [
    (IMPACT, "High", ("High", False)),
    (LOW_BY_DEFAULT, "Low", ("Low", True)),
    (LOW_BY_DEFAULT, "High", ("High", False)),
    (DB_BY_DEFAULT, "db", ("db", True)),
    (DB_BY_DEFAULT, "api", ("api", False)),
    (CUSTOMER, "false", (False, True)),  # its default is false
    (CUSTOMER, "true", (True, False)),
    (NOTE, "anything", ("anything", False)),
])
def test_filter_value(definition, raw, expected) -> None:
    assert filter_value(definition, raw) == expected


@pytest.mark.parametrize(("definition", "raw", "problem"), [
    (IMPACT, "Huge", "fields: impact: 'Huge' is not one of its options"),
    (CUSTOMER, "yes", "fields: customer is a checkbox; filter it with true or false"),
])
def test_filter_value_refuses(definition, raw, problem) -> None:
    with pytest.raises(InvalidInput, match=problem):
        filter_value(definition, raw)
