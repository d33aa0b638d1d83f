"""What a CSV file is written in: its encoding, delimiter, quote character and header line.

Detection reads a bounded sample, never the whole file: the first :data:`HEAD_BYTES` (cut at a
line end) and, for the encoding, the last :data:`TAIL_BYTES` as well, because exports that are
plain ASCII for thousands of rows and meet their first accented name near the end are common.

- **Encoding**: a byte-order mark decides (UTF-8, UTF-16 LE/BE); otherwise a sample that is
  valid UTF-8 is UTF-8 (8-bit text almost never is), also with a few corrupt bytes among many
  good multi-byte characters (they become error rows); otherwise charset-normalizer chooses
  (cp1252, latin-1, UTF-16 without a mark, ...). Chosen over charset-normalizer or chardet alone
  on the corpus of ``import_pipelines_tests/sources/csv_corpus.py`` (figures in the README).
- **Delimiter and quote character**: DuckDB's CSV sniffer, given the sample transcoded to UTF-8
  (as right as clevercsv on the corpus, and faster; Python's ``csv.Sniffer`` missed a delimiter).
  Both libraries answer "no quote character" when the sample holds one unterminated quote;
  that answer is taken as the standard double quote, which reads a file without quotes the same.
- **Header line**: the rule of :mod:`import_pipelines.sources.header` (the first row among the
  first 20 that looks like a header), over the sample's first rows parsed with that dialect.
  DuckDB's own preamble detection (with its defaults) missed 2 of the corpus's 7 preambles and
  then took "|" for the delimiter of 2 files; in the tolerant mode the dialect needs it looks for
  no preamble at all. The rule found all of them.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from import_pipelines.sources.header import HEADER_SEARCH_ROWS, find_header
from import_pipelines.sources.records import SourceError

HEAD_BYTES = 256 * 1024
TAIL_BYTES = 16 * 1024
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_PREFERRED_8BIT = ("cp1252", "latin_1")
_CHAOS_TIE = 0.01
_COHERENCE_TIE = 0.05
_GOOD_PER_BAD_UTF8 = 10
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_CODEC_NAMES = {"ascii": "utf-8", "utf_8": "utf-8", "latin_1": "latin-1"}
# Rows parsed from the sample for the header rule: the search window plus enough data below it.
_HEADER_SAMPLE_ROWS = HEADER_SEARCH_ROWS * 3


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """How to read one CSV file."""

    encoding: str  # a Python codec name; "utf-8-sig" / "utf-16" consume the byte-order mark
    delimiter: str
    quotechar: str  # "" when the file quotes nothing
    header_line: int  # the header's physical line, 1-based
    header_found: bool  # False when no row looked like a header and the first non-empty row was taken


def read_sample(path: Path) -> tuple[bytes, bytes]:
    """The head sample and, when the file is longer, a tail sample (both bounded)."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        size = os.fstat(handle.fileno()).st_size
        tail = b""
        if size > len(head):
            handle.seek(max(len(head), size - TAIL_BYTES))
            tail = handle.read(TAIL_BYTES)
    return head, tail


