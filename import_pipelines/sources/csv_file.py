"""Read a CSV file as records, one pass, in bounded memory, with the physical line of every record.

The layout (encoding, delimiter, quote, header line) comes from :func:`sniff_layout` on a bounded
sample; the file is then parsed once, from the start, by Python's csv module, which is C code and
reads about a million 15-column rows a second here. What no parser does for us is done around it:

- **Physical lines.** The file is read in blocks of lines (about 1 MiB) and the parser runs over
  each block's list, so the parser's own line count gives the line a record starts on, even when
  a quoted field spans several, and the lines of any record are at hand. A record cut by the end
  of a block is carried into the next one.
- **Unterminated quotes.** The parser runs in strict mode, where a quote that never closes
  (or closes in the middle of a field, or makes a field longer than the csv module's limit)
  raises. The record's first line then becomes an error row, and the lines after it are parsed
  again, so a stray quote costs one row, not the rest of the file.
- **Undecodable bytes.** The file is decoded with ``surrogateescape``; a line that holds an
  escaped byte becomes an error row naming the bytes and the encoding, with U+FFFD in their
  place in its values. The escape handler counts what it escapes, so lines are only checked
  once a byte has been escaped: a clean file pays nothing for the check.
- **Ragged rows, preambles, footers**: see :mod:`import_pipelines.sources.tabular`.

A bulk writer can skip re-serialising what was parsed: :meth:`CsvSource.copy_rows` gives, beside
each row's cells, the row's own text when PostgreSQL's CSV parser would read the same cells from
it (one physical line, no quote character, no escaped byte), so that the text goes to ``COPY``
as it is and only the other rows are written out cell by cell.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from import_pipelines.sources.header import header_names
from import_pipelines.sources.records import SourceError
from import_pipelines.sources.sniff import CsvLayout, sniff_layout
from import_pipelines.sources.tabular import LayoutReport, Row, TabularSource, table_rows

_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
# Text parsed per block of lines: the parser runs over a list in C, with no Python code per line.
_BLOCK_CHARS = 1 << 20
_ERRORS = "import_pipelines.escape_and_count"
_surrogateescape = codecs.lookup_error("surrogateescape")
_escapes_seen = 0  # bytes escaped so far by any reader: until it moves, no line needs checking


def _escape_and_count(error: UnicodeDecodeError) -> tuple[str, int]:
    """``surrogateescape``, counting: the first escaped byte switches readers to checking every line."""
    global _escapes_seen
    _escapes_seen += 1
    return _surrogateescape(error)


codecs.register_error(_ERRORS, _escape_and_count)


class CsvSource(TabularSource):
    """A CSV file as a :class:`~import_pipelines.sources.records.RecordSource`.

    ``encoding`` and ``delimiter`` override detection; ``layout`` skips it altogether. After
    :meth:`rows` or :meth:`records` has run to the end, :attr:`report` holds what was skipped
    (preamble lines, footers, blank rows) and the layout used.
    """

    def __init__(self, path: str | Path, *, encoding: str | None = None, delimiter: str | None = None,
                 layout: CsvLayout | None = None, name: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        self.name = name or self.path.name
        self.layout = layout or sniff_layout(self.path, encoding=encoding, delimiter=delimiter)
        self._columns: list[str] | None = None
        self.report = LayoutReport(source=self.name, header_line=self.layout.header_line,
                                 header_found=self.layout.header_found,
                                 details={"encoding": self.layout.encoding, "delimiter": self.layout.delimiter,
                                          "quotechar": self.layout.quotechar})

    def columns(self) -> list[str]:
        """The header's column names (reads only up to the header line)."""
        if self._columns is None:
            parsed = self._parsed()
            try:
                self._header(parsed)
            finally:
                parsed.close()
        return list(self._columns)

    def rows(self) -> Iterator[Row]:
        """``(line, cells, error)`` for every row below the header, cells in :meth:`columns` order."""
        return self._table_rows(with_text=False)

    def copy_rows(self) -> Iterator[tuple[int, list[str], str | None, str | None] | Row]:
        """:meth:`rows`, each clean row with its text as a line that ``COPY (FORMAT csv)`` reads as the same cells.

        A row of the header's width, on one physical line, holding no quote character and no
        undecodable byte, comes as ``(line, cells, None, text)``, ``text`` ending in ``\\n``;
        every other row (an error, a footer, one the table rules changed) as ``(line, cells, error)``.
        Only a layout PostgreSQL can read (a one-byte delimiter and quote) gives texts.
        """
        return self._table_rows(with_text=self.copy_dialect() is not None)

    def _table_rows(self, *, with_text: bool) -> Iterator[Row]:
        """The rows below the header through the table rules, with a fresh report (see :meth:`_parsed`)."""
        self.report = LayoutReport(source=self.name, header_line=self.report.header_line,
                                   header_found=self.report.header_found, details=self.report.details)
        parsed = self._parsed(with_text=with_text)
        try:
            width = len(self._header(parsed))
            yield from table_rows(parsed, width=width, report=self.report)
        finally:
            parsed.close()

    def copy_dialect(self) -> tuple[str, str] | None:
        """``(delimiter, quote)`` of the file when ``COPY (FORMAT csv)`` can read its lines, else None."""
        delimiter, quote = self.layout.delimiter, self.layout.quotechar
        if len(delimiter.encode()) != 1 or not quote or len(quote.encode()) != 1 or delimiter in "\r\n" + quote:
            return None
        return delimiter, quote

    def _header(self, parsed: Iterator[Row]) -> list[str]:
        """Consume the preamble and the header from ``parsed``; note the preamble in the report."""
        for line, cells, *_ in parsed:
            if line < self.layout.header_line:
                if any(cell.strip() for cell in cells):
                    self.report.preamble_lines.append(line)
                continue
            if cells:
                cells = [cells[0].removeprefix("\ufeff"), *cells[1:]]
            self._columns = header_names(cells)
            self.report.header_line = line
            return self._columns
        raise SourceError(f"{self.name}: the file ends before its header (line {self.layout.header_line})")

    def _parsed(self, *, with_text: bool = False) -> Iterator[Row]:
        """Every record of the file from line 1: ``(first line, cells, error)``; blank lines give no cells.

        ``with_text``: a record on one line without a quote character or an escaped byte comes
        with its line (ending in ``\\n``) as a fourth element, for :meth:`copy_rows`.
        """
        layout = self.layout
        quote = layout.quotechar
        dialect: dict[str, Any] = {"delimiter": layout.delimiter, "strict": True}
        if layout.quotechar:
            dialect["quotechar"] = layout.quotechar
        else:
            dialect["quoting"] = csv.QUOTE_NONE
        escapes_at_start = _escapes_seen
        with open(self.path, encoding=layout.encoding, errors=_ERRORS, newline="") as handle:
            carry: list[str] = []  # the lines of a record that the end of the previous block cut
            base = 0  # lines before the block
            while True:
                fresh = handle.readlines(_BLOCK_CHARS)
                block = carry + fresh if carry else fresh
                if not block:
                    return
                carry = []
                offset = 0  # where in the block the current parser started
                reader = csv.reader(block, **dialect)
                done = 0  # lines of the block read by the current parser up to the last record
                while True:
                    try:
                        cells = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as error:
                        start = offset + done
                        if fresh and offset + reader.line_num == len(block) and "end of data" in str(error):
                            carry = block[start:]  # a quoted field goes on in the next block
                            break
                        # The record's first line is the bad one; the lines the parser swallowed after
                        # it are read again as records of their own.
                        yield base + start + 1, _lenient_cells(block[start], dialect), \
                            _quote_error(error, block[start], layout.quotechar)
                        offset, done = start + 1, 0
                        reader = csv.reader(itertools.islice(block, offset, None), **dialect)
                        continue
                    start = offset + done
                    done = reader.line_num
                    if _escapes_seen != escapes_at_start:
                        end = offset + done
                        text = block[start] if end == start + 1 else "".join(block[start:end])
                        if not (text.isascii() or _decodes(text)):
                            yield base + start + 1, [_ESCAPED_BYTE.sub("\ufffd", cell) for cell in cells], \
                                _bytes_error(text, layout.encoding)
                            continue
                    if with_text and done == start - offset + 1 and quote not in (text := block[start]):
                        # PostgreSQL reads a line without quotes as Python does: split at the delimiter
                        if text[-1:] != "\n" or text[-2:-1] == "\r":
                            text = text.rstrip("\r\n") + "\n"
                        yield base + start + 1, cells, None, text
                    else:
                        yield base + start + 1, cells, None
                base += len(block) - len(carry)


