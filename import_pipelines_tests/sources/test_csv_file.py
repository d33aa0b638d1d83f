"""The CSV reader: real-world shapes, bad rows with their physical lines, preambles, footers, blocks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from import_pipelines.sources import RecordSource, SourceError
from import_pipelines.sources import csv_file
from import_pipelines.sources.csv_file import CsvSource
from import_pipelines.sources.tabular import FOOTER_ERROR
from import_pipelines_tests.sources.csv_corpus import corpus, people


@pytest.mark.parametrize("case", corpus(300), ids=lambda case: case.name)
def test_every_corpus_shape_reads_back_its_header_and_rows(case, tmp_path: Path) -> None:
    path = tmp_path / f"{case.name}.csv"
    path.write_bytes(case.data)
    source = CsvSource(path)
    assert isinstance(source, RecordSource)
    assert source.columns() == case.header
    records = list(source.records())
    good = [record for record in records if record.error is None]
    assert [[record.values[name] for name in case.header] for record in good] == case.rows
    assert len(source.report.footer_lines) == case.footer_lines
    assert [record.line for record in records if record.error and record.error != FOOTER_ERROR] == case.bad_lines
    assert source.report.header_line == case.header_line
    assert good[0].line == case.header_line + 1
    assert good[0].location == f"{case.name}.csv line {case.header_line + 1}"


def _contacts_csv(rows: int) -> list[str]:
    """Physical lines of a clean contacts CSV (header + ``rows`` records, some with a two-line note)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "first_name", "last_name", "email", "note"])
    for number, person in enumerate(people(rows, seed=3), start=1):
        note = "line one\nline two" if number % 100 == 50 else person["note"]
        writer.writerow([number, person["first"], person["last"], person["email"], note])
    return out.getvalue().splitlines(keepends=True)


def test_three_bad_rows_of_a_thousand_are_errors_on_their_physical_lines(tmp_path: Path) -> None:
    lines = _contacts_csv(1000)
    # Records 50, 150, ... carry a two-line note: record N starts after one extra line per such record before it.
    def line_of(record: int) -> int:
        return 1 + record + (record + 49) // 100
    ragged, unterminated, undecodable = line_of(200), line_of(500), line_of(800)
    lines[ragged - 1] = lines[ragged - 1].rstrip("\n") + ",extra,cells\n"
    lines[unterminated - 1] = '500,"Ann,Lee,ann@example.com,never closed\n'
    data = "".join(lines).encode("utf-8")
    bad_line_start = data.index(lines[undecodable - 1].encode("utf-8"))
    data = data[:bad_line_start + 4] + b"\xff\xfe" + data[bad_line_start + 4:]
    path = tmp_path / "contacts.csv"
    path.write_bytes(data)

    records = list(CsvSource(path).records())
    errors = [record for record in records if record.error]
    assert len(records) - len(errors) == 997
    assert [record.line for record in errors] == [ragged, unterminated, undecodable]
    assert errors[0].error == "7 fields where the header has 5"
    assert errors[0].values["column_7"] == "cells"
    assert errors[1].error.startswith("unterminated quote")
    assert errors[1].values["id"] == "500"
    assert errors[2].error.startswith("undecodable bytes in utf-8: ff fe")
    assert "\ufffd" in "".join(errors[2].values.values())
    # The rows after each bad one load, on their own lines, multi-line notes included.
    by_id = {record.values["id"]: record for record in records if not record.error}
    assert by_id["501"].line == unterminated + 1
    assert by_id["550"].line == line_of(550) and by_id["550"].values["note"] == "line one\nline two"
    assert by_id["1000"].line == line_of(1000)


