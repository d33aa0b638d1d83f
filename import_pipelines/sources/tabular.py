"""What every table-shaped source (CSV, spreadsheet, Google Sheet) does after it has parsed a row.

A reader parses its format into raw rows, each with the physical line (or sheet row) it starts
on and, for a row the parser could not read, an error. :func:`table_rows` turns those into the
rows of the table below the header:

- blank rows are skipped and counted (they carry nothing);
- empty cells past the header's width are dropped (Excel and many exporters pad rows);
- a row with fewer or more cells than the header is an error that names both counts;
- the rows at the very end that read as a footer ("Total", "Grand Totals (200 records)",
  "Exported by ...", or a row shorter than the header), with nothing but other such rows and
  blank lines after them, are reported as footers (an error row each, "footer row, not
  imported"); the same row in the middle of the table is an ordinary row.

:class:`TabularSource` gives every such reader the record contract (:meth:`records`) on top of a
faster view (:meth:`rows`: the cells in column order, no dict per row), which a bulk writer can
use directly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from import_pipelines.sources.header import is_blank, looks_like_footer
from import_pipelines.sources.records import SourceRecord

FOOTER_ERROR = "footer row, not imported"
# The most rows a footer can have: the rows at the end of a table that are judged as one.
FOOTER_WINDOW = 50

# One row of a table: where it starts, its cells in column order, and why it is bad (or None).
Row = tuple[int, Sequence[Any], str | None]


@dataclass
class ReadReport:
    """What a reader found besides the records: layout, skipped preamble, footers, blank lines."""

    source: str
    header_line: int | None = None
    header_found: bool = True  # False: no row looked like a header; the first non-empty row was taken
    preamble_lines: list[int] = field(default_factory=list)  # lines before the header with something on them
    footer_lines: list[int] = field(default_factory=list)
    blank_rows: int = 0
    rows: int = 0  # rows yielded below the header, good or bad (footers included)
    errors: int = 0  # of which could not be read as they should
    details: dict[str, Any] = field(default_factory=dict)  # format specific: encoding, delimiter, sheet ...


def table_rows(raw: Iterable[Row], *, width: int, report: ReadReport) -> Iterator[Row]:
    """Apply the table rules above to ``raw`` rows (those below the header) and count them in ``report``.

    Rows leave :data:`FOOTER_WINDOW` rows late, so that at the end the last ones can be judged
    as footers without a test on every row of the file.
    """
    window: deque[Row] = deque()
    rows = errors = blank = 0
    try:
        for row in raw:
            if row[2] is None:
                cells = row[1]
                # The first cell decides for most rows, before any scan of the whole row.
                if not (cells[0] if cells else None) and is_blank(cells):
                    blank += 1
                    continue
                if len(cells) != width:
                    row = _fitted(row, width)
            window.append(row)
            if len(window) > FOOTER_WINDOW:
                row = window.popleft()
                rows += 1
                errors += row[2] is not None
                yield row
        footers = 0
        while footers < len(window) and _is_footer(window[-1 - footers], width):
            footers += 1
        for index, row in enumerate(window):
            rows += 1
            errors += row[2] is not None or index >= len(window) - footers
            if index >= len(window) - footers:
                report.footer_lines.append(row[0])
                row = (row[0], row[1], FOOTER_ERROR)
            yield row
    finally:
        report.rows += rows
        report.errors += errors
        report.blank_rows += blank


def _fitted(row: Row, width: int) -> Row:
    """A row whose cell count differs from the header's: padding dropped, or an error naming both counts."""
    line, cells, _ = row
    count = len(cells)
    if count > width and is_blank(cells[width:]):
        return line, cells[:width], None
    return line, cells, f"{count} fields where the header has {width}"


def _is_footer(row: Row, width: int) -> bool:
    """A row at the end that reads as a footer; a short row there counts too ("Monday, March 4, 2024" as three fields)."""
    _, cells, error = row
    return looks_like_footer(cells, width=width) or (error is not None and len(cells) < width)


def row_values(columns: Sequence[str], cells: Sequence[Any]) -> dict[str, Any]:
    """Values by column name; cells beyond the header are kept as ``column_N`` so nothing is lost."""
    values = dict(zip(columns, cells))
    for position in range(len(columns), len(cells)):
        values[f"column_{position + 1}"] = cells[position]
    return values


class TabularSource:
    """Base of table-shaped readers: :meth:`records` (the contract) on top of :meth:`rows`.

    A subclass provides ``name``, :meth:`columns` and :meth:`rows`; a record's location is
    ``"<name> <line_word> <line>"`` (``contacts.csv line 17``).
    """

    name: str

    def columns(self) -> list[str]:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def rows(self) -> Iterator[Row]:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    #: what precedes the line number in a record's location: "line" (files) or "row" (sheets)
    line_word = "line"

    def records(self) -> Iterator[SourceRecord]:
        """One record per row below the header (errors and footers included), in file order."""
        columns = self.columns()
        width = len(columns)
        prefix = f"{self.name} {self.line_word} "
        for line, cells, error in self.rows():
            values = dict(zip(columns, cells)) if len(cells) <= width else row_values(columns, cells)
            yield SourceRecord(values, prefix + str(line), line, None, error)
