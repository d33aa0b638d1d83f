"""Where a table's header is, what its columns are called, and which trailing rows are a footer.

Real exports rarely start with their header: a report title, a "Notes:" line, a date range or a
blank line come first, and a "Total" row or an "Exported by" line come last. CSV, Excel and
Google Sheets readers share these rules, so a preamble is found the same way in all of them.

The header is the first row among the first :data:`HEADER_SEARCH_ROWS` that looks like one:

- it has text in at least half of its span and no cell that looks like a value (a number, a
  date, an email address, a URL, a phone number, a typed spreadsheet value, a long sentence);
- its names are distinct;
- it spans the data below it: at least nine in ten of the following rows end within its span
  (a title line or a two-cell "Report,Contacts" preamble row does not).

When no row qualifies (a file of data without a header), the first non-empty row is the header,
as a spreadsheet user would read it, and the reader says so in its report. The rule is written
here rather than taken from a library because none of them handles spreadsheets, whose rows
carry typed values, and DuckDB's CSV sniffer (which finds preambles in CSV) cannot see a sheet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

HEADER_SEARCH_ROWS = 20
# Header names are short labels; a longer cell is a sentence of a preamble ("Exported from ...").
_LONGEST_HEADER_NAME = 64
_NUMBER = re.compile(r"^[-+(]?[$€£¥]?\s?\d[\d.,' \u00a0]*%?\)?$")
_DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^(?:https?://|www\.)", re.IGNORECASE)
_PHONE = re.compile(r"^\+?[\d ()./-]{7,}$")
# The start of a footer row's first value ("Total", "Grand Totals (200 records)", "Exported on ...").
_FOOTER_START = re.compile(
    r"\s*(?:(?:grand\s+)?totals?\b|sum\b|summe\b|gesamt|totaux?\b|totales?\b|suma\b"
    r"|record count\b|count\b|rows?\s*:|\d[\d,.]*\s+(?:records?|rows?|contacts?|entries)\b"
    r"|(?:exported|generated|printed|report generated)\b|confidential\b|copyright\b|\(c\)|©"
    r"|end of (?:report|file)\b)",
    re.IGNORECASE,
)


def is_blank(cells: Sequence[Any]) -> bool:
    """Whether a row has no value at all (empty strings and whitespace count as nothing)."""
    return all(_empty(cell) for cell in cells)


def span(cells: Sequence[Any]) -> int:
    """How many cells a row reaches: the position of its last non-empty cell, plus one."""
    for index in range(len(cells) - 1, -1, -1):
        if not _empty(cells[index]):
            return index + 1
    return 0


def looks_like_header(cells: Sequence[Any]) -> bool:
    """Whether a row, on its own, could be a header: distinct short text labels, no values."""
    width = span(cells)
    if width == 0:
        return False
    names = [cell for cell in cells[:width] if not _empty(cell)]
    if len(names) * 2 < width:
        return False
    if any(not isinstance(name, str) or _looks_like_value(name.strip()) for name in names):
        return False
    folded = [name.strip().casefold() for name in names]
    return len(set(folded)) == len(folded)


def find_header(rows: Sequence[Sequence[Any]], *, search_rows: int = HEADER_SEARCH_ROWS) -> tuple[int, bool]:
    """Index of the header among ``rows`` (the first rows of a table) and whether it was found by the rule.

    ``rows`` should reach well past ``search_rows`` so that the span test sees data below a late
    header. Returns ``(index, True)`` for a row that looks like a header, or ``(index of the first
    non-empty row, False)`` when none does. Raises ``ValueError`` when every row is empty.
    """
    first_filled = None
    for index, cells in enumerate(rows[:search_rows]):
        if is_blank(cells):
            continue
        if first_filled is None:
            first_filled = index
        if looks_like_header(cells) and _spans_data(span(cells), rows[index + 1:index + 1 + search_rows]):
            return index, True
    if first_filled is None:
        for index, cells in enumerate(rows):
            if not is_blank(cells):
                return index, False
        raise ValueError("no row has any value")
    return first_filled, False


def header_names(cells: Sequence[Any]) -> list[str]:
    """Column names from header cells: trimmed, an empty one named after its position, duplicates numbered.

    Every cell gives a column, so an unnamed column in the middle keeps its data
    (``["Name", "", "Email", "Email"]`` -> ``["Name", "column_2", "Email", "Email_2"]``).
    """
    names: list[str] = []
    seen: set[str] = set()
    for position, cell in enumerate(cells, start=1):
        name = "" if cell is None else str(cell).strip()
        if not name:
            name = f"column_{position}"
        candidate, suffix = name, 2
        while candidate.casefold() in seen:
            candidate, suffix = f"{name}_{suffix}", suffix + 1
        seen.add(candidate.casefold())
        names.append(candidate)
    return names


def looks_like_footer(cells: Sequence[Any], *, width: int) -> bool:
    """Whether a row at the end of a table reads as a footer rather than a record.

    A blank row, or a sparse one (values in at most two or half of the ``width`` columns) whose first
    value starts a "Total" / "Grand Totals (200 records)" / "Exported by ..." / "Confidential"
    line: a contact of "Total Solutions GmbH" fills its row and stays a record. Only rows that
    no record follows are treated as a footer (see :mod:`import_pipelines.sources.tabular`).
    """
    values = [cell for cell in cells if not _empty(cell)]
    if not values:
        return True
    first = values[0]
    return (len(values) <= max(2, width // 2) and isinstance(first, str)
            and _FOOTER_START.match(first) is not None)


def _spans_data(width: int, following: Sequence[Sequence[Any]]) -> bool:
    """Whether nine in ten of the non-empty rows below end within ``width`` (and at least one exists, or none at all)."""
    spans = [span(cells) for cells in following if not is_blank(cells)]
    if not spans:
        return True
    within = sum(1 for value in spans if value <= width)
    return within * 10 >= len(spans) * 9 and max(spans) * 2 > width


def _looks_like_value(text: str) -> bool:
    """Whether a cell's text reads as data (a number, date, email, URL, phone or sentence) rather than a label."""
    return (len(text) > _LONGEST_HEADER_NAME or bool(_NUMBER.match(text)) or bool(_DATE.match(text))
            or bool(_EMAIL.match(text)) or bool(_URL.match(text)) or bool(_PHONE.match(text)))


def _empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())
