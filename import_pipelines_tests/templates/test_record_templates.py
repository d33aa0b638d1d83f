"""Records entities in templates: derived entities, per-entity source settings, incremental reads and
deletion rules are validated with the YAML path of every problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from import_pipelines.components.profile import ImportProfile
from import_pipelines.components.source_deletions import deletion_rules
from import_pipelines.pipeline.record_reads import reads_shared
from import_pipelines.templates.loader import TemplateError, load_template, parse_template

BASE: dict[str, Any] = {"name": "probe", "source_system": "probe", "entities": {
    "cases": {"target": "cases", "source_id": "record",
              "records": {"source": {"table": "Cases"}, "incremental": True,
                          "inputs": {"record": {"from": "_record_id"}, "who": {"from": "Offender"}}},
              "fields": {"record": "r.record", "title": "r.who"}},
    "people": {"target": "people", "source_id": "named_on", "records": {"from_entity": "cases"},
               "fields": {"named_on": "r.record", "name": "r.who"}}}}


def edited(edit) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    edit(data)
    return data


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(TemplateError) as caught:
        parse_template(data)
    return caught.value.problems


def test_a_derived_entity_reads_the_inputs_of_the_entity_it_is_derived_from() -> None:
    template = parse_template(BASE)
    assert template.read_owner("people") == "cases" and template.read_owner("cases") == "cases"
    assert template.read_consumers("cases") == ["cases", "people"]
    assert list(template.record_inputs("people")) == ["record", "who"]
    unknown = edited(lambda d: d["entities"]["people"]["fields"].update(name="r.whom"))
    assert problems(unknown) == [("entities.people.fields.name", "r.whom is not among the inputs (record, who)")]


@pytest.mark.parametrize(("edit", "path", "rule"), [
    (lambda d: d["entities"]["people"]["records"].update(from_entity="casez"), "entities.people.records.from_entity",
     "unknown entity 'casez' (entities: cases, people)"),
    (lambda d: d["entities"]["people"]["records"].update(from_entity="people"), "entities.people.records.from_entity",
     "an entity cannot be derived from its own records"),
    (lambda d: d["entities"].update(more={"target": "more", "source_id": "x", "records": {"from_entity": "people"},
                                          "fields": {"x": "r.record"}}),
     "entities.more.records.from_entity",
     "entity 'people' is itself derived from 'cases'; derive from 'cases' directly"),
    (lambda d: d["entities"]["cases"].update(records=None, query={"base": {"table": "c", "alias": "c"}},
                                             fields={"record": "c.id", "title": "c.t"}),
     "entities.people.records.from_entity", "entity 'cases' reads a query, not records; derive from a records entity"),
])
def test_a_derived_entity_must_name_an_entity_with_a_read_of_its_own(edit, path: str, rule: str) -> None:
    assert (path, rule) in problems(edited(edit))


@pytest.mark.parametrize(("edit", "path", "rule"), [
    (lambda d: d["entities"]["people"]["records"].update(incremental=True, inputs={"x": {}}),
     "entities.people.records", "records derived from_entity 'cases' are that entity's read: they take no inputs,"
                                " incremental of their own"),
    (lambda d: d["entities"]["cases"]["records"].update(source={"kind": "http"}), "entities.cases.records.source",
     "source: the kind of source is the profile's; an entity only narrows it (table, view, formula, fields,"
     " modified_field, ...)"),
    (lambda d: d["entities"]["cases"]["records"].pop("inputs"), "entities.cases.records",
     "records need inputs (the values a source provides), or from_entity to derive the entity from another entity's"
     " records"),
    (lambda d: d["entities"]["cases"].update(on_source_delete="deactivate"), "entities.cases.on_source_delete",
     "deactivate needs the column that marks a row inactive (column: active, value: false)"),
    (lambda d: d["entities"]["people"]["records"].update(where=["r.whom IS NOT NULL"]),
     "entities.people.records.where[0]", "r.whom is not among the inputs (record, who)"),
    (lambda d: d["entities"]["people"]["records"].update(where=["r.who IN (SELECT 1)"]),
     "entities.people.records.where[0]", "'r.who IN (SELECT 1)' is not a scalar expression: it contains a sub-query"),
])
def test_records_settings_are_checked_with_their_path(edit, path: str, rule: str) -> None:
    assert (path, rule) in problems(edited(edit))


def test_only_a_records_entity_takes_a_deletion_rule() -> None:
    data = {"name": "q", "source_system": "q", "entities": {"t": {
        "target": "t", "source_id": "id", "query": {"base": {"table": "t", "alias": "t"}}, "fields": {"id": "t.id"},
        "on_source_delete": "delete"}}}
    assert problems(data) == [("entities.t", "on_source_delete needs a records entity: disappeared records are found"
                                             " from a complete read of a record source")]


def test_the_profile_overrides_the_templates_deletion_rule() -> None:
    template = load_template("airtable_cases")
    rules = deletion_rules(ImportProfile(name="p", template="airtable_cases", on_source_delete={"cases": "delete"}),
                           template)
    assert {name: rule.action for name, rule in rules.items()} == {"offenders": "leave", "cases": "delete",
                                                                   "notices": "delete"}
    with pytest.raises(ValueError, match="on_source_delete names 'case', not entities of template airtable_cases"):
        deletion_rules(ImportProfile(name="p", template="airtable_cases", on_source_delete={"case": "delete"}),
                       template)
    with pytest.raises(ValueError, match=r"entities\.offenders\.on_source_delete\.column"):
        deletion_rules(ImportProfile(name="p", template="airtable_cases", on_source_delete={"offenders": "deactivate"}),
                       template)


def test_which_records_entities_read_through_a_registered_read() -> None:
    template = parse_template(BASE)
    assert reads_shared(template, "people", record_source={"kind": "file", "path": "x.csv"})
    plain = parse_template(edited(lambda d: (d["entities"].pop("people"),
                                             d["entities"]["cases"]["records"].update(incremental=False))))
    assert not reads_shared(plain, "cases", record_source={"kind": "file", "path": "x.csv"})
    assert reads_shared(plain, "cases", record_source={"kind": "airtable", "base": "app1"})
    assert reads_shared(plain, "cases", record_source={"kind": "file", "path": "x.csv"}, on_source_delete="delete")


def test_an_incremental_entity_needs_a_source_that_names_its_mark() -> None:
    from import_pipelines.pipeline.record_reads import check_incremental
    from import_pipelines.sources import SourceError

    check_incremental("cases", records_source={"kind": "airtable", "modified_field": "Last Modified"}, incremental=True)
    check_incremental("cases", records_source={"kind": "file"}, incremental=False)
    with pytest.raises(SourceError, match="its source names no modified_field"):
        check_incremental("cases", records_source={"kind": "airtable", "base": "app1"}, incremental=True)
    with pytest.raises(SourceError, match="names no since_param and no modified_path"):
        check_incremental("items", records_source={"kind": "http", "url": "https://api.example.org"}, incremental=True)
    with pytest.raises(SourceError, match=r"entities\.people\.records\.incremental.*a file source cannot be asked"):
        check_incremental("people", records_source={"kind": "file"}, incremental=True)
