"""An entity's ``validate`` expectations on the staged rows before load, against real databases.

The expected failures are planted in the source and counted from the planting, never from the
import: rows that break an expectation are failed records naming it and the field, and are not
loaded; the others load.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from import_pipelines.db import connection
from import_pipelines.pipeline import EntityRun, dedupe, extract, load, map_and_validate
from import_pipelines.templates.loader import TemplateError, load_template, parse_template

ROWS = 100
BAD_EMAILS = {17: "not-an-email", 58: "someone@localhost"}
STATUSES = ("active", "pending", "closed")


def _template(validate: list | str) -> dict:
    return {
        "name": "people", "source_system": "crm",
        "entities": {"people": {
            "target": "people", "source_id": "external_id",
            "query": {"base": {"table": "src_people", "alias": "p"}},
            "fields": {"external_id": "p.id", "email": "p.email", "status": "p.status", "minutes": "p.minutes",
                       "created_at": "p.created_at", "nickname": "p.nickname"},
            "validate": validate,
        }},
    }


@pytest.fixture
def databases(source_url: str, target_url: str) -> tuple[str, str]:
    with connection(source_url) as conn:
        conn.execute("CREATE TABLE src_people (id int PRIMARY KEY, email text, status text, minutes int,"
                     " created_at timestamptz, nickname text)")
        conn.execute(
            "INSERT INTO src_people SELECT i, 'person' || i || '@example.com', (ARRAY['active','pending','closed'])"
            "[1 + i %% 3], i * 3, timestamptz '2020-01-01' + i * interval '1 day', 'nick' || i"
            " FROM generate_series(1, %s) AS i", (ROWS,))
        for row, email in BAD_EMAILS.items():
            conn.execute("UPDATE src_people SET email = %s WHERE id = %s", (email, row))
        conn.commit()
    with connection(target_url) as conn:
        conn.execute("CREATE TABLE people (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                     " source_system text NOT NULL, external_id text, email text, status text, minutes int,"
                     " created_at timestamptz, nickname text, UNIQUE (source_system, external_id))")
        conn.commit()
    return source_url, target_url


def _import(template_data: dict, source_url: str, target_url: str) -> tuple[str, dict[str, int]]:
    run_id = str(uuid.uuid4())
    run = EntityRun(profile="crm", template=parse_template(template_data), entity_name="people", run_id=run_id,
                    source_url=source_url, target_url=target_url)
    quiet = lambda message: None  # noqa: E731
    return run_id, load(run, dedupe(run, map_and_validate(run, extract(run, log=quiet), log=quiet), log=quiet),
                        log=quiet).counts


def _failed(target_url: str, run_id: str) -> dict[str, str]:
    with connection(target_url) as conn:
        return dict(conn.execute("SELECT source_id, error FROM import_control.import_records"
                                 " WHERE run_id = %s AND action = 'failed'", (run_id,)).fetchall())


def _summary(target_url: str) -> list[tuple]:
    with connection(target_url) as conn:
        return conn.execute("SELECT position, expectation, engine, evaluated, failed"
                            " FROM import_control.validation_results ORDER BY position").fetchall()


def test_two_invalid_emails_among_100_fail_and_98_load(databases: tuple[str, str]) -> None:
    source_url, target_url = databases
    run_id, counts = _import(_template([
        {"expect": "not_null", "fields": ["email", "status"]},
        {"expect": "email", "field": "email"},
        {"expect": "in_set", "field": "status", "values": list(STATUSES)},
        {"expect": "between", "field": "minutes", "min": 0},
        {"expect": "date_between", "field": "created_at", "min": "1990-01-01", "max": "now + 1 day"},
        {"expect": "unique", "fields": ["external_id"]},
    ]), source_url, target_url)

    assert counts["created"] == ROWS - len(BAD_EMAILS) and counts["failed"] == len(BAD_EMAILS)
    failed = _failed(target_url, run_id)
    assert set(failed) == {str(row) for row in BAD_EMAILS}
    for row, email in BAD_EMAILS.items():
        assert failed[str(row)] == f"email: failed expectation email (validate[1]): '{email}'"
    with connection(target_url) as conn:
        loaded = {r[0] for r in conn.execute("SELECT external_id FROM people").fetchall()}
    assert loaded == {str(i) for i in range(1, ROWS + 1)} - {str(r) for r in BAD_EMAILS}
    assert _summary(target_url) == [(0, "not_null", "sql", ROWS, 0), (1, "email", "sql", ROWS, 2),
                                    (2, "in_set", "sql", ROWS, 0), (3, "between", "sql", ROWS, 0),
                                    (4, "date_between", "sql", ROWS, 0), (5, "unique", "sql", ROWS, 0)]


def test_a_map_step_retried_after_failing_half_way_marks_each_row_once(databases: tuple[str, str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The field rules' UPDATE and the validation commit together: a retry finds the extract's rows."""
    import import_pipelines.pipeline.validate as validate_step

    source_url, target_url = databases
    with connection(source_url) as conn:
        conn.execute("UPDATE src_people SET minutes = -5 WHERE id = 17")  # breaks `between` too
        conn.commit()
    run = EntityRun(profile="crm", template=parse_template(_template([
        {"expect": "email", "field": "email"}, {"expect": "between", "field": "minutes", "min": 0}])),
        entity_name="people", run_id=str(uuid.uuid4()), source_url=source_url, target_url=target_url)
    quiet = lambda message: None  # noqa: E731
    staged = extract(run, log=quiet)

    def fail(*args, **kwargs):
        raise RuntimeError("the step's process died after validating")

    with monkeypatch.context() as patch:
        patch.setattr(validate_step, "record_results", fail)
        with pytest.raises(RuntimeError):
            map_and_validate(run, staged, log=quiet)
    retried = map_and_validate(run, staged, log=quiet)

    assert retried.invalid == len(BAD_EMAILS)
    with connection(target_url) as conn:
        errors = dict(conn.execute(f"SELECT external_id::text, _error FROM import_control.{staged.staging}"
                                   " WHERE _error IS NOT NULL").fetchall())
    assert errors == {"17": "email: failed expectation email (validate[0]): 'not-an-email';"
                            " minutes: failed expectation between (validate[1]): '-5'",
                      "58": "email: failed expectation email (validate[0]): 'someone@localhost'"}