def test_a_quote_closing_inside_a_field_does_not_swallow_the_rows_after_it(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text('id,name,note\n1,"open,x\n2,b,c\n3,d,"x"y\n4,e,f\n', encoding="utf-8")
    records = list(CsvSource(path).records())
    assert [(record.line, record.error is None) for record in records] == [
        (2, False), (3, True), (4, False), (5, True)]
    assert records[1].values == {"id": "2", "name": "b", "note": "c"}


def test_an_unterminated_quote_at_the_end_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "end.csv"
    path.write_text('id,name\n1,a\n2,"b\n3,c\n', encoding="utf-8")
    records = list(CsvSource(path).records())
    assert [(record.line, record.values.get("id"), record.error is None) for record in records] == [
        (2, "1", True), (3, "2", False), (4, "3", True)]


def test_a_quote_that_never_closes_costs_one_row_not_the_rest_of_a_large_file(tmp_path: Path) -> None:
    lines = ["id,name,note\n"] + [f"{n},name {n},plain\n" for n in range(1, 20001)]
    lines[10] = '10,"never closed,plain\n'
    path = tmp_path / "big.csv"
    path.write_text("".join(lines), encoding="utf-8")
    records = list(CsvSource(path).records())
    assert len(records) == 20000
    assert [(record.line, record.values["id"]) for record in records if record.error] == [(11, "10")]
    assert records[-1].line == 20001


def test_records_across_block_boundaries_keep_their_lines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(csv_file, "_BLOCK_CHARS", 64)
    lines = _contacts_csv(400)
    path = tmp_path / "blocks.csv"
    path.write_text("".join(lines), encoding="utf-8")
    records = list(CsvSource(path).records())
    assert all(record.error is None for record in records)
    assert [record.values["id"] for record in records] == [str(n) for n in range(1, 401)]
    assert records[49].values["note"] == "line one\nline two" and records[49].line == 51
    assert records[-1].line == len(lines) - 1 + 1


def test_preamble_and_footer_are_reported_not_imported(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        "Contacts report\nRegion: EMEA, all owners\nRun 2024-03-01\n\n"
        "Name,Email,Phone\nAnn,ann@example.com,+33 1 23\nBob,bob@example.com,+33 1 24\n"
        "Total,2,\n\nExported by admin on 2024-03-01\n\n\n", encoding="utf-8")
    source = CsvSource(path)
    records = list(source.records())
    assert source.columns() == ["Name", "Email", "Phone"]
    assert [(r.line, r.values["Name"], r.error) for r in records] == [
        (6, "Ann", None), (7, "Bob", None), (8, "Total", FOOTER_ERROR),
        (10, "Exported by admin on 2024-03-01", FOOTER_ERROR)]
    assert source.report.preamble_lines == [1, 2, 3]
    assert source.report.header_line == 5
    assert source.report.footer_lines == [8, 10]
    assert source.report.blank_rows == 3


def test_a_total_row_in_the_middle_and_a_company_named_total_are_records(tmp_path: Path) -> None:
    path = tmp_path / "middle.csv"
    path.write_text("Name,Company,Email\nTotal,,\nAnn,Acme,ann@example.com\n"
                    "Bob,Total Solutions,bob@example.com\nTotal Solutions,Total SA,t@example.com\n", encoding="utf-8")
    records = list(CsvSource(path).records())
    assert [r.error for r in records] == [None, None, None, None]


def test_dates_in_five_formats_stay_as_written(tmp_path: Path) -> None:
    written = ["2024-03-01", "01/03/2024", "3/1/24", "01.03.2024", "1 March 2024 10:15"]
    path = tmp_path / "dates.csv"
    path.write_text("email,created\n" + "".join(f"p{i}@example.com,{value}\n" for i, value in enumerate(written)),
                    encoding="utf-8")
    assert [record.values["created"] for record in CsvSource(path).records()] == written


def test_explicit_encoding_and_delimiter_win_over_detection(tmp_path: Path) -> None:
    path = tmp_path / "explicit.csv"
    path.write_bytes("name;city\nRenée;Zürich\n".encode("cp1252"))
    source = CsvSource(path, encoding="latin-1", delimiter=";")
    assert source.layout.encoding == "latin-1"
    assert [record.values for record in source.records()] == [{"name": "Renée", "city": "Zürich"}]


def test_padding_cells_are_dropped_and_unnamed_columns_kept(tmp_path: Path) -> None:
    path = tmp_path / "padded.csv"
    path.write_text("Name,,Email,Email\nAnn,x,a@example.com,b@example.com,,\n", encoding="utf-8")
    source = CsvSource(path)
    assert source.columns() == ["Name", "column_2", "Email", "Email_2"]
    [record] = source.records()
    assert record.error is None
    assert record.values == {"Name": "Ann", "column_2": "x", "Email": "a@example.com", "Email_2": "b@example.com"}


def test_missing_and_empty_files_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        CsvSource(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_bytes(b"\n\n")
    with pytest.raises(SourceError, match="empty.csv: the file is empty"):
        CsvSource(tmp_path / "empty.csv")
