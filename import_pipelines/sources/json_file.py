"""Read JSON documents and JSON Lines files as records, streaming.

Three shapes are records:

- an array of objects: ``[{"email": ...}, ...]``;
- an object holding one: ``{"contacts": [...], "total": 200}``, or deeper
  (``{"data": {"contacts": [...]}}``). The array is found automatically when exactly one array of
  objects sits outside any array in the first :data:`DETECT_BYTES` of the document; otherwise
  ``records_path`` names it (``"contacts"``, ``"data.contacts"``);
- JSON Lines: one object per line (``.jsonl`` / ``.ndjson``, or content whose first line is a
  whole JSON value with more after it).

Documents are streamed by ijson (its C backend): a 1 GB array never becomes one Python list.
Values stay as JSON types them (str, int, Decimal for fractions, bool, None) and nested objects
and arrays stay dicts and lists, reached by a path later. A record that is not an object is an
error row naming its number (or line); a document whose first record already is not an object
(an array of arrays, of numbers) or that is a lone scalar is a :class:`SourceError`.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

from import_pipelines.sources.records import SourceError, SourceRecord

JsonShape = Literal["array", "object", "lines"]
DETECT_BYTES = 1 << 20
_JSON_LINES_SUFFIXES = {".jsonl", ".ndjson", ".jsonlines"}
# Keys gathered for columns() before reading: from the first records only.
_COLUMN_SAMPLE = 1000


class JsonSource:
    """A JSON document or JSON Lines file as a :class:`~import_pipelines.sources.records.RecordSource`."""

    def __init__(self, path: str | Path, *, records_path: str | None = None, name: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        self.name = name or self.path.name
        self.encoding = _encoding(self.path)
        self.shape, self.records_path = self._detect(records_path)
        self._columns: dict[str, None] = {}
        self._sampled = False

    @property
    def label(self) -> str:
        """What a record is called in locations: "line" in JSON Lines, "record" in a document."""
        return "line" if self.shape == "lines" else "record"

    def columns(self) -> list[str]:
        """Top-level keys of the first records, and of every record read so far, in first-seen order."""
        if not self._sampled:
            self._sampled = True
            for count, record in enumerate(self.records(), start=1):
                if count >= _COLUMN_SAMPLE:
                    break
        return list(self._columns)

    def records(self) -> Iterator[SourceRecord]:
        """One record per object, numbered from 1 (JSON Lines: by physical line)."""
        if self.shape == "lines":
            yield from self._lines()
            return
        prefix = "item" if self.shape == "array" else f"{self.records_path}.item"
        import ijson

        seen = self._columns
        with self._open() as handle:
            number = 0
            try:
                for number, item in enumerate(ijson.items(handle, prefix), start=1):
                    where = f"{self.name} {self.label} {number}"
                    if isinstance(item, Mapping):
                        for key in item:
                            if key not in seen:
                                seen[key] = None
                        yield SourceRecord(item, where, number)
                    elif number == 1:
                        raise SourceError(f"{self.name}: record 1 of {self._where()} is {_kind(item)}, not an object "
                                          f"(records must be JSON objects)")
                    else:
                        yield SourceRecord({}, where, number, None,
                                           f"record {number} is {_kind(item)}, not an object")
            except ijson.JSONError as error:
                raise SourceError(f"{self.name}: invalid JSON after record {number}: {_first_line(error)}") from None

    def _lines(self) -> Iterator[SourceRecord]:
        seen = self._columns
        with self._open() as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                where = f"{self.name} line {number}"
                try:
                    item = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as error:
                    text = raw.decode("utf-8", errors="replace").strip()
                    yield SourceRecord({"_raw": text[:1000]}, where, number, None, f"invalid JSON: {error}")
                    continue
                if not isinstance(item, dict):
                    yield SourceRecord({}, where, number, None, f"line {number} is {_kind(item)}, not an object")
                    continue
                for key in item:
                    if key not in seen:
                        seen[key] = None
                yield SourceRecord(item, where, number)

    def _open(self) -> IO[bytes] | _Utf8Reader:
        """The file as UTF-8 bytes (a UTF-16 file is transcoded as it streams; a UTF-8 mark is skipped)."""
        raw = open(self.path, "rb")
        if self.encoding == "utf-8-sig":
            raw.read(len(codecs.BOM_UTF8))
            return raw
        if self.encoding != "utf-8":
            return _Utf8Reader(raw, self.encoding)
        return raw

    def _detect(self, records_path: str | None) -> tuple[JsonShape, str | None]:
        """The document's shape and, for an object, the dotted path of its records array."""
        with self._open() as handle:
            head = handle.read(DETECT_BYTES)
        text = head.lstrip()
        if not text:
            raise SourceError(f"{self.name}: the file is empty")
        if self.path.suffix.lower() in _JSON_LINES_SUFFIXES or _looks_like_json_lines(text):
            return "lines", None
        if text[:1] == b"[":
            if records_path:
                raise SourceError(f"{self.name}: records_path {records_path!r} given, but the document is an array")
            return "array", None
        if text[:1] != b"{":
            raise SourceError(f"{self.name}: a JSON document of records must be an array or an object, "
                              f"not {_scalar_kind(text)}")
        if records_path:
            return "object", records_path
        candidates = _record_arrays(head)
        if len(candidates) == 1:
            return "object", candidates[0]
        if not candidates:
            raise SourceError(f"{self.name}: the object holds no array of objects in its first "
                              f"{DETECT_BYTES // 1024} KiB; give records_path (e.g. \"contacts\" or \"data.items\")")
        raise SourceError(f"{self.name}: several arrays of objects ({', '.join(candidates)}); "
                          f"give records_path to choose one")

    def _where(self) -> str:
        return "the array" if self.shape == "array" else repr(self.records_path)


