"""The same 200 contacts written in every format a source reads, and the normalisation that compares them.

Values are typed where the format types them (Excel, OpenDocument, JSON, Google Sheets) and text
where it does not (CSV): :func:`normalised` turns both into the same strings, so one expected
list serves every format.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from import_pipelines_tests.sources.csv_corpus import people

COLUMNS = ["external_id", "first_name", "last_name", "email", "phone", "company", "city", "zip_code", "created_at",
           "score", "vip", "notes"]


def contacts(count: int = 200) -> list[dict[str, Any]]:
    """``count`` contacts with typed values: ints, floats, dates, booleans, text with commas and quotes."""
    out = []
    for number, person in enumerate(people(count, seed=42, latin1=True), start=1):
        out.append({
            "external_id": 5000 + number,
            "first_name": person["first"],
            "last_name": person["last"],
            "email": person["email"],
            "phone": person["phone"],
            "company": person["company"] or None,
            "city": person["city"],
            "zip_code": f"{number * 37 % 100000:05d}",  # leading zeros: text in every format
            "created_at": dt.date(2024, 1 + number % 12, 1 + number % 28),
            "score": round(number * 1.25 % 100, 2),
            "vip": number % 7 == 0,
            "notes": person["note"] or None,
        })
    return out


def normalised(values: dict[str, Any]) -> dict[str, str | None]:
    """One record's values as comparable strings: empty is None, numbers without trailing zeros, ISO dates."""
    return {name: _text(values.get(name)) for name in COLUMNS}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float, Decimal)):
        text = format(Decimal(str(value)).normalize(), "f")
        return text
    return str(value)


def expected(count: int = 200) -> list[dict[str, str | None]]:
    return [normalised(row) for row in contacts(count)]


def write_csv(path: Path, *, encoding: str, delimiter: str, count: int = 200) -> Path:
    """The contacts as CSV text: values as :func:`normalised` writes them, dates ISO, booleans true/false."""
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(COLUMNS)
        for row in expected(count):
            writer.writerow(["" if row[name] is None else row[name] for name in COLUMNS])
    return path


def write_xlsx(path: Path, *, count: int = 200, sheet: str = "Contacts", preamble: list[str] = ()) -> Path:
    """The contacts as typed cells of an .xlsx sheet (a first sheet of notes precedes it)."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.title = "Read me"
    workbook.active.append(["This workbook holds the contacts export."])
    worksheet = workbook.create_sheet(sheet)
    for line in preamble:
        worksheet.append([line])
    worksheet.append(COLUMNS)
    for row in contacts(count):
        worksheet.append([row[name] for name in COLUMNS])
    workbook.save(path)
    return path


def write_xls(path: Path, *, count: int = 200, sheet: str = "Contacts") -> Path:
    """The contacts as typed cells of an Excel 97-2003 (.xls) sheet."""
    import xlwt

    workbook = xlwt.Workbook(encoding="utf-8")
    worksheet = workbook.add_sheet(sheet)
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for column, name in enumerate(COLUMNS):
        worksheet.write(0, column, name)
    for number, row in enumerate(contacts(count), start=1):
        for column, name in enumerate(COLUMNS):
            value = row[name]
            if isinstance(value, dt.date):
                worksheet.write(number, column, value, date_style)
            elif value is not None:
                worksheet.write(number, column, value)
    workbook.save(str(path))
    return path


def write_ods(path: Path, *, count: int = 200, sheet: str = "Contacts",
              formula_cells: bool = False) -> Path:
    """The contacts as typed cells of an OpenDocument sheet (odfpy).

    With ``formula_cells`` the score column holds ``=[.J<row>]`` formulas with their cached value,
    as LibreOffice saves them.
    """
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name=sheet)

    def cell(value: Any, formula: str | None = None) -> TableCell:
        extra = {"formula": formula} if formula else {}
        if value is None:
            return TableCell()
        if isinstance(value, bool):
            made = TableCell(valuetype="boolean", booleanvalue="true" if value else "false", **extra)
            text = "TRUE" if value else "FALSE"
        elif isinstance(value, dt.date):
            made = TableCell(valuetype="date", datevalue=value.isoformat(), **extra)
            text = value.isoformat()
        elif isinstance(value, (int, float)):
            made = TableCell(valuetype="float", value=str(value), **extra)
            text = str(value)
        else:
            made = TableCell(valuetype="string", **extra)
            text = str(value)
        made.addElement(P(text=text))
        return made

    header = TableRow()
    for name in COLUMNS:
        header.addElement(cell(name))
    table.addElement(header)
    for number, row in enumerate(contacts(count), start=2):
        table_row = TableRow()
        for name in COLUMNS:
            formula = f"of:=[.J{number}]*1" if formula_cells and name == "score" else None
            table_row.addElement(cell(row[name], formula))
        table.addElement(table_row)
    document.spreadsheet.addElement(table)
    document.save(str(path))
    return path


def write_json(path: Path, *, shape: str, count: int = 200) -> Path:
    """The contacts as JSON: ``array``, ``wrapped`` ({"contacts": [...], "total": n}) or ``lines``."""
    rows = [{name: (value.isoformat() if isinstance(value, dt.date) else value) for name, value in row.items()}
            for row in contacts(count)]
    if shape == "array":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    elif shape == "wrapped":
        path.write_text(json.dumps({"total": count, "page": 1, "contacts": rows}, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def sheet_rows(count: int = 200) -> list[list[Any]]:
    """The contacts as a Google Sheet's cells (dates as date cells shown in ISO form)."""
    from import_pipelines_tests.sources.fake_google import date_cell

    rows: list[list[Any]] = [list(COLUMNS)]
    for row in contacts(count):
        rows.append([date_cell(row[name]) if isinstance(row[name], dt.date) else row[name] for name in COLUMNS])
    return rows