def test_each_built_in_expectation_fails_the_rows_that_break_it(databases: tuple[str, str]) -> None:
    source_url, target_url = databases
    with connection(source_url) as conn:
        conn.execute("UPDATE src_people SET status = 'archived' WHERE id = 3")
        conn.execute("UPDATE src_people SET minutes = -5 WHERE id = 4")
        conn.execute("UPDATE src_people SET created_at = '1970-01-01' WHERE id = 5")
        conn.execute("UPDATE src_people SET created_at = now() + interval '1 month' WHERE id = 6")
        conn.execute("UPDATE src_people SET status = NULL WHERE id = 7")
        conn.execute("UPDATE src_people SET nickname = 'twin' WHERE id IN (8, 9)")
        conn.commit()
    run_id, counts = _import(_template([
        {"expect": "in_set", "field": "status", "values": list(STATUSES)},
        {"expect": "between", "field": "minutes", "min": 0},
        {"expect": "date_between", "field": "created_at", "min": "1990-01-01", "max": "now + 1 day"},
        {"expect": "not_null", "field": "status"},
        {"expect": "unique", "fields": ["nickname"]},
    ]), source_url, target_url)
    failed = _failed(target_url, run_id)
    assert failed == {
        "3": "status: failed expectation in_set (validate[0]): 'archived'",
        "4": "minutes: failed expectation between (validate[1]): '-5'",
        "5": "created_at: failed expectation date_between (validate[2]): '1970-01-01 00:00:00+00'",
        "6": failed.get("6", "missing"),
        "7": "status: failed expectation not_null (validate[3]): empty",
        "8": "nickname: failed expectation unique (validate[4]): 'twin' is repeated in the batch",
        "9": "nickname: failed expectation unique (validate[4]): 'twin' is repeated in the batch",
    }
    assert failed["6"].startswith("created_at: failed expectation date_between (validate[2]): '")
    assert counts["failed"] == 7 and counts["created"] == ROWS - 7
    assert [row[4] for row in _summary(target_url)] == [1, 1, 2, 1, 2]


