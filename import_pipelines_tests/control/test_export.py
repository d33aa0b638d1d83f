"""Exports of target rows, a run's records and its errors: formula cells neutralised, counts, JSON round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from import_pipelines.control.export import ExportError, export
from import_pipelines.db import connection
from import_pipelines_tests.control.undo_fixture import create_tables, template
from import_pipelines_tests.helpers import run_import

FORMULA = '=HYPERLINK("http://x")'
TRICKY = 'two\nlines, a tab\there, a "quote", a backslash \\ and ü'


@pytest.fixture
def imported(source_url: str, target_url: str) -> str:
    """40 contacts (one with a formula as its note, one with a visits value that does not cast), one run."""
    create_tables(source_url, target_url)
    with connection(source_url) as conn:
        conn.execute("INSERT INTO src_accounts SELECT g, 'account ' || g FROM generate_series(1, 3) g")
        conn.execute("INSERT INTO src_contacts SELECT g, g % 3 + 1, 'contact ' || g, 'note ' || g, g::text"
                     " FROM generate_series(1, 40) g")
        conn.execute("UPDATE src_contacts SET note = %s, name = '-5 + 3' WHERE id = 7", (FORMULA,))
        conn.execute("UPDATE src_contacts SET visits = 'many' WHERE id = 9")
        conn.execute("UPDATE src_contacts SET note = %s WHERE id = 8", (TRICKY,))
        conn.commit()
    run_import(template=template(), source_url=source_url, target_url=target_url, profile="crm", run_id="run-1")
    return target_url


def test_formula_cells_open_as_text_in_excel_and_csv(imported: str, tmp_path: Path) -> None:
    with connection(imported) as conn:
        xlsx = export(conn, what="rows", fmt="xlsx", path=tmp_path / "c.xlsx", profile="crm", entity="contacts")
        as_csv = export(conn, what="rows", fmt="csv", path=tmp_path / "c.csv", profile="crm", entity="contacts")
    assert xlsx.rows == as_csv.rows == 39  # record 9 failed
    sheet = load_workbook(xlsx.path).active
    header = [c.value for c in sheet[1]]
    notes = {row[header.index("external_id")].value: row[header.index("note")] for row in sheet.iter_rows(min_row=2)}
    cell = notes["7"]
    assert cell.data_type == "s" and cell.value == "'" + FORMULA
    assert notes["8"].value == TRICKY
    # numbers stay numbers
    visits = [row[header.index("visits")] for row in sheet.iter_rows(min_row=2)]
    assert all(c.data_type == "n" and isinstance(c.value, int) for c in visits)
    with as_csv.path.open(newline="") as f:
        rows = {r["external_id"]: r for r in csv.DictReader(f)}
    assert len(rows) == 39
    assert rows["7"]["note"] == "'" + FORMULA and rows["7"]["name"] == "'-5 + 3"
    assert rows["8"]["note"] == TRICKY


def test_json_round_trips_the_target_rows(imported: str, tmp_path: Path) -> None:
    with connection(imported) as conn:
        result = export(conn, what="rows", fmt="json", path=tmp_path / "c.json", profile="crm", entity="contacts")
        expected = conn.execute("SELECT id, external_id, name, note, visits, account_id FROM contacts ORDER BY id"
                                ).fetchall()
    rows = sorted(json.loads(result.path.read_text()), key=lambda r: r["id"])
    assert [(r["id"], r["external_id"], r["name"], r["note"], r["visits"], r["account_id"]) for r in rows] == expected
    assert any(r["note"] == TRICKY for r in rows) and any(r["note"] == FORMULA for r in rows)


def test_records_and_errors_of_a_run_in_every_format(imported: str, tmp_path: Path) -> None:
    with connection(imported) as conn:
        records = export(conn, what="records", fmt="json", path=tmp_path / "r.json", run_id="run-1")
        lines = export(conn, what="records", fmt="jsonl", path=tmp_path / "r.jsonl", run_id="run-1")
        errors = export(conn, what="errors", fmt="csv", path=tmp_path / "e.csv", run_id="run-1")
        workbook = export(conn, what="errors", fmt="xlsx", path=tmp_path / "e.xlsx", run_id="run-1")
        expected = conn.execute("SELECT count(*) FROM import_control.import_records WHERE run_id = 'run-1'").fetchone()[0]
    assert expected == 43 and records.rows == lines.rows == expected
    parsed = json.loads(records.path.read_text())
    assert parsed == [json.loads(line) for line in lines.path.read_text().splitlines()]
    assert sorted(r["action"] for r in parsed).count("created") == 42
    failed = [r for r in parsed if r["action"] == "failed"]
    assert [r["source_id"] for r in failed] == ["9"] and "visits" in failed[0]["error"]
    with errors.path.open(newline="") as f:
        problems = list(csv.DictReader(f))
    assert errors.rows == workbook.rows == 1
    assert [(p["entity"], p["source_id"], p["stage"]) for p in problems] == [("contacts", "9", "load")]
    assert load_workbook(workbook.path).active.max_row == 2


def test_unknown_run_or_entity_is_named(imported: str, tmp_path: Path) -> None:
    with connection(imported) as conn:
        with pytest.raises(ExportError, match="no import run 'nope'"):
            export(conn, what="records", fmt="csv", path=tmp_path / "x.csv", run_id="nope")
        with pytest.raises(ExportError, match="no entity 'tickets'.*accounts, contacts"):
            export(conn, what="rows", fmt="csv", path=tmp_path / "x.csv", profile="crm", entity="tickets")


def test_export_job_and_command(imported: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from import_pipelines.cli import main
    from import_pipelines.defs.control.undo import export_data

    monkeypatch.setenv("CRM_TARGET_URL", imported)
    out = tmp_path / "job.jsonl"
    result = export_data.execute_in_process(run_config={"ops": {"export_data_op": {"config": {
        "what": "rows", "format": "jsonl", "profile": "crm", "entity": "accounts", "output": str(out),
        "target_url_env": "CRM_TARGET_URL"}}}})
    assert result.success and result.output_for_node("export_data_op") == 3
    assert sorted(json.loads(line)["name"] for line in out.read_text().splitlines()) == [
        "account 1", "account 2", "account 3"]
    errors = tmp_path / "errors.csv"
    assert main(["export-data", "--run", "run-1", "--errors", "-o", str(errors), "--target-env", "CRM_TARGET_URL"]) == 0
    assert len(errors.read_text().splitlines()) == 2
    assert main(["export-data", "--run", "nope", "-o", str(errors), "--target-env", "CRM_TARGET_URL"]) == 1


def test_the_undo_and_export_jobs_are_in_the_code_location() -> None:
    import import_pipelines.definitions as module

    for name in ("export_data", "rollback_import_run", "retry_failed_records", "control_retention"):
        assert module.defs.resolve_job_def(name).name == name


def test_a_formula_in_a_header_or_any_non_numeric_type_is_neutralised(target_url: str, tmp_path: Path) -> None:
    from psycopg import sql

    from import_pipelines.control.export import export_query

    query = sql.SQL("SELECT '@SUM(A1)'::varchar AS \"=cmd\", '[\"-1\"]'::jsonb AS j, interval '-1 day' AS i,"
                    " -5 AS n, E'\\tx' AS t, 'ok' AS plain")
    with connection(target_url) as conn:
        as_csv = export_query(conn, query, fmt="csv", path=tmp_path / "q.csv")
        xlsx = export_query(conn, query, fmt="xlsx", path=tmp_path / "q.xlsx")
    with as_csv.path.open(newline="") as f:
        header, row = list(csv.reader(f))
    assert header == ["'=cmd", "j", "i", "n", "t", "plain"]
    assert row == ["'@SUM(A1)", '["-1"]', "'-1 days", "-5", "'\tx", "ok"]
    cells = list(load_workbook(xlsx.path).active.iter_rows(values_only=True))
    assert cells == [tuple(header), ("'@SUM(A1)", '["-1"]', "'-1 days", -5, "'\tx", "ok")]
