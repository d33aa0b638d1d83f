"""Template loading: the shipped templates validate; a bad one is refused naming file, YAML path and rule."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from import_pipelines.templates.loader import TemplateError, load_template, parse_template, shipped_templates
from import_pipelines.templates.model import Template

VALID: dict[str, Any] = {
    "name": "probe", "source_system": "probe", "entities": {
        "people": {"target": "customer_users", "source_id": "external_id",
                   "query": {"base": {"table": "customers", "alias": "c"},
                             "joins": [{"table": "emails", "alias": "e", "on": {"e.customer_id": "c.id"}}]},
                   "fields": {"external_id": "c.id", "email": "e.email"}},
        "tickets": {"target": "tickets", "source_id": "external_id",
                    "query": {"base": {"table": "conversations", "alias": "cv"}},
                    "fields": {"external_id": "cv.id", "customer_external_id": "cv.customer_id"},
                    "references": {"customer_id": {"entity": "people", "field": "customer_external_id"}}}}}


def write(tmp_path: Path, data: Any, name: str = "probe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def refused(tmp_path: Path, data: Any) -> TemplateError:
    """Load ``data`` from a YAML file and return the error; the message names that file on every line."""
    path = write(tmp_path, data)
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    error = caught.value
    assert error.source == str(path)
    lines = str(error).splitlines()[1:]
    assert len(lines) == len(error.problems) >= 1
    assert all(line.strip().startswith(f"{path}: ") for line in lines)
    return error


def changed(edit) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    edit(data)
    return data


@pytest.mark.parametrize("name", shipped_templates())
def test_shipped_templates_validate(name: str) -> None:
    template = load_template(name)
    assert isinstance(template, Template) and template.name == name


def test_freescout_template_shape() -> None:
    template = load_template("freescout")
    assert list(template.entities) == ["accounts", "customer_users", "agents", "tickets", "time_entries"]
    assert template.source_system == "freescout" and template.mode == "upsert"
    refs = {(name, col): ref.entity for name, e in template.entities.items() for col, ref in e.references.items()}
    assert refs == {("customer_users", "account_id"): "accounts", ("tickets", "customer_id"): "customer_users",
                    ("tickets", "agent_id"): "agents", ("time_entries", "ticket_id"): "tickets",
                    ("time_entries", "agent_id"): "agents"}
    # every entity comes before the entities that reference it
    order = list(template.entities)
    assert all(order.index(target) < order.index(name) for (name, _), target in refs.items())


def test_a_path_to_a_yaml_file_loads_like_a_shipped_name(tmp_path: Path) -> None:
    assert load_template(write(tmp_path, VALID)).entities["tickets"].references["customer_id"].entity == "people"
    assert parse_template(VALID).name == "probe"


def test_unknown_template_name_lists_the_shipped_ones() -> None:
    with pytest.raises(TemplateError, match="no such template; shipped: .*freescout"):
        load_template("no_such_template")


def test_unknown_entity_in_a_reference(tmp_path: Path) -> None:
    error = refused(tmp_path, changed(lambda d: d["entities"]["tickets"]["references"]["customer_id"].update(
        entity="contacts")))
    assert len(error.problems) == 1
    assert error.problems[0][1].startswith("unknown entity 'contacts' (entities: ")


def test_unknown_entity_in_a_reference_names_the_reference_path(tmp_path: Path) -> None:
    error = refused(tmp_path, changed(lambda d: d["entities"]["tickets"]["references"]["customer_id"].update(
        entity="contacts")))
    assert error.problems[0][0].startswith("entities.tickets.references.customer_id")


def test_field_with_two_sources(tmp_path: Path) -> None:
    error = refused(tmp_path, changed(lambda d: d["entities"]["people"]["fields"].update(
        email={"column": "e.email", "expression": "lower(e.email)"})))
    assert error.problems == [("entities.people.fields.email", "a field needs exactly one of column, concat, case,"
                               " json, expression, value, coalesce (got column, expression)")]
    assert "probe.yaml: entities.people.fields.email: a field needs exactly one of" in str(error)


def test_field_path_keeps_names_that_start_with_str(tmp_path: Path) -> None:
    error = refused(tmp_path, changed(lambda d: d["entities"]["people"]["fields"].update(
        street={"column": "c.street", "value": "x"})))
    assert error.problems[0][0] == "entities.people.fields.street"


def test_unknown_mode(tmp_path: Path) -> None:
    error = refused(tmp_path, changed(lambda d: (d.update(mode="merge"), d["entities"]["tickets"].update(mode="sync"))))
    rule = "Input should be 'create_only', 'update_only', 'upsert' or 'create_new'"
    assert sorted(error.problems) == [("entities.tickets.mode", rule), ("mode", rule)]


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    text = "name: probe\nsource_system: probe\nentities:\n  people:\n    target: [customer_users\n    fields: {}\n"
    error = refused(tmp_path, text)
    [(where, rule)] = error.problems
    assert where == "line 6, column 11"
    assert rule.startswith("not valid YAML: expected ',' or ']'")


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    error = refused(tmp_path, "- name\n- entities\n")
    assert error.problems == [("", "a template is a mapping with name, source_system and entities")]
    assert "probe.yaml: <root>: a template is a mapping" in str(error)


@pytest.mark.parametrize(("flt", "rule"), [
    ({"column": "c.id", "op": "in", "value": 3}, "in needs a non-empty list value"),
    ({"column": "c.id", "op": "not_in", "value": []}, "not_in needs a non-empty list value"),
    ({"column": "c.id", "op": "between", "value": [1]}, "between needs a list of two values [low, high]"),
    ({"column": "c.id", "op": "=", "value": [1, 2]}, "= needs one scalar value"),
    ({"column": "c.id", "op": "is_null", "value": 1}, "is_null takes no value"),
])
def test_filter_value_must_fit_the_op(tmp_path: Path, flt: dict[str, Any], rule: str) -> None:
    filters = [{"column": "c.x", "op": "is_null"}, flt]
    error = refused(tmp_path, changed(lambda d: d["entities"]["people"]["query"].update(filters=filters)))
    assert error.problems == [("entities.people.query.filters[1]", rule)]


def test_unknown_alias_in_a_join(tmp_path: Path) -> None:
    error = refused(tmp_path, changed(lambda d: d["entities"]["people"]["query"]["joins"][0].update(
        on={"e.customer_id": "cust.id"})))
    assert error.problems == [("entities.people.query",
                               "column 'cust.id' uses unknown table alias 'cust' (known: c, e)")]


def test_unknown_alias_in_a_field(tmp_path: Path) -> None:
    error = refused(tmp_path, changed(lambda d: d["entities"]["people"]["fields"].update(email="x.email")))
    assert error.problems == [("entities.people.fields.email",
                               "column 'x.email' uses unknown table alias 'x' (known: c, e)")]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["entities"]["people"]["fields"]["email"] = "x.email"
        d["entities"]["tickets"]["fields"]["subject"] = {"expression": "pg_sleep(1)"}

    error = refused(tmp_path, changed(edit))
    assert [p for p, _ in error.problems] == ["entities.people.fields.email", "entities.tickets.fields.subject"]


def test_model_level_rules(tmp_path: Path) -> None:
    cases = [
        (lambda d: d["entities"]["people"].update(source_id="id"),
         ("entities.people", "source_id 'id' is not one of the fields")),
        (lambda d: d["entities"]["tickets"]["references"]["customer_id"].update(field="nope"),
         ("entities.tickets", "reference 'customer_id' uses field 'nope', which is not one of the fields")),
        (lambda d: d["entities"]["people"]["query"]["joins"][0].update(alias="c"),
         ("entities.people.query", "alias 'c' is used twice")),
        (lambda d: d["entities"]["people"]["query"]["joins"][0].update(on={"e.customer_id": "id"}),
         ("entities.people.query.joins[0].on", "column reference 'id' must be written alias.column")),
        (lambda d: d["entities"]["people"].update(colour="red"),
         ("entities.people.colour", "Extra inputs are not permitted")),
    ]
    for edit, problem in cases:
        assert refused(tmp_path, changed(edit)).problems == [problem]


def test_match_fields_and_the_rules_that_use_them(tmp_path: Path) -> None:
    def with_rule(**rule: Any):
        def edit(d: dict[str, Any]) -> None:
            people = d["entities"]["people"]
            people["fields"]["phone"] = "c.phone"
            people["match_fields"] = {"all_emails": {"column": "e.email"}}
            people["dedupe"] = {"strategy": "fuzzy", "primary": ["email", "phone"], **rule}
        return edit

    # a valid one loads: the match field is staged, never written
    template = parse_template(changed(with_rule(all_values={"email": "all_emails"}, threshold=98,
                                                 review_threshold=60)))
    people = template.entities["people"]
    assert list(people.staged_fields) == ["external_id", "email", "phone", "all_emails"]
    assert "all_emails" not in people.fields
    cases = [
        (with_rule(all_values={"email": "every_email"}),
         ("entities.people", "dedupe all_values uses every_email, which is not among the match_fields")),
        (with_rule(all_values={"email": "phone"}),
         ("entities.people.dedupe", "all_values maps 'email' to 'phone', which is a compared field")),
        (with_rule(all_values={"company": "all_emails"}),
         ("entities.people.dedupe", "all_values names 'company', which is not a primary or secondary field")),
        (with_rule(threshold=90, review_threshold=95),
         ("entities.people.dedupe", "review_threshold (95) must be below threshold (90)")),
        (lambda d: (with_rule()(d), d["entities"]["people"]["match_fields"].update(email={"column": "e.email"})),
         ("entities.people", "match_fields email are also fields; a match field is staged, never written")),
        (lambda d: (with_rule()(d), d["entities"]["people"]["match_fields"].update(bad={"expression": "pg_sleep(1)"})),
         ("entities.people.match_fields.bad", "pg_sleep()")),
    ]
    for edit, (path, rule) in cases:
        problems = refused(tmp_path, changed(edit)).problems
        assert len(problems) == 1 and problems[0][0] == path and rule in problems[0][1], problems