def detect_encoding(head: bytes, tail: bytes = b"") -> str:
    """A Python codec for a file whose first and last bytes are ``head`` and ``tail``."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    # NUL bytes are valid UTF-8 but never appear in text: they mean UTF-16 or UTF-32 without a mark.
    if b"\x00" not in head and _mostly_utf8(head, tail):
        return "utf-8"
    if _plausibly_western(head + b"\n" + tail if tail else head):
        return "cp1252"
    from charset_normalizer import from_bytes

    matches = list(from_bytes(head + b"\n" + tail if tail else head))
    if not matches:
        # Every byte sequence decodes in latin-1; undecodable text then shows as odd characters
        # rather than failing, and the caller can name the real encoding.
        return "latin-1"
    best = matches[0]
    # German or French text decodes without a single odd character in cp1250, cp1252 and cp1257
    # alike, and charset-normalizer's order among such ties is arbitrary (it chose cp1250 for
    # every Western file of the corpus). A tie goes to the encoding Western Windows and web
    # exports use; a cp1250 file of Polish names is no tie (cp1252 turns "ł" into "³").
    tied = [match for match in matches if match.chaos <= best.chaos + _CHAOS_TIE
            and match.coherence >= best.coherence - _COHERENCE_TIE]
    for preferred in _PREFERRED_8BIT:
        if any(preferred in match.could_be_from_charset for match in tied):
            return _CODEC_NAMES.get(preferred, preferred)
    return _CODEC_NAMES.get(best.encoding, best.encoding)


def sniff_dialect(text: str) -> tuple[str, str]:
    """DuckDB's answer for the delimiter and quote character ("" for none) of a sample of text.

    ``text`` is already decoded and cut at a line end. The sniffer runs tolerant of bad rows
    (``ignore_errors``, ``null_padding``): a ragged row or a stray quote in the sample must not
    decide the dialect. In that mode DuckDB no longer looks for a preamble, which the header rule
    does. Raises :class:`SourceError` when DuckDB finds no dialect at all.
    """
    import duckdb

    handle, name = tempfile.mkstemp(suffix=".csv", prefix="import_pipelines_sniff_")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        with duckdb.connect() as con:
            # A sample is small: one thread avoids starting a pool for it.
            con.execute("SET threads = 1")
            delimiter, quote = con.execute(
                "SELECT Delimiter, Quote FROM sniff_csv(?, sample_size = -1, all_varchar = true, "
                "ignore_errors = true, null_padding = true)", [name]).fetchone()
    except duckdb.Error as error:
        raise SourceError(f"the CSV sniffer could not read the sample: {error}") from None
    finally:
        os.unlink(name)
    return ("\t" if delimiter == "\\t" else delimiter), ("" if quote in ("(empty)", "") else quote)


def sniff_layout(path: Path, *, encoding: str | None = None, delimiter: str | None = None) -> CsvLayout:
    """Detect how to read the CSV file at ``path`` from a bounded sample; explicit settings win."""
    head, tail = read_sample(path)
    if not head.strip():
        raise SourceError(f"{path.name}: the file is empty")
    encoding = encoding or detect_encoding(head, tail)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SourceError(f"{path.name}: unknown encoding {encoding!r}") from None
    text = _whole_lines(codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=not tail))
    text = text.removeprefix("\ufeff")
    try:
        sniffed_delimiter, quotechar = sniff_dialect(text)
    except SourceError:
        # One line, or no delimiter anywhere: a one-column file.
        sniffed_delimiter, quotechar = ",", '"'
    if delimiter is not None and delimiter != sniffed_delimiter or not quotechar:
        # DuckDB (and clevercsv) answer "no quote" for a sample that holds one unterminated quote;
        # the standard double quote parses a file without quotes the same way.
        quotechar = '"'
    delimiter = delimiter or sniffed_delimiter
    rows, starts = first_rows(text, delimiter=delimiter, quotechar=quotechar)
    if not rows:
        raise SourceError(f"{path.name}: no rows in the first {HEAD_BYTES // 1024} KiB")
    try:
        index, found = find_header(rows)
    except ValueError:
        raise SourceError(f"{path.name}: no row has a value in the first {HEAD_BYTES // 1024} KiB") from None
    return CsvLayout(encoding=encoding, delimiter=delimiter, quotechar=quotechar, header_line=starts[index],
                     header_found=found)


def first_rows(text: str, *, delimiter: str, quotechar: str) -> tuple[list[list[str]], list[int]]:
    """The first rows of the sample and the physical line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quotechar or '"',
                        quoting=csv.QUOTE_MINIMAL if quotechar else csv.QUOTE_NONE)
    rows: list[list[str]] = []
    starts: list[int] = []
    previous = 0
    try:
        for row in reader:
            starts.append(previous + 1)
            rows.append(row)
            previous = reader.line_num
            if len(rows) >= _HEADER_SAMPLE_ROWS:
                break
    except csv.Error:
        pass  # a broken row in the sample: the rows before it are enough to place the header
    return rows, starts


def _whole_lines(text: str) -> str:
    """``text`` without its last, possibly cut, line (unless it is the only one)."""
    cut = max(text.rfind("\n"), text.rfind("\r"))
    return text[:cut + 1] if cut > 0 else text


# What Western European text holds beyond ASCII in cp1252: accented Latin letters, the euro sign,
# typographic quotes and dashes, a few symbols. cp1252 text of any Western language reads as these
# and nothing else; a Polish cp1250 file does not (its "ł" reads as "³"), nor a Greek or Cyrillic
# one (whose letters would be most of the text, where Western text is mostly ASCII).
_WESTERN = frozenset("ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿŒœŠšŽžŸƒ"
                     "€‚„…†‡‰‹›‘’“”•–—™«»°¿¡£¥§©®ªº½¼¾µ·¢±´¨\xa0")
_WESTERN_SHARE = 0.3
_UTF8_PAIR = re.compile(rb"[\xc2-\xdf][\x80-\xbf]")


def _plausibly_western(data: bytes) -> bool:
    """Whether ``data`` is cp1252 text: it decodes strictly, and what is not ASCII is Western.

    charset-normalizer alone picked a Baltic DOS code page (cp775) for a short German and Spanish
    file with euro signs: a tie it broke the wrong way, which this decides first.
    """
    if b"\x00" in data or _UTF8_PAIR.search(data):
        return False  # UTF-16 without a mark; UTF-8 characters (read as cp1252 they are mojibake: "Ã©")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ch >= "\x80"]
    letters = sum(1 for ch in text if ch.isalpha())
    return bool(wide) and all(ch in _WESTERN for ch in wide) and len(wide) <= _WESTERN_SHARE * max(1, letters)


def _mostly_utf8(head: bytes, tail: bytes) -> bool:
    """Whether the sample is UTF-8, allowing a few bad bytes among many good multi-byte characters.

    A UTF-8 export with one corrupt byte must stay UTF-8 (that line becomes an error row) rather
    than be read whole as cp1252 mojibake; 8-bit text is almost never valid multi-byte UTF-8 by
    chance, so one bad byte per ten good characters still says UTF-8.
    """
    # Skip the continuation bytes of a character cut at the start of the tail; the head's end
    # may cut a character too, which the incremental decoder leaves pending.
    skip = 0
    while skip < min(3, len(tail)) and 0x80 <= tail[skip] <= 0xBF:
        skip += 1

    def decoded(data: bytes, errors: str) -> str:
        return codecs.getincrementaldecoder("utf-8")(errors=errors).decode(data, final=False)

    try:
        decoded(head, "strict"), decoded(tail[skip:], "strict")
        return True
    except UnicodeDecodeError:
        pass
    text = decoded(head, "surrogateescape") + decoded(tail[skip:], "surrogateescape")
    bad = len(_ESCAPED_BYTES.findall(text))
    good = len(_NON_ASCII.findall(text)) - bad
    return good >= bad * _GOOD_PER_BAD_UTF8