class _Utf8Reader:
    """A binary file in another Unicode encoding, read as UTF-8 bytes.

    Only ``read`` is offered: ijson's C backend prefers ``readinto`` when a file has one, which
    would hand it the undecoded bytes (``codecs.EncodedFile`` forwards it to the raw file).
    """

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)()

    def read(self, size: int = -1) -> bytes:
        while True:
            chunk = self._raw.read(size)
            text = self._decoder.decode(chunk, final=not chunk)
            if text or not chunk:
                return text.encode("utf-8")

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _Utf8Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _encoding(path: Path) -> str:
    """UTF-8 (with or without its mark) or UTF-16/32 by mark: the encodings JSON allows."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _looks_like_json_lines(text: bytes) -> bool:
    """Whether the first line is a whole JSON value and another value follows on the next lines."""
    first, newline, rest = text.partition(b"\n")
    if not newline or not rest.strip():
        return False
    try:
        json.loads(first)
    except ValueError:
        return False
    return rest.lstrip()[:1] in (b"{", b"[")


def _record_arrays(head: bytes) -> list[str]:
    """Dotted paths of arrays whose first item is an object, outside any array, in the document's head."""
    import io

    import ijson

    found: list[str] = []
    opened: str | None = None  # an array just started: its first item tells whether it holds objects
    try:
        for prefix, event, _ in ijson.parse(io.BytesIO(head)):
            if opened is not None:
                if event == "start_map" and prefix == f"{opened}.item" and opened not in found:
                    found.append(opened)
                opened = None
            if event == "start_array" and prefix and "item" not in prefix.split("."):
                opened = prefix
    except ijson.JSONError:
        pass  # the head ends inside the document: what it showed is what there is to go on
    return found


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) or type(value).__name__ == "Decimal" else "a value")


def _scalar_kind(text: bytes) -> str:
    first = text[:1]
    if first == b'"':
        return "a string"
    if first in b"tf":
        return "a boolean"
    if first == b"n":
        return "null"
    return "a number" if first in b"-0123456789" else f"text starting {text[:20]!r}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