def test_a_great_expectations_only_expectation_runs_in_chunks(databases: tuple[str, str]) -> None:
    source_url, target_url = databases
    with connection(source_url) as conn:
        conn.execute("UPDATE src_people SET nickname = 'x' WHERE id IN (10, 90)")
        conn.commit()
    template = _template([
        {"expect": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "nickname", "min_value": 2}},
        # has a built-in form: runs as SQL, named as written
        {"expect": "expect_column_values_to_be_between", "kwargs": {"column": "minutes", "min_value": 0}},
        {"expect": "expect_column_values_to_match_regex", "kwargs": {"column": "email", "regex": "@example\\.com$"}},
    ])
    run_id, counts = _import(template, source_url, target_url)
    assert counts["failed"] == 4 and counts["created"] == ROWS - 4
    assert _failed(target_url, run_id) == {
        "10": "nickname: failed expectation expect_column_value_lengths_to_be_between (validate[0]): 'x'",
        "90": "nickname: failed expectation expect_column_value_lengths_to_be_between (validate[0]): 'x'",
        **{str(row): f"email: failed expectation expect_column_values_to_match_regex (validate[2]): '{email}'"
           for row, email in BAD_EMAILS.items()}}
    assert _summary(target_url) == [(0, "expect_column_value_lengths_to_be_between", "great_expectations", ROWS, 2),
                                    (1, "expect_column_values_to_be_between", "sql", ROWS, 0),
                                    (2, "expect_column_values_to_match_regex", "great_expectations", ROWS, 2)]


def test_chunks_see_every_row_once(databases: tuple[str, str]) -> None:
    from import_pipelines.templates.model import Expectation
    from import_pipelines.validation import validate_staged
    from import_pipelines.db.sql import ident

    _, target_url = databases
    with connection(target_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE staged (_rn bigint GENERATED ALWAYS AS IDENTITY, nickname text, _error text)")
        conn.execute("INSERT INTO staged (nickname) SELECT CASE WHEN i % 7 = 0 THEN 'x' ELSE 'long' END"
                     " FROM generate_series(1, 1000) AS i")
        outcome = validate_staged(conn, expectations=[Expectation(
            expect="expect_column_value_lengths_to_be_between", kwargs={"column": "nickname", "min_value": 2})],
            staging=ident("staged"), rows=1000, types={"nickname": "text"}, chunk_rows=64, log=lambda m: None)
        failing = [r[0] for r in conn.execute("SELECT _rn FROM staged WHERE _error IS NOT NULL ORDER BY _rn")]
    assert failing == [i for i in range(1, 1001) if i % 7 == 0]
    assert outcome.results[0].failed == len(failing) == outcome.newly_failed


def test_template_errors_name_the_file_and_the_yaml_path(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "people.yaml"
    path.write_text(yaml.safe_dump(_template([
        {"expect": "email", "field": "email"},
        {"expect": "not_null", "fields": ["emial"]},
        {"expect": "expect_column_values_to_be_shiny", "kwargs": {"column": "email"}},
    ]), sort_keys=False))
    with pytest.raises(TemplateError) as error:
        load_template(path)
    assert error.value.problems == [
        ("entities.people.validate[1]", "'emial' is not among the fields (external_id, email, status, minutes,"
                                        " created_at, nickname)"),
        ("entities.people.validate[2].expect", "great-expectations has no expectation"
                                               " 'expect_column_values_to_be_shiny'")]
    assert str(path) in str(error.value)

    path.write_text(yaml.safe_dump(_template([{"expect": "looks_fine", "field": "email"}])))
    with pytest.raises(TemplateError) as error:
        load_template(path)
    assert error.value.problems[0][0] == "entities.people.validate[0]"
    assert "unknown expectation 'looks_fine'" in error.value.problems[0][1]


def test_a_suite_file_is_read_relative_to_the_template(tmp_path: Path, databases: tuple[str, str]) -> None:
    import yaml

    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "people.yaml").write_text(yaml.safe_dump([{"expect": "email", "field": "email"}]))
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(_template("suites/people.yaml")))
    template = load_template(tmp_path / "people.yaml")
    assert [e.expect for e in template.entities["people"].validate_] == ["email"]

    (tmp_path / "suites" / "people.yaml").write_text(yaml.safe_dump([{"expect": "email", "fields": "email"}]))
    with pytest.raises(TemplateError) as error:
        load_template(tmp_path / "people.yaml")
    assert error.value.source == str(tmp_path / "suites" / "people.yaml")
    assert error.value.problems[0][0] == "[0].fields"


