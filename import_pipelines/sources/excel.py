"""Read a sheet of an Excel (.xlsx, .xls) or OpenDocument (.ods) workbook as typed records.

python-calamine (Rust) reads all three formats, with the cached value of every formula (never
its text) and typed cells: numbers (an integral number comes back as ``int``), dates
(``date`` or ``datetime`` as the cell is formatted), booleans, text; an empty cell and an error
cell (``#DIV/0!``) are ``None``. Measured against the pure-Python readers on the same 15-column
sheets (figures in the README): .xlsx 24x openpyxl's read-only mode, .xls 3x xlrd, .ods about
90x odfpy, which also took 866 MB for 20,000 rows.

calamine holds the whole sheet in memory (about 1.3 bytes per byte of the sheet's XML). An .xls
sheet is bounded by its format (65,536 rows), an .ods rarely large; an .xlsx whose sheet XML
would exceed :data:`CALAMINE_MAX_XML_BYTES` is streamed by openpyxl's read-only mode instead
(flat memory, far slower), with the same value types.

The header is found by the rule of :mod:`import_pipelines.sources.header` (a report title or
notes above it are skipped); rows are numbered as the spreadsheet numbers them.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from import_pipelines.sources.records import SourceError
from import_pipelines.sources.tabular import LayoutReport, SheetSource

SpreadsheetFormat = Literal["xlsx", "xls", "ods"]
CALAMINE_MAX_XML_BYTES = 128 * 1024 * 1024
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
_LARGEST_EXACT_FLOAT = 2 ** 53


def spreadsheet_format(path: Path) -> SpreadsheetFormat | None:
    """What kind of workbook the file is, by its content (not its name); None when it is none."""
    with open(path, "rb") as handle:
        head = handle.read(len(_OLE2_MAGIC))
    if head == _OLE2_MAGIC:
        return "xls"
    if not head.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.read("mimetype").strip() == _ODS_MIMETYPE:
                return "ods"
            if "xl/workbook.xml" in names:
                return "xlsx"
    except zipfile.BadZipFile:
        return None
    return None


class ExcelSource(SheetSource):
    """One sheet of a workbook as a :class:`~import_pipelines.sources.records.RecordSource`.

    ``sheet`` names the sheet; by default the first visible worksheet. A file that is not a
    workbook (whatever its extension), a missing sheet or an unreadable file is a
    :class:`SourceError` naming the file and what is wrong.
    """

    line_word = "row"

    def __init__(self, path: str | Path, *, sheet: str | None = None, name: str | None = None,
                 calamine_max_xml_bytes: int = CALAMINE_MAX_XML_BYTES) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        kind = spreadsheet_format(self.path)
        if kind is None:
            raise SourceError(f"{self.path.name}: not an Excel (.xlsx, .xls) or OpenDocument (.ods) workbook "
                              f"(its content is neither a zip with a workbook nor an OLE2 file)")
        self.format: SpreadsheetFormat = kind
        self._streamed = kind == "xlsx" and _sheet_xml_bytes(self.path) > calamine_max_xml_bytes
        names = self.sheet_names = self._sheet_names()
        if sheet is None:
            if not names:
                raise SourceError(f"{self.path.name}: the workbook has no worksheet")
            sheet = names[0]
        elif sheet not in names:
            raise SourceError(f"{self.path.name}: no sheet named {sheet!r} (sheets: {', '.join(names)})")
        self.sheet = sheet
        self.name = name or f"{self.path.name} {sheet}"
        self.report = LayoutReport(source=self.name, details={"format": kind, "sheet": sheet,
                                                             "reader": "openpyxl" if self._streamed else "calamine"})

    def _sheet_names(self) -> list[str]:
        """The workbook's worksheets, in order (chart and macro sheets left out)."""
        if self._streamed:
            import openpyxl

            workbook = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
            try:
                return list(workbook.sheetnames)
            finally:
                workbook.close()
        from python_calamine import SheetTypeEnum

        with self._calamine() as workbook:
            return [meta.name for meta in workbook.sheets_metadata if meta.typ == SheetTypeEnum.WorkSheet]

    def _calamine(self):
        """The workbook opened by calamine; its errors become SourceErrors naming the file."""
        import python_calamine

        try:
            return python_calamine.CalamineWorkbook.from_path(str(self.path))
        except Exception as error:  # calamine raises its own classes, and ValueError, per format
            raise SourceError(f"{self.path.name}: cannot read the {self.format} workbook: {error}") from None

    def raw_rows(self) -> Iterator[tuple[int, list[Any]]]:
        """Every row of the sheet from row 1, cells from column A, values typed as described above."""
        if self._streamed:
            yield from self._openpyxl_rows()
            return
        with self._calamine() as workbook:
            try:
                sheet = workbook.get_sheet_by_name(self.sheet)
            except Exception as error:  # noqa: BLE001 - calamine's per-format errors
                raise SourceError(f"{self.name}: cannot read the sheet: {error}") from None
            # calamine yields rows from row 1 but columns from the first used one.
            pad = [None] * (sheet.start[1] if sheet.start else 0)
            for number, cells in enumerate(sheet.iter_rows(), start=1):
                typed = [None if value == "" else
                         int(value) if value.__class__ is float and value.is_integer()
                         and -_LARGEST_EXACT_FLOAT < value < _LARGEST_EXACT_FLOAT else value
                         for value in cells]
                yield number, pad + typed if pad else typed

    def _openpyxl_rows(self) -> Iterator[tuple[int, list[Any]]]:
        """The same rows through openpyxl's read-only (streaming) mode, typed as calamine types them."""
        import openpyxl

        workbook = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        try:
            worksheet = workbook[self.sheet]
            # Files written by streaming writers carry no (or a wrong) dimension: read what is there.
            worksheet.reset_dimensions()
            for number, cells in enumerate(worksheet.iter_rows(values_only=True), start=1):
                yield number, [_like_calamine(value) for value in cells]
        finally:
            workbook.close()


def _like_calamine(value: Any) -> Any:
    """openpyxl's value as calamine types it: a date at midnight is a date, an error or "" is None."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.startswith("#") and value in _ERROR_VALUES:
        return None
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()
    if isinstance(value, float) and value.is_integer() and -_LARGEST_EXACT_FLOAT < value < _LARGEST_EXACT_FLOAT:
        return int(value)
    return value


_ERROR_VALUES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA"})


def _sheet_xml_bytes(path: Path) -> int:
    """The uncompressed size of the largest worksheet plus the shared strings: what calamine would hold."""
    with zipfile.ZipFile(path) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    sheets = [size for name, size in sizes.items() if name.startswith("xl/worksheets/") and name.endswith(".xml")]
    return max(sheets, default=0) + sizes.get("xl/sharedStrings.xml", 0)
