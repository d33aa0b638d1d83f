"""Workbooks: typed values, cached formula results, preambles and footers, sheets, wrong files."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import pytest

from import_pipelines.sources import SourceError
from import_pipelines.sources.excel import ExcelSource
from import_pipelines.sources.tabular import FOOTER_ERROR
from import_pipelines_tests.sources import contacts


def _with_cached_values(path: Path, cached: dict[str, tuple[str, str]]) -> Path:
    """Give formula cells the cached results Excel stores beside them (openpyxl writes none: `<v/>`, or `<v></v>` with lxml)."""
    out = path.with_name(f"cached-{path.name}")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                text = data.decode()
                for ref, (kind, value) in cached.items():
                    text = re.sub(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*(?:/>|></v>)',
                                  lambda m: f'<c r="{ref}"{m.group(1)} t="{kind}"><f>{m.group(2)}</f><v>{value}</v>',
                                  text)
                data = text.encode()
            target.writestr(item, data)
    return out


@pytest.fixture
def report_xlsx(tmp_path: Path) -> Path:
    """A report sheet: a three-line title, the table from B5 with an empty column A, formulas, a Total row."""
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Report"
    sheet["B1"], sheet["B2"], sheet["B3"] = "Contacts by region", "Period: 2024-01-01 to 2024-03-31", "EMEA"
    sheet.append([None, "Name", "Email", "Orders", "Revenue", "Since", "Active"])
    sheet.append([None, "Ann", "ann@example.com", 3, 120.5, dt.date(2024, 1, 5), True])
    sheet.append([None, "Bob", "bob@example.com", 1, "=D6*10", dt.datetime(2024, 2, 1, 9, 30), False])
    sheet.append([None, "Total", None, "=SUM(D5:D6)", "=SUM(E5:E6)", None, None])
    path = tmp_path / "report.xlsx"
    workbook.save(path)
    # Rows: title 1-3, header 4, data 5-6, total 7.
    return _with_cached_values(path, {"E6": ("n", "10"), "D7": ("n", "4"), "E7": ("n", "130.5")})


@pytest.mark.parametrize("streamed", [False, True], ids=["calamine", "openpyxl-streaming"])
def test_report_sheet_typed_values_cached_formulas_preamble_and_footer(report_xlsx: Path, streamed: bool) -> None:
    source = ExcelSource(report_xlsx, calamine_max_xml_bytes=0 if streamed else 1 << 30)
    assert source.report.details["reader"] == ("openpyxl" if streamed else "calamine")
    assert source.columns() == ["Name", "Email", "Orders", "Revenue", "Since", "Active"]
    records = list(source.records())
    assert [(r.line, r.location, r.error) for r in records] == [
        (5, "cached-report.xlsx Report row 5", None), (6, "cached-report.xlsx Report row 6", None),
        (7, "cached-report.xlsx Report row 7", FOOTER_ERROR)]
    assert records[0].values == {"Name": "Ann", "Email": "ann@example.com", "Orders": 3, "Revenue": 120.5,
                                 "Since": dt.date(2024, 1, 5), "Active": True}
    # The formula's cached result, typed, never its text.
    assert records[1].values["Revenue"] == 10 and records[1].values["Since"] == dt.datetime(2024, 2, 1, 9, 30)
    assert records[1].values["Active"] is False
    assert source.report.preamble_lines == [1, 2, 3] and source.report.header_line == 4
    assert source.report.footer_lines == [7]


def test_ods_formulas_are_read_as_their_cached_values(tmp_path: Path) -> None:
    path = contacts.write_ods(tmp_path / "contacts.ods", count=20, formula_cells=True)
    records = list(ExcelSource(path).records())
    assert [contacts.normalised(r.values) for r in records] == contacts.expected(20)
    assert not any(isinstance(r.values["score"], str) for r in records)


def test_dates_in_five_formats_come_back_typed(tmp_path: Path) -> None:
    import openpyxl

    formats = ["yyyy-mm-dd", "dd/mm/yyyy", "m/d/yy", "dd.mm.yyyy", "d mmmm yyyy hh:mm"]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["email", "created"])
    for number, number_format in enumerate(formats):
        sheet.append([f"p{number}@example.com", dt.datetime(2024, 3, 1, 10, 15) if "hh" in number_format
                      else dt.date(2024, 3, 1)])
        sheet.cell(row=number + 2, column=2).number_format = number_format
    path = tmp_path / "dates.xlsx"
    workbook.save(path)
    values = [r.values["created"] for r in ExcelSource(path).records()]
    assert values == [dt.date(2024, 3, 1)] * 4 + [dt.datetime(2024, 3, 1, 10, 15)]


def test_a_named_sheet_or_the_first_one(tmp_path: Path) -> None:
    path = contacts.write_xlsx(tmp_path / "book.xlsx", count=3)
    assert ExcelSource(path).sheet == "Read me"
    assert len(list(ExcelSource(path, sheet="Contacts").records())) == 3
    with pytest.raises(SourceError, match=r"book.xlsx: no sheet named 'Leads' \(sheets: Read me, Contacts\)"):
        ExcelSource(path, sheet="Leads")


def test_a_file_named_xlsx_that_is_not_a_workbook(tmp_path: Path) -> None:
    fake = tmp_path / "export.xlsx"
    fake.write_text("name,email\nAnn,ann@example.com\n")
    with pytest.raises(SourceError, match="export.xlsx: not an Excel .* or OpenDocument .* workbook"):
        ExcelSource(fake)
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes((tmp_path / "export.xlsx").read_bytes())
    with zipfile.ZipFile(damaged, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not-really/>")
    with pytest.raises(SourceError, match="damaged.xlsx: cannot read the xlsx workbook"):
        ExcelSource(damaged)


def test_an_empty_first_data_row_and_leading_empty_cells_keep_every_column(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Name", "Email", "Phone", "Notes"])
    sheet.append([None, None, None, None])
    sheet.append([None, None, "+33 1 23", None])
    sheet.append(["Ann", None, None, "late"])
    path = tmp_path / "sparse.xlsx"
    workbook.save(path)
    source = ExcelSource(path)
    records = list(source.records())
    assert source.columns() == ["Name", "Email", "Phone", "Notes"]
    assert [r.values for r in records] == [
        {"Name": None, "Email": None, "Phone": "+33 1 23", "Notes": None},
        {"Name": "Ann", "Email": None, "Phone": None, "Notes": "late"}]
    assert source.report.blank_rows == 1