def _decodes(text: str) -> bool:
    """Whether ``text`` holds no byte that its encoding could not decode (no escaped surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bytes_error(text: str, encoding: str) -> str:
    escaped = bytes(ord(char) - 0xDC00 for char in _ESCAPED_BYTE.findall(text))
    shown = escaped[:8].hex(" ")
    return (f"undecodable bytes in {encoding}: {shown}{' ...' if len(escaped) > 8 else ''} "
            f"(read as U+FFFD; give the file's encoding if it is not {encoding})")


def _quote_error(error: csv.Error, line: str, quotechar: str) -> str:
    """The parser's complaint, said in terms of the file."""
    message = str(error)
    closes_badly = "expected after" in message and line.count(quotechar) % 2 == 1
    if "end of data" in message or "field limit" in message or closes_badly:
        return f"unterminated quote: a quoted field that starts on this line does not close ({message})"
    return f"malformed quoting ({message})"


def _lenient_cells(line: str, dialect: dict[str, Any]) -> list[str]:
    """What can be read of a bad line on its own, for the error row's values."""
    try:
        return [_ESCAPED_BYTE.sub("\ufffd", cell) for cell in next(csv.reader([line], **{**dialect, "strict": False}))]
    except (csv.Error, StopIteration):
        return [_ESCAPED_BYTE.sub("\ufffd", line.rstrip("\r\n"))]