def test_wrong_kwargs_of_a_great_expectations_expectation_fail_before_any_row_is_marked(
        databases: tuple[str, str]) -> None:
    from import_pipelines.validation.gx_chunks import ExpectationConfigError

    source_url, target_url = databases
    with pytest.raises(ExpectationConfigError) as error:
        _import(_template([{"expect": "expect_column_value_lengths_to_be_between",
                            "kwargs": {"column": "nickname", "min_valu": 2}}]), source_url, target_url)
    assert error.value.where == "entities.people.validate[0].kwargs"
    with pytest.raises(ExpectationConfigError) as error:
        _import(_template([{"expect": "expect_column_mean_to_be_between",
                            "kwargs": {"column": "minutes", "min_value": 2}}]), source_url, target_url)
    assert error.value.where == "entities.people.validate[0].expect"


def test_sql_only_suites_never_import_great_expectations(databases: tuple[str, str]) -> None:
    source_url, target_url = databases
    code = (
        "import sys, uuid\n"
        "from import_pipelines.pipeline import EntityRun, extract, map_and_validate\n"
        "from import_pipelines.templates.loader import parse_template\n"
        f"t = parse_template({_template([{'expect': 'email', 'field': 'email'}])!r})\n"
        f"run = EntityRun(profile='crm', template=t, entity_name='people', run_id=str(uuid.uuid4()),"
        f" source_url={source_url!r}, target_url={target_url!r})\n"
        "staged = map_and_validate(run, extract(run, log=print), log=print)\n"
        "assert staged.invalid == 2, staged\n"
        "print('great_expectations' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_preflight_names_every_expectation_great_expectations_cannot_build(databases: tuple[str, str]) -> None:
    from import_pipelines.templates.preflight import PreflightError, preflight

    source_url, target_url = databases
    template = parse_template(_template([
        {"expect": "email", "field": "email"},
        {"expect": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "nickname", "min_valu": 2}},
        {"expect": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "nickname", "min_value": 2,
                                                                           "mostly": 0.9}},
    ]))
    with pytest.raises(PreflightError) as error:
        preflight(template, source_url=source_url, target_url=target_url, profile="crm", template_source="people.yaml")
    assert [where for where, _ in error.value.problems] == ["entities.people.validate[1].kwargs",
                                                            "entities.people.validate[2].kwargs.mostly"]
    assert "min_valu" in error.value.problems[0][1] and "people.yaml" in str(error.value)


def test_the_preview_rejects_the_rows_validation_would_fail(databases: tuple[str, str]) -> None:
    from import_pipelines.authoring.preview import preview_template

    source_url, target_url = databases
    preview = preview_template(parse_template(_template([{"expect": "email", "field": "email"}])),
                               source_url=source_url, target_url=target_url)
    people = preview.entities[0]
    assert people.counts["rejected_by_map"] == len(BAD_EMAILS) and people.would["failed"] == len(BAD_EMAILS)
    assert sorted(r.reason for r in people.rejected) == sorted(
        f"email: failed expectation email (validate[0]): '{email}'" for email in BAD_EMAILS.values())
    with connection(target_url) as conn:  # the preview writes nothing
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 0
