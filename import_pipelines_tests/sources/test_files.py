"""open_file decides by content; sampling reads only the start of a source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from import_pipelines.sources import SourceError
from import_pipelines.sources.csv_file import CsvSource
from import_pipelines.sources.excel import ExcelSource
from import_pipelines.sources.files import detect_kind, open_file, sample_file, sample_source
from import_pipelines.sources.json_file import JsonSource
from import_pipelines_tests.sources import contacts


def test_each_kind_is_recognised_by_content_whatever_its_name(tmp_path: Path) -> None:
    made = {
        "xlsx": contacts.write_xlsx(tmp_path / "a", count=3),
        "xls": contacts.write_xls(tmp_path / "b.dat", count=3),
        "ods": contacts.write_ods(tmp_path / "c.xlsx", count=3),
        "json": contacts.write_json(tmp_path / "d.csv", shape="wrapped", count=3),
        "csv": contacts.write_csv(tmp_path / "e.xls", encoding="utf-16", delimiter="\t", count=3),
    }
    for kind, path in made.items():
        assert detect_kind(path) == kind, path
    assert isinstance(open_file(made["xlsx"]), ExcelSource)
    assert isinstance(open_file(made["json"]), JsonSource)
    tab_separated = open_file(made["csv"])  # a "contacts.xls" that is tab-separated text, as CRMs export
    assert isinstance(tab_separated, CsvSource)
    assert [contacts.normalised(r.values) for r in tab_separated.records()] == contacts.expected(3)
    (tmp_path / "f.txt").write_text("[Name],[Email]\nAnn,ann@example.com\n", encoding="utf-8")
    assert detect_kind(tmp_path / "f.txt") == "csv"


def test_files_that_are_nothing_readable(tmp_path: Path) -> None:
    (tmp_path / "page.xls").write_text("<html><body><table><tr><td>Ann</td></tr></table></body></html>")
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04" + os.urandom(2000))
    (tmp_path / "random.xlsx").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "empty.csv").write_bytes(b"")
    expected = {"page.xls": "an HTML or XML document", "broken.xlsx": "holds no Excel or OpenDocument workbook",
                "random.xlsx": "a binary file named as a workbook", "empty.csv": "the file is empty"}
    for name, message in expected.items():
        with pytest.raises(SourceError, match=message):
            open_file(tmp_path / name)
    with pytest.raises(SourceError, match="no such file"):
        open_file(tmp_path / "missing.csv")


def test_options_must_fit_the_kind(tmp_path: Path) -> None:
    path = contacts.write_csv(tmp_path / "c.csv", encoding="utf-8", delimiter=",", count=2)
    with pytest.raises(SourceError, match="c.csv is a CSV file: sheet does not apply to it"):
        open_file(path, sheet="Contacts")
    workbook = contacts.write_xlsx(tmp_path / "w.xlsx", count=2)
    with pytest.raises(SourceError, match=r"w.xlsx is an Excel workbook \(.xlsx\): delimiter does not apply"):
        open_file(workbook, delimiter=";")
    assert open_file(path, encoding="latin-1", delimiter=",").layout.encoding == "latin-1"


def test_a_sample_is_the_headers_and_first_good_records(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("Notes: sample\nName,Email\nAnn,ann@example.com\nBob,bob@example.com,extra\n"
                    + "".join(f"P{n},p{n}@example.com\n" for n in range(100)), encoding="utf-8")
    sample = sample_file(path, rows=5)
    assert sample.columns == ["Name", "Email"]
    assert [row["Name"] for row in sample.rows] == ["Ann", "P0", "P1", "P2", "P3"]
    assert sample.errors == ["s.csv line 4: 3 fields where the header has 2"]
    workbook = sample_source(open_file(contacts.write_xlsx(tmp_path / "w.xlsx", count=30), sheet="Contacts"), rows=3)
    assert workbook.source == "w.xlsx Contacts" and workbook.columns == contacts.COLUMNS and len(workbook.rows) == 3
