"""The query compiler, executed against a real source database: field specs, joins, filters, safety."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from import_pipelines.db import connect, drop_database, ensure_database
from import_pipelines.query.compile import compile_query
from import_pipelines.templates.loader import TemplateError, load_template, parse_template
from import_pipelines.templates.model import FieldSpec, Query

INJECTION = "'; DROP TABLE customers; --"

SOURCE_DDL = """
CREATE TABLE customers (id bigint PRIMARY KEY, first_name text, last_name text, phones text, status smallint,
                        created_at timestamp, seconds integer, code text);
CREATE TABLE emails (id bigint PRIMARY KEY, customer_id bigint, email text, type smallint);
CREATE TABLE parents (id bigint PRIMARY KEY, name text);
CREATE TABLE children (id bigint PRIMARY KEY, parent_id bigint, kind text);
CREATE TABLE items (id bigint PRIMARY KEY, name text, n integer, tag text);
CREATE TABLE docs (id bigint PRIMARY KEY, body text);
"""

CUSTOMERS = [
    (1, "Ann", "Lee", '[{"value": "+1 555 0100", "type": 1}, {"value": "+1 555 0199", "type": 4}]', 1,
     "2024-03-05 14:07:09", 89, " 42 "),
    (2, "Bob", None, "[]", 2, "2024-12-31 23:59:59", 90, "x"),
    (3, " Cy ", "", None, 3, "2020-02-29 00:00:00", 29, None),
    (4, None, None, '[{"value":', 9, "2021-01-01 08:00:00", 30, "+1 (555) 010"),
    (5, "", "  ", '{"value": "x"}', None, None, None, ""),
    (6, "Eve", INJECTION, '[{"value": "  "}]', 1, "2022-06-01 12:00:00", 150, "-7"),
]
EMAILS = [
    (1, 1, "home1@example.org", 2), (2, 1, "work1@example.org", 1),  # work preferred over the lower id
    (3, 2, "home2@example.org", 2), (4, 2, "other2@example.org", 3),  # other preferred over home
    (5, 4, "w4a@example.org", 1), (6, 4, "w4b@example.org", 1),  # two work emails: the lower id
    (7, 5, "   ", 1), (8, 5, "home5@example.org", 2),  # a blank work email loses to a real home one
]  # customers 3 and 6 have no email
PARENTS = [(1, "p1"), (2, "p2"), (3, "p3")]
CHILDREN = [(11, 1, "a"), (12, 1, "b"), (13, 2, "b"), (14, 99, "a")]  # 14 is an orphan
ITEMS = [(1, "Alpha", 10, "x"), (2, "beta", 20, None), (3, "Gamma", 30, "y"), (4, None, None, "x"),
         (5, "alphabet", 15, "z")]

# keys a template may have to name, a hostile one among them
ODD_KEYS = ['say "hi"', "back\\slash", "$.*", INJECTION]
DOCS = [(1, json.dumps([{key: f"{n}-{k}" for k, key in enumerate(ODD_KEYS)} for n in range(2)]))]

FREESCOUT_EMAIL_ORDER = ["CASE e.type WHEN 1 THEN 0 WHEN 3 THEN 1 ELSE 2 END", "e.id"]


@pytest.fixture(scope="module")
def source(pg_server: str) -> Iterator[str]:
    """One small source database shared by this module (the tests only read it)."""
    name = f"ipt_compile_{uuid.uuid4().hex[:10]}"
    url = ensure_database(pg_server, name)
    try:
        with connect(url) as conn:
            conn.execute(SOURCE_DDL)
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO customers VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", CUSTOMERS)
                cur.executemany("INSERT INTO emails VALUES (%s, %s, %s, %s)", EMAILS)
                cur.executemany("INSERT INTO parents VALUES (%s, %s)", PARENTS)
                cur.executemany("INSERT INTO children VALUES (%s, %s, %s)", CHILDREN)
                cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)", ITEMS)
                cur.executemany("INSERT INTO docs VALUES (%s, %s)", DOCS)
            conn.commit()
        yield url
    finally:
        drop_database(pg_server, name)


def run(url: str, query: dict[str, Any], fields: dict[str, Any], *, server_version: int | None = None) -> list[tuple]:
    """Compile ``query`` with ``fields`` (plain template data) and execute it read-only; rows in output order."""
    with connect(url, read_only=True) as conn:
        specs = {name: FieldSpec.model_validate(spec) for name, spec in fields.items()}
        compiled = compile_query(Query.model_validate(query), specs,
                                 server_version=server_version or conn.info.server_version)
        cur = conn.execute(compiled.statement)
        assert [d.name for d in cur.description] == compiled.columns == list(fields)
        return cur.fetchall()


def by_id(url: str, spec: Any, *, table: str = "customers", alias: str = "c", **kwargs: Any) -> dict[int, Any]:
    """``{id: value}`` of one field spec over every row of ``table``."""
    rows = run(url, {"base": {"table": table, "alias": alias}}, {"id": f"{alias}.id", "value": spec}, **kwargs)
    return dict(rows)


def table_exists(url: str, name: str) -> bool:
    with connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


# --- field specs -----------------------------------------------------------------------------------
def test_direct_column(source: str) -> None:
    assert by_id(source, "c.first_name") == {1: "Ann", 2: "Bob", 3: " Cy ", 4: None, 5: "", 6: "Eve"}


def test_concat_skips_missing_parts_and_is_null_when_all_are_empty(source: str) -> None:
    values = by_id(source, {"concat": ["c.first_name", "c.last_name"]})
    # no trailing space for a NULL, empty or blank last name; NULL when every part is empty
    assert values == {1: "Ann Lee", 2: "Bob", 3: "Cy", 4: None, 5: None, 6: f"Eve {INJECTION}"}
    assert by_id(source, {"concat": ["c.last_name", "c.first_name"], "separator": ", "})[1] == "Lee, Ann"
    assert by_id(source, {"concat": ["c.last_name", "c.first_name"], "separator": ", "})[2] == "Bob"


def test_case_map_compares_as_text_and_falls_back_to_the_default(source: str) -> None:
    mapping = {1: "open", "2": "pending", 3: "closed"}
    assert by_id(source, {"case": {"column": "c.status", "map": mapping, "default": "unknown"}}) == {
        1: "open", 2: "pending", 3: "closed", 4: "unknown", 5: "unknown", 6: "open"}
    # without a default an unmapped (or NULL) value is NULL, never a guess
    assert by_id(source, {"case": {"column": "c.status", "map": mapping}}) == {
        1: "open", 2: "pending", 3: "closed", 4: None, 5: None, 6: "open"}


def test_json_value_takes_the_first_phone_and_malformed_json_gives_null(source: str) -> None:
    with connect(source) as conn:
        version = conn.info.server_version
    if version < 160000:
        pytest.skip("the malformed-JSON guard needs PostgreSQL 16 (pg_input_is_valid)")
    spec = {"json": {"column": "c.phones", "path": [0, "value"]}}
    assert by_id(source, spec) == {1: "+1 555 0100", 2: None, 3: None, 4: None, 5: None, 6: "  "}
    assert by_id(source, {**spec, "transform": ["nullif_empty"]})[6] is None
    assert by_id(source, {"json": {"column": "c.phones", "path": [1, "value"]}})[1] == "+1 555 0199"


def test_json_value_compiled_for_a_pre_16_server_aborts_on_malformed_json(source: str) -> None:
    # without pg_input_is_valid the cast is unguarded: one bad cell fails the whole SELECT
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        by_id(source, {"json": {"column": "c.phones", "path": [0, "value"]}}, server_version=150000)


def test_seconds_to_minutes_rounds_like_postgresql_round(source: str) -> None:
    minutes = by_id(source, {"column": "c.seconds", "transform": ["seconds_to_minutes"]})
    # 89 s is 1 minute (not 0 as integer division gives); 90 s is 1.5 -> 2: numeric round() goes half away from 0
    assert minutes == {1: 1, 2: 2, 3: 0, 4: 1, 5: None, 6: 3}
    with connect(source) as conn:
        assert conn.execute("SELECT round(90::numeric / 60), round(30::numeric / 60), 89 / 60").fetchone() == (2, 1, 1)


def test_date_format(source: str) -> None:
    values = by_id(source, {"column": "c.created_at", "transform": [{"date_format": "YYYY-MM-DD HH24:MI"}]})
    assert values == {1: "2024-03-05 14:07", 2: "2024-12-31 23:59", 3: "2020-02-29 00:00", 4: "2021-01-01 08:00",
                      5: None, 6: "2022-06-01 12:00"}


def test_expression_runs_its_checked_canonical_text(source: str) -> None:
    values = by_id(source, {"expression": "upper(c.first_name) || '#' || c.id"})
    assert values == {1: "ANN#1", 2: "BOB#2", 3: " CY #3", 4: None, 5: "#5", 6: "EVE#6"}


def test_transforms_apply_in_order(source: str) -> None:
    assert by_id(source, {"column": "c.first_name", "transform": ["trim", "upper"]})[3] == "CY"
    assert by_id(source, {"column": "c.first_name", "transform": ["nullif_empty", "lower"]}) == {
        1: "ann", 2: "bob", 3: "cy", 4: None, 5: None, 6: "eve"}
    assert by_id(source, {"column": "c.code", "transform": ["to_integer"]}) == {
        1: 42, 2: None, 3: None, 4: None, 5: None, 6: -7}
    assert by_id(source, {"column": "c.code", "transform": ["digits_only"]}) == {
        1: "42", 2: None, 3: None, 4: "1555010", 5: None, 6: "7"}
    assert by_id(source, {"column": "c.id", "transform": ["to_text"]})[6] == "6"


def test_coalesce_and_constant_value(source: str) -> None:
    spec = {"coalesce": [{"column": "c.last_name", "transform": ["nullif_empty"]},
                         {"column": "c.first_name", "transform": ["nullif_empty"]}, {"value": "(nobody)"}]}
    assert by_id(source, spec) == {1: "Lee", 2: "Bob", 3: "Cy", 4: "(nobody)", 5: "(nobody)", 6: INJECTION}
    assert set(by_id(source, {"value": INJECTION}).values()) == {INJECTION}


# --- joins -----------------------------------------------------------------------------------------
JOIN_CASES = [
    ("inner", None, {(1, 11), (1, 12), (2, 13)}),
    ("left", None, {(1, 11), (1, 12), (2, 13), (3, None)}),
    ("right", None, {(1, 11), (1, 12), (2, 13), (None, 14)}),
    ("full", None, {(1, 11), (1, 12), (2, 13), (3, None), (None, 14)}),
    # the extra condition belongs to ON, so outer joins keep the rows it rejects (with NULLs)
    ("inner", "k.kind = 'a'", {(1, 11)}),
    ("left", "k.kind = 'a'", {(1, 11), (2, None), (3, None)}),
    ("right", "k.kind = 'a'", {(1, 11), (None, 12), (None, 13), (None, 14)}),
    ("full", "k.kind = 'a'", {(1, 11), (2, None), (3, None), (None, 12), (None, 13), (None, 14)}),
    ("left", "k.kind <> p.name", {(1, 11), (1, 12), (2, 13), (3, None)}),  # a condition may use the parent
]


@pytest.mark.parametrize(("join_type", "condition", "expected"), JOIN_CASES)
def test_join_types_with_on_and_condition(source: str, join_type: str, condition: str | None,
                                          expected: set[tuple]) -> None:
    join = {"table": "children", "alias": "k", "type": join_type, "on": {"k.parent_id": "p.id"}}
    if condition:
        join["condition"] = condition
    rows = run(source, {"base": {"table": "parents", "alias": "p"}, "joins": [join]}, {"pid": "p.id", "kid": "k.id"})
    assert len(rows) == len(expected)
    assert set(rows) == expected


def test_on_with_two_column_pairs(source: str) -> None:
    join = {"table": "customers", "alias": "c2", "type": "inner", "on": {"c2.id": "c.id", "c2.status": "c.status"}}
    rows = run(source, {"base": {"table": "customers", "alias": "c"}, "joins": [join]}, {"id": "c.id"})
    assert sorted(r[0] for r in rows) == [1, 2, 3, 4, 6]  # customer 5's NULL status equals nothing


def first_email_query(*, join_type: str = "left", condition: str | None = None) -> dict[str, Any]:
    join: dict[str, Any] = {"table": "emails", "alias": "e", "type": join_type, "on": {"e.customer_id": "c.id"},
                            "first": {"order_by": FREESCOUT_EMAIL_ORDER}}
    if condition:
        join["condition"] = condition
    return {"base": {"table": "customers", "alias": "c"}, "joins": [join]}


def test_first_join_keeps_one_row_per_parent_by_the_order(source: str) -> None:
    rows = run(source, first_email_query(condition="btrim(e.email) <> ''"), {"id": "c.id", "email": "e.email"})
    assert len(rows) == len(CUSTOMERS)  # never a fan-out, never a lost customer
    assert dict(rows) == {
        1: "work1@example.org",  # work preferred over the home address with the lower id
        2: "other2@example.org",  # two emails, one row: other preferred over home
        3: None,  # no email: kept
        4: "w4a@example.org",  # two work emails: the lower id
        5: "home5@example.org",  # the blank work email is excluded by the condition
        6: None,
    }


def test_first_join_without_condition_takes_the_blank_work_email(source: str) -> None:
    rows = dict(run(source, first_email_query(), {"id": "c.id", "email": "e.email"}))
    assert rows[5] == "   " and rows[1] == "work1@example.org" and len(rows) == len(CUSTOMERS)


def test_first_inner_join_drops_parents_without_a_match(source: str) -> None:
    rows = run(source, first_email_query(join_type="inner"), {"id": "c.id", "email": "e.email"})
    assert sorted(r[0] for r in rows) == [1, 2, 4, 5]


def test_first_join_condition_may_not_use_the_parent_alias() -> None:
    # the condition filters the joined table before its first row is picked, where the parent is
    # out of scope: refused when the template is validated, not at run time
    data = template_with_field("c.id")
    data["entities"]["x"]["query"]["joins"] = [{
        "table": "emails", "alias": "e", "on": {"e.customer_id": "c.id"},
        "condition": "e.customer_id = c.id AND btrim(e.email) <> ''", "first": {"order_by": ["e.id"]}}]
    with pytest.raises(TemplateError) as caught:
        parse_template(data)
    [(path, rule)] = caught.value.problems
    assert path == "entities.x.query.joins[0].condition" and rule.endswith("unknown table alias 'c' (known: e)")


# --- every joined row, every element of a JSON array ------------------------------------------------
def collect_query(*, join_type: str = "left", **collect: Any) -> dict[str, Any]:
    return {"base": {"table": "customers", "alias": "c"}, "joins": [{
        "table": "emails", "alias": "e", "type": join_type, "on": {"e.customer_id": "c.id"},
        "condition": "btrim(e.email) <> ''", "collect": {"columns": ["email"], **collect}}]}


def test_collect_gathers_every_joined_row_of_a_parent_into_an_array_in_order(source: str) -> None:
    rows = run(source, collect_query(order_by=["e.type", "e.id"]), {"id": "c.id", "emails": "e.email"})
    assert len(rows) == len(CUSTOMERS)  # one row per parent, however many emails it has
    assert dict(rows) == {
        1: ["work1@example.org", "home1@example.org"],  # by type, then id
        2: ["home2@example.org", "other2@example.org"],
        3: None,  # no email: kept, with no array
        4: ["w4a@example.org", "w4b@example.org"],
        5: ["home5@example.org"],  # the blank one is excluded by the condition
        6: None,
    }
    # inner: parents without a joined row are dropped; several columns, each its own array
    rows = run(source, collect_query(join_type="inner", columns=["email", "type"], order_by=["e.id"]),
               {"id": "c.id", "emails": "e.email", "types": "e.type"})
    assert {r[0]: (r[1], r[2]) for r in rows} == {
        1: (["home1@example.org", "work1@example.org"], [2, 1]), 2: (["home2@example.org", "other2@example.org"], [2, 3]),
        4: (["w4a@example.org", "w4b@example.org"], [1, 1]), 5: (["home5@example.org"], [2])}


def test_collect_is_checked_like_any_template_sql() -> None:
    cases = [
        # the condition and the order run inside the grouped join, where the parent is out of scope
        ({"order_by": ["c.id"]}, {}, "entities.x.query.joins[0].collect.order_by[0]",
         "unknown table alias 'c' (known: e)"),
        ({}, {"condition": "e.customer_id = c.id"}, "entities.x.query.joins[0].condition",
         "unknown table alias 'c' (known: e)"),
        ({"order_by": ["e.id", "pg_sleep(1)"]}, {}, "entities.x.query.joins[0].collect.order_by[1]", "pg_sleep()"),
        ({"order_by": ["e.id; DROP TABLE customers"]}, {}, "entities.x.query.joins[0].collect.order_by[0]",
         "exactly one expression"),
        ({}, {"condition": "e.id IN (SELECT 1)"}, "entities.x.query.joins[0].condition", "sub-query"),
        # collected columns are plain names of the joined table, quoted; nothing else is accepted
        ({"columns": ["e.email"]}, {}, "entities.x.query.joins[0].collect.columns",
         "collect column 'e.email' must be a plain column name (no alias)"),
        ({"columns": ["email) AS x, (SELECT 1"]}, {}, "entities.x.query.joins[0].collect.columns",
         "must be a plain column name"),
        ({"columns": []}, {}, "entities.x.query.joins[0].collect.columns", "at least 1 item"),
        ({}, {"first": {"order_by": ["e.id"]}}, "entities.x.query.joins[0]", "either first or collect, not both"),
        ({}, {"type": "full"}, "entities.x.query.joins[0]", "a collect join is a left or inner join, not full"),
    ]
    for collect, join, path, rule in cases:
        data = template_with_field("c.id")
        query = collect_query(**collect)
        query["joins"][0].update(join)
        data["entities"]["x"]["query"] = query
        with pytest.raises(TemplateError) as caught:
            parse_template(data, source="probe.yaml")
        assert len(caught.value.problems) == 1, (collect, join)
        found_path, message = caught.value.problems[0]
        assert (found_path, rule in message) == (path, True), (collect, join, message)
        assert f"probe.yaml: {path}: " in str(caught.value)


def test_collect_column_names_are_quoted_identifiers(source: str) -> None:
    # accepted by the name rule but not a column: the database says so, nothing else runs
    with pytest.raises(psycopg.errors.UndefinedColumn):
        run(source, collect_query(columns=["Email"]), {"id": "c.id", "emails": "e.Email"})
    assert table_exists(source, "emails")


def test_star_in_a_json_path_takes_every_element(source: str) -> None:
    with connect(source) as conn:
        version = conn.info.server_version
    if version < 160000:
        pytest.skip("the malformed-JSON guard needs PostgreSQL 16 (pg_input_is_valid)")
    values = by_id(source, {"json": {"column": "c.phones", "path": ["*", "value"]}})
    assert values == {
        1: ["+1 555 0100", "+1 555 0199"],
        2: [],  # an empty list
        3: None,  # no JSON at all
        4: None,  # malformed JSON: NULL, not a failed import
        5: ["x"],  # one object where a list was expected is read as a list of one
        6: ["  "],
    }
    assert by_id(source, {"json": {"column": "c.phones", "path": ["*", "type"]}})[1] == [1, 4]
    assert by_id(source, {"json": {"column": "c.phones", "path": [1, "value"]}})[1] == "+1 555 0199"


def test_star_path_keys_are_data_whatever_they_hold(source: str) -> None:
    # every key is quoted and escaped inside a bound jsonpath: quotes, backslashes, jsonpath
    # syntax and SQL all select the key of that name, and nothing else runs
    for k, key in enumerate(ODD_KEYS):
        values = by_id(source, {"json": {"column": "d.body", "path": ["*", key]}}, table="docs", alias="d")
        assert values == {1: [f"0-{k}", f"1-{k}"]}, key
    assert table_exists(source, "customers")


def test_star_path_compiled_for_a_pre_16_server_aborts_on_malformed_json(source: str) -> None:
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        by_id(source, {"json": {"column": "c.phones", "path": ["*", "value"]}}, server_version=150000)


def test_a_negative_position_in_a_star_path_is_refused_with_its_yaml_path() -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(template_with_field({"json": {"column": "c.phones", "path": ["*", -1]}}), source="probe.yaml")
    [(path, message)] = caught.value.problems
    assert path.startswith("entities.x.fields.y") and "negative position" in message


# --- filters ---------------------------------------------------------------------------------------
FILTER_CASES = [
    ("i.name", "=", "Alpha", {1}),
    ("i.name", "!=", "Alpha", {2, 3, 4, 5}),  # IS DISTINCT FROM: the NULL name is "not Alpha"
    ("i.n", "<", 20, {1, 5}),
    ("i.n", "<=", 20, {1, 2, 5}),
    ("i.n", ">", 15, {2, 3}),
    ("i.n", ">=", 15, {2, 3, 5}),
    ("i.name", "like", "Al%", {1}),
    ("i.name", "ilike", "al%", {1, 5}),
    ("i.name", "not_like", "Al%", {2, 3, 5}),  # SQL three-valued logic: the NULL name is dropped
    ("i.name", "not_ilike", "al%", {2, 3}),
    ("i.name", "regex", "^[a-z]", {2, 5}),
    ("i.name", "not_regex", "^[a-z]", {1, 3}),
    ("i.tag", "in", ["x", "y"], {1, 3, 4}),
    ("i.n", "in", [10, 30], {1, 3}),
    ("i.tag", "not_in", ["x", "y"], {2, 5}),  # the NULL tag is kept (plain NOT IN would drop it)
    ("i.tag", "is_null", None, {2}),
    ("i.tag", "is_not_null", None, {1, 3, 4, 5}),
    ("i.n", "between", [15, 20], {2, 5}),
]


@pytest.mark.parametrize(("column", "op", "value", "expected"), FILTER_CASES,
                         ids=[f"{op}:{column}" for column, op, _, _ in FILTER_CASES])
def test_filter_ops(source: str, column: str, op: str, value: Any, expected: set[int]) -> None:
    flt = {"column": column, "op": op} | ({} if value is None else {"value": value})
    rows = run(source, {"base": {"table": "items", "alias": "i"}, "filters": [flt]}, {"id": "i.id"})
    assert {r[0] for r in rows} == expected


def test_filters_are_anded_and_bound_in_order(source: str) -> None:
    filters = [{"column": "i.n", "op": "between", "value": [10, 20]},
               {"column": "i.name", "op": "ilike", "value": "%a%"}, {"column": "i.tag", "op": "!=", "value": "z"}]
    query = Query.model_validate({"base": {"table": "items", "alias": "i"}, "filters": filters})
    compiled = compile_query(query, {"id": FieldSpec.model_validate("i.id")})
    with connect(source) as conn:
        text = compiled.statement.as_string(conn)
    # values are quoted literals in filter order, and nothing is left for placeholder parsing
    assert text.index("BETWEEN 10 AND 20") < text.index("ILIKE '%a%'") < text.index("IS DISTINCT FROM 'z'")
    assert {r[0] for r in run(source, query.model_dump(by_alias=True), {"id": "i.id"})} == {1, 2}


# --- safety ----------------------------------------------------------------------------------------
def test_filter_value_is_only_data(source: str) -> None:
    for op, value in (("=", INJECTION), ("in", [INJECTION]), ("like", INJECTION)):
        query = {"base": {"table": "customers", "alias": "c"},
                 "filters": [{"column": "c.last_name", "op": op, "value": value}]}
        compiled = compile_query(Query.model_validate(query), {"id": FieldSpec.model_validate("c.id")})
        with connect(source) as conn:
            # a literal quoted by the connection, no placeholder; the rows below prove it is only data
            text = compiled.statement.as_string(conn)
            assert "%s" not in text
            assert text.count("DROP TABLE customers") == 1  # once, inside the quoted value
        assert run(source, query, {"id": "c.id"}) == [(6,)]
    assert table_exists(source, "customers")


def test_table_names_are_quoted_identifiers(source: str) -> None:
    query = {"base": {"table": "customers; DROP TABLE items; --", "alias": "c"}}
    with pytest.raises(psycopg.errors.UndefinedTable):
        run(source, query, {"id": "c.id"})
    assert table_exists(source, "items")


def template_with_field(spec: Any) -> dict[str, Any]:
    return {"name": "probe", "source_system": "probe", "entities": {"x": {
        "target": "customer_users", "source_id": "external_id",
        "query": {"base": {"table": "customers", "alias": "c"}},
        "fields": {"external_id": "c.id", "y": spec}}}}


REFUSED_EXPRESSIONS = [
    ("1; DELETE FROM users", "exactly one expression"),
    ("c.id; DROP TABLE customers", "exactly one expression"),
    ("(SELECT max(id) FROM users)", "sub-query"),
    ("c.id IN (SELECT customer_id FROM emails)", "sub-query"),
    ("EXISTS (SELECT 1 FROM emails)", "not among the allowed functions"),
    ("pg_sleep(10)", "pg_sleep()"),
    ("PG_CATALOG.PG_SLEEP(10)", "qualified name"),
    ("CASE WHEN c.id > 0 THEN pg_sleep(1) END", "pg_sleep()"),
    ("pg_read_file('/etc/passwd')", "pg_read_file()"),
    ("z.id + 1", "unknown table alias 'z'"),
    ("id + 1", "must be qualified"),
]


@pytest.mark.parametrize(("expression", "rule"), REFUSED_EXPRESSIONS)
def test_unsafe_field_expression_is_refused_naming_the_field(expression: str, rule: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(template_with_field({"expression": expression}), source="probe.yaml")
    assert len(caught.value.problems) == 1
    path, message = caught.value.problems[0]
    assert path == "entities.x.fields.y"
    assert rule in message
    assert "probe.yaml: entities.x.fields.y: " in str(caught.value)


def test_load_template_refuses_a_second_statement_in_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(template_with_field({"expression": "1; DELETE FROM users"})), encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == [("entities.x.fields.y", "'1; DELETE FROM users' must be exactly one expression,"
                                                             " found 2 statements")]


def test_unsafe_sql_in_query_parts_is_refused() -> None:
    cases = [
        ({"joins": [{"table": "emails", "alias": "e", "on": {"e.customer_id": "c.id"},
                     "condition": "e.id IN (SELECT 1)"}]}, "sub-query", "query.joins[0].condition"),
        ({"joins": [{"table": "emails", "alias": "e", "on": {"e.customer_id": "c.id"},
                     "first": {"order_by": ["pg_sleep(1)"]}}]}, "pg_sleep()", "query.joins[0].first.order_by[0]"),
        ({"order_by": ["c.id; DROP TABLE customers"]}, "exactly one expression", "query.order_by[0]"),
        ({"where": ["c.id > 0", "pg_reload_conf()"]}, "pg_reload_conf()", "query.where[1]"),
        ({"joins": [{"table": "emails", "alias": "e", "on": {"e.customer_id": "z.id"}}]}, "unknown table alias 'z'",
         "query"),
        ({"joins": [{"table": "emails", "alias": "e", "on": {"e.customer_id": "c.id"}, "condition": "q.x = 1"}]},
         "unknown table alias 'q'", "query.joins[0].condition"),
    ]
    for extra, rule, where in cases:
        data = template_with_field("c.id")
        data["entities"]["x"]["query"].update(extra)
        with pytest.raises(TemplateError) as caught:
            parse_template(data)
        assert [p for p, _ in caught.value.problems] == [f"entities.x.{where}"], extra
        assert rule in caught.value.problems[0][1], extra


@pytest.mark.parametrize("expression", ["pg_sleep_for('10 minutes')", "pg_sleep_until(now() + interval '1 hour')",
                                        "generate_series(1, 1000)", "unnest(ARRAY[1, 2])",
                                        "jsonb_array_elements('[1, 2]'::jsonb)", "pg_advisory_lock(1)"])
def test_other_sleeping_or_row_multiplying_functions_are_refused(expression: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(template_with_field({"expression": expression}))
