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

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from import_pipelines.sources.header import HEADER_SEARCH_ROWS, find_header, header_names, is_blank, looks_like_footer, span
from import_pipelines.sources.records import SourceError, SourceRecord

FOOTER_ERROR = "footer row, not imported"
# Rows read to place a sheet's header and columns: the header search window and data below it.
SHEET_SAMPLE_ROWS = HEADER_SEARCH_ROWS * 3
# The most rows a footer can have: the rows at the end of a table that are judged as one.
FOOTER_WINDOW = 50

# One row of a table: where it starts, its cells in column order, and why it is bad (or None).
# A reader may add elements after these (CsvSource.copy_rows: the row's text); a row the rules
# below change loses them.
Row = tuple[int, Sequence[Any], str | None]


@dataclass
class LayoutReport:
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


def table_rows(raw: Iterable[Row], *, width: int, report: LayoutReport) -> Iterator[Row]:
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
    line, cells = row[0], row[1]  # a reader's extra elements (a row's text) no longer fit the row
    count = len(cells)
    if count > width and is_blank(cells[width:]):
        return line, cells[:width], None
    return line, cells, f"{count} fields where the header has {width}"


def _is_footer(row: Row, width: int) -> bool:
    """A row at the end that reads as a footer; a short row there counts too ("Monday, March 4, 2024" as three fields)."""
    cells, error = row[1], row[2]
    return looks_like_footer(cells, width=width) or (error is not None and len(cells) < width)


@dataclass(frozen=True)
class SheetLayout:
    """Where a spreadsheet's table is: its header row, its first column, its column names."""

    header_row: int
    first_column: int  # 0-based position of the table's leftmost column
    columns: list[str]
    header_found: bool
    preamble_rows: list[int]


def sheet_layout(sample: Sequence[tuple[int, Sequence[Any]]], *, source: str) -> SheetLayout:
    """Place the table among a sheet's first rows (``(row number, cells from column A)``).

    The header is found by the rule of :mod:`import_pipelines.sources.header`; the table runs
    from its leftmost value to its rightmost one, in the header or the rows below it, so an
    empty first column or a first data row with empty leading cells loses no column.
    """
    rows = [cells for _, cells in sample]
    try:
        index, found = find_header(rows)
    except ValueError:
        raise SourceError(f"{source}: the sheet is empty") from None
    header, below = rows[index], [cells for cells in rows[index + 1:] if span(cells)]
    first_column = min(_first_filled(cells) for cells in [header, *below])
    width = max(span(cells) for cells in [header, *below]) - first_column
    labels = list(header[first_column:first_column + width])
    return SheetLayout(header_row=sample[index][0], first_column=first_column,
                       columns=header_names(labels + [None] * (width - len(labels))), header_found=found,
                       preamble_rows=[sample[i][0] for i in range(index) if span(rows[i])])


def _first_filled(cells: Sequence[Any]) -> int:
    """Position of the first non-empty cell (the row's length when there is none)."""
    return next((position for position, cell in enumerate(cells) if cell is not None and cell != ""), len(cells))


def fill(cells: list[Any], width: int) -> list[Any]:
    """A spreadsheet row padded with empty cells to ``width``: a sheet has no short rows, only empty cells.

    (Google's values API and streaming readers leave trailing empty cells out.)
    """
    return cells + [None] * (width - len(cells)) if len(cells) < width else cells


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


class SheetSource(TabularSource):
    """Base of spreadsheet-like readers (Excel, OpenDocument, Google Sheets).

    A subclass sets ``name`` and ``report`` and provides :meth:`raw_rows`: every row of the
    sheet (or range) in order, as ``(row number, cells)`` with typed values, ``None`` for an empty
    cell. The table is placed from the first :data:`SHEET_SAMPLE_ROWS` rows (:func:`sheet_layout`);
    rows are padded to the table's width, since a sheet has empty cells, never short rows.
    """

    line_word = "row"
    report: LayoutReport
    _layout: SheetLayout | None = None

    def raw_rows(self) -> Iterator[tuple[int, list[Any]]]:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    def columns(self) -> list[str]:
        """The header's column names."""
        return list(self._table_layout().columns)

    def rows(self) -> Iterator[Row]:
        """``(row number, cells, error)`` for every row below the header, cells in :meth:`columns` order."""
        layout = self._table_layout()
        self.report = LayoutReport(source=self.name, header_line=layout.header_row, header_found=layout.header_found,
                                 preamble_lines=layout.preamble_rows, details=self.report.details)
        width, first_column = len(layout.columns), layout.first_column

        def below_header() -> Iterator[Row]:
            for number, cells in self.raw_rows():
                if number > layout.header_row:
                    yield number, fill(cells[first_column:], width), None

        yield from table_rows(below_header(), width=width, report=self.report)

    def _table_layout(self) -> SheetLayout:
        """The table's place in the sheet, from its first rows."""
        if self._layout is None:
            self._layout = sheet_layout(list(itertools.islice(self.raw_rows(), SHEET_SAMPLE_ROWS)), source=self.name)
            self.report.header_line, self.report.header_found = self._layout.header_row, self._layout.header_found
            self.report.preamble_lines = self._layout.preamble_rows
        return self._layout
