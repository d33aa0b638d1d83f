"""A small sample reader for the mapping command line: headers and the first rows of a CSV or XLSX.

This stands in for the project's file sources (``import_pipelines.sources``) until the mapping
commands read through them; :func:`read_sample` is the one function to switch. It reads only the
first rows: the encoding from a byte-order mark, else UTF-8, else cp1252; the delimiter among
``,`` ``;`` tab and ``|`` by the standard library's sniffer; the header as the first row.
"""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path
from typing import Any

SAMPLE_ROWS = 50
_SNIFF_BYTES = 64 * 1024


def read_sample(path: str | Path, sheet: str | None = None, *, rows: int = SAMPLE_ROWS) -> tuple[list[str], list[list[Any]]]:
    """The header row and up to ``rows`` data rows of ``path`` (``.csv``/``.txt``/``.tsv`` or ``.xlsx``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.casefold()
    if suffix == ".xlsx":
        return _read_xlsx(path, sheet, rows)
    if suffix in (".csv", ".txt", ".tsv"):
        if sheet is not None:
            raise ValueError(f"{path}: --sheet applies to spreadsheets, not to a {suffix} file")
        return _read_csv(path, rows)
    raise ValueError(f"{path}: cannot read {suffix or 'a file without extension'} here (CSV or XLSX)")


def _read_csv(path: Path, rows: int) -> tuple[list[str], list[list[Any]]]:
    raw = path.read_bytes()[: _SNIFF_BYTES * 4]
    text = _decode(raw, path)
    try:
        dialect = csv.Sniffer().sniff(text[:_SNIFF_BYTES], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    table = list(itertools.islice(reader, rows + 1))
    if not table:
        raise ValueError(f"{path}: the file is empty")
    return [h.strip() for h in table[0]], table[1:]


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3:  # the sample cut a multi-byte character in two
            return raw[: exc.start].decode("utf-8")
    return raw.decode("cp1252", errors="replace")


def _read_xlsx(path: Path, sheet: str | None, rows: int) -> tuple[list[str], list[list[Any]]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise ValueError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(workbook.sheetnames)}")
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        table = [list(row) for row in itertools.islice(worksheet.iter_rows(values_only=True), rows + 1)]
    finally:
        workbook.close()
    if not table:
        raise ValueError(f"{path}: sheet {worksheet.title!r} is empty")
    headers = ["" if h is None else str(h).strip() for h in table[0]]
    width = len(headers)
    return headers, [(row + [None] * width)[:width] for row in table[1:]]
