"""Lines of PostgreSQL's text COPY format that are not valid UTF-8.

A source whose server encoding is ``SQL_ASCII`` stores bytes, not characters: with
``client_encoding = UTF8`` it sends them unconverted, and the first byte that is not UTF-8 makes
the target's ``COPY ... FROM STDIN`` fail for the whole table, naming no row and no field. The
extract therefore checks its buffer before each write (one ``bytes.decode`` in C over about 1 MB)
and only when that fails looks at the lines one by one with :func:`clean_line`, which says which
fields are invalid and returns a line the target accepts.

The check is on the raw bytes a server's ``COPY TO`` writes: it never escapes bytes of 0x80 and
above (only ``\\``, tab, newline, carriage return and other control characters), so invalid text
appears as raw bytes and a line can be checked without de-escaping it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

REPLACEMENT = "\ufffd".encode()


@dataclass(frozen=True)
class CleanLine:
    """A text COPY line made valid UTF-8, and what was wrong with it (``None`` when nothing)."""

    line: bytes
    error: str | None
    fields: tuple[str, ...] = ()


def clean_line(line: bytes, columns: Sequence[str]) -> CleanLine:
    """Check one text COPY line (without its newline); replace each invalid byte with U+FFFD.

    ``columns`` names the line's fields in order; the error names every field that held invalid
    bytes, with the first bad byte's value and offset inside the field, e.g. ``body: not valid
    UTF-8 (byte 0xff at position 12)``. Lines with more fields than ``columns`` name the extra
    ones by position.
    """
    try:
        line.decode("utf-8")
        return CleanLine(line=line, error=None)
    except UnicodeDecodeError:
        pass
    parts = line.split(b"\t")
    problems: list[str] = []
    names: list[str] = []
    for index, value in enumerate(parts):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as error:
            name = columns[index] if index < len(columns) else f"field {index + 1}"
            names.append(name)
            problems.append(f"{name}: not valid UTF-8 (byte 0x{value[error.start]:02x} at position {error.start})")
            parts[index] = value.decode("utf-8", errors="replace").encode("utf-8")
    return CleanLine(line=b"\t".join(parts), error="; ".join(problems), fields=tuple(names))


def copy_text(value: str | None) -> bytes:
    """``value`` as one field of a text COPY line: ``\\N`` for NULL, separators escaped."""
    if value is None:
        return b"\\N"
    escaped = (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))
    return escaped.encode("utf-8")


def invalid_lines(buffer: bytes | bytearray) -> bool:
    """Whether ``buffer`` (whole lines) holds any byte sequence that is not UTF-8: one C-speed pass."""
    try:
        buffer.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
