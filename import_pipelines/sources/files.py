"""Open any supported file as a record source, by what it contains; sample it for mapping.

:func:`open_file` looks at the bytes, not the name: a zip holding a workbook is .xlsx or .ods,
an OLE2 file is .xls, text starting with a JSON array or object (or JSON Lines) is JSON, other
text is CSV. Exports named after the wrong format are common (a CRM's "contacts.xls" that is
tab-separated text), so text is read as what it is whatever its extension; but a file named as a
workbook whose bytes are neither a workbook nor text (a truncated download, an HTML page) is a
:class:`SourceError` saying so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from import_pipelines.sources.records import RecordSource, SourceError

FileKind = Literal["csv", "xlsx", "xls", "ods", "json"]
_WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0"
# JSON is recognised when its first tokens parse: a CSV whose first cell is "[Name]" fails at once.
_JSON_PROBE_BYTES = 64 * 1024
_JSON_PROBE_EVENTS = 3


def detect_kind(path: str | Path) -> FileKind:
    """What the file at ``path`` holds (see the module docstring); a SourceError when nothing readable."""
    from import_pipelines.sources.excel import spreadsheet_format
    from import_pipelines.sources.sniff import detect_encoding, read_sample

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    head, tail = read_sample(path)
    if not head.strip():
        raise SourceError(f"{path.name}: the file is empty")
    workbook = spreadsheet_format(path)
    if workbook is not None:
        return workbook
    if head.startswith((_ZIP_MAGIC, _OLE2_MAGIC)):
        raise SourceError(f"{path.name}: a zip or OLE2 file that holds no Excel or OpenDocument workbook "
                          f"(damaged, or another kind of document)")
    encoding = detect_encoding(head, tail)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")
    if text[:200].lower().startswith(("<!doctype html", "<html", "<table", "<?xml")):
        raise SourceError(f"{path.name}: an HTML or XML document, not a spreadsheet, CSV or JSON file "
                          f"(export the data as CSV or XLSX)")
    if _looks_binary(text[:4096]):
        named = " named as a workbook" if path.suffix.lower() in _WORKBOOK_SUFFIXES else ""
        raise SourceError(f"{path.name}: a binary file{named}, neither a workbook nor text (CSV, JSON)")
    if text[:1] in ("[", "{") and _parses_as_json(head, encoding):
        return "json"
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        return "json"  # named JSON, and not a CSV either: the JSON reader says what is wrong with it
    return "csv"


def open_file(path: str | Path, *, sheet: str | None = None, encoding: str | None = None,
              delimiter: str | None = None, records_path: str | None = None) -> RecordSource:
    """The file at ``path`` as a record source: CSV, Excel / OpenDocument sheet or JSON, by content.

    ``sheet`` chooses a workbook's sheet (default: the first); ``encoding`` and ``delimiter``
    override CSV detection; ``records_path`` names a JSON document's array of records
    (``"contacts"``, ``"data.items"``). An option that does not apply to the file's kind is an error,
    so a mistaken option is not silently ignored.
    """
    kind = detect_kind(path)
    path = Path(path)
    given = {"sheet": sheet, "encoding": encoding, "delimiter": delimiter, "records_path": records_path}
    allowed = {"csv": {"encoding", "delimiter"}, "json": {"records_path"}}.get(kind, {"sheet"})
    wrong = [name for name, value in given.items() if value is not None and name not in allowed]
    if wrong:
        raise SourceError(f"{path.name} is {kind_label(kind)}: {', '.join(wrong)} does not apply to it")
    if kind == "csv":
        from import_pipelines.sources.csv_file import CsvSource

        return CsvSource(path, encoding=encoding, delimiter=delimiter)
    if kind == "json":
        from import_pipelines.sources.json_file import JsonSource

        return JsonSource(path, records_path=records_path)
    from import_pipelines.sources.excel import ExcelSource

    return ExcelSource(path, sheet=sheet)


def kind_label(kind: FileKind) -> str:
    """How a person calls the kind: "a CSV file", "an Excel workbook (.xlsx)"."""
    return {"csv": "a CSV file", "json": "a JSON file", "xlsx": "an Excel workbook (.xlsx)",
            "xls": "an Excel 97-2003 workbook (.xls)", "ods": "an OpenDocument spreadsheet (.ods)"}[kind]


@dataclass
class SourceSample:
    """The start of a source, for mapping: its columns and first records' values (errors left out)."""

    source: str
    columns: list[str]
    rows: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)  # "contacts.csv line 7: 7 fields where the header has 5"


def sample_source(source: RecordSource, *, rows: int = 20) -> SourceSample:
    """The columns and the first ``rows`` good records of ``source``; reads no further than it needs."""
    records = source.records()
    good: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        for record in records:
            if record.error is None:
                good.append(dict(record.values))
                if len(good) >= rows:
                    break
            elif len(errors) < rows:
                errors.append(f"{record.location}: {record.error}")
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    return SourceSample(source=source.name, columns=source.columns(), rows=good, errors=errors)


def sample_file(path: str | Path, *, rows: int = 20, sheet: str | None = None, encoding: str | None = None,
                delimiter: str | None = None, records_path: str | None = None) -> SourceSample:
    """:func:`open_file` then :func:`sample_source`: headers and first records of any supported file."""
    source = open_file(path, sheet=sheet, encoding=encoding, delimiter=delimiter, records_path=records_path)
    return sample_source(source, rows=rows)


def _parses_as_json(head: bytes, encoding: str) -> bool:
    """Whether the first tokens of ``head`` are JSON (an error past them is the cut sample's end)."""
    import ijson

    data = head[:_JSON_PROBE_BYTES].decode(encoding, errors="replace").lstrip("\ufeff").encode("utf-8")
    events = 0
    try:
        for _ in ijson.parse(io.BytesIO(data)):
            events += 1
            if events >= _JSON_PROBE_EVENTS:
                return True
    except ijson.JSONError:
        # JSON Lines stop the parser after the first value ("trailing garbage"); so does a cut sample.
        return events >= 2 or _first_line_is_json(data)
    return events > 0


def _looks_binary(text: str) -> bool:
    """Whether decoded text is full of control characters (more than one in a hundred)."""
    controls = sum(1 for char in text if char < " " and char not in "\t\r\n\f" or char == "\ufffd")
    return controls * 100 > len(text)


def _first_line_is_json(data: bytes) -> bool:
    import json

    try:
        json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return False
    return True
