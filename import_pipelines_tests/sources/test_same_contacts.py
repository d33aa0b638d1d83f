"""The same 200 contacts read from every format end as the same records (after type normalisation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from import_pipelines.sources import RecordSource
from import_pipelines.sources.files import open_file
from import_pipelines.sources.sheets import GoogleSheetSource
from import_pipelines_tests.sources import contacts
from import_pipelines_tests.sources.fake_google import FakeSpreadsheet, FakeWorksheet


def _read(source: RecordSource) -> list[dict]:
    records = list(source.records())
    assert [record.error for record in records if record.error] == []
    assert source.columns() == contacts.COLUMNS
    return [contacts.normalised(record.values) for record in records]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_in_three_encodings_and_two_delimiters(tmp_path: Path, encoding: str, delimiter: str) -> None:
    path = contacts.write_csv(tmp_path / "contacts.csv", encoding=encoding, delimiter=delimiter)
    source = open_file(path)
    assert _read(source) == contacts.expected()
    assert (source.layout.delimiter, source.layout.encoding) == (delimiter, encoding)


@pytest.mark.parametrize("writer", ["xlsx", "xls", "ods"])
def test_workbooks(tmp_path: Path, writer: str) -> None:
    path = getattr(contacts, f"write_{writer}")(tmp_path / f"contacts.{writer}")
    assert _read(open_file(path, sheet="Contacts")) == contacts.expected()


@pytest.mark.parametrize("shape", ["array", "wrapped", "lines"])
def test_json_shapes(tmp_path: Path, shape: str) -> None:
    path = contacts.write_json(tmp_path / f"contacts-{shape}.json", shape=shape)
    assert _read(open_file(path)) == contacts.expected()


def test_google_sheet(google, sheets) -> None:
    google.add(FakeSpreadsheet(key="1AbCdEf", title="CRM export", worksheets=[
        FakeWorksheet(title="Contacts", rows=contacts.sheet_rows(), row_count=1000, col_count=20)]))
    source = GoogleSheetSource("https://docs.google.com/spreadsheets/d/1AbCdEf/edit#gid=0", client=sheets,
                               chunk_rows=64)
    assert _read(source) == contacts.expected()
