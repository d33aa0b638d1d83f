"""The contract between a non-database source and the staging writer.

A source yields :class:`SourceRecord` objects one at a time (never a whole file in memory). Each
carries the record's values by column name (a header, an Airtable field name, a top-level JSON
key; nested JSON stays a dict or list and is reached by a path later), typed as the source
types them (str, int, float, Decimal, bool, date, datetime, None, list, dict), and where it came
from, so every audit row and error can name the file and line, the sheet cell, the API record.

A record the source could not read properly (a ragged CSV row, an undecodable byte, a JSON
value of the wrong shape) is still yielded, with ``error`` set and whatever values could be
read: the staging writer records it as a failed row, and the rest of the source loads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


class SourceError(ValueError):
    """A source that cannot be read at all (missing file, not a spreadsheet, wrong JSON shape).

    The message names the source (file, sheet, URL without credentials) and what is wrong.
    """


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of a source, with its provenance."""

    values: Mapping[str, Any]
    location: str  # for people: "contacts.csv line 17", "Leads!A12", "airtable tblX recABC", "push item 3"
    line: int | None = None  # the physical line (files) or row number (sheets) the record starts on
    record_id: str | None = None  # the source's own id when it has one (Airtable record id, API id)
    error: str | None = None  # why the record could not be read as it should; None for a good record
    modified: datetime | None = None  # when the source last changed it (API sources with a modified field)


@runtime_checkable
class RecordSource(Protocol):
    """What every non-database source adapter provides."""

    @property
    def name(self) -> str:
        """The source as shown in messages and audit rows (file name, sheet, endpoint): no secrets."""

    def columns(self) -> list[str]:
        """The column names known before reading (a file's header); may grow while reading JSON."""

    def records(self) -> Iterator[SourceRecord]:
        """Stream the records, in source order."""


@dataclass
class ListSource:
    """A source over records already in memory (a push's run config, a test)."""

    name: str
    items: list[Mapping[str, Any]]
    label: str = "item"
    _columns: list[str] = field(default_factory=list)

    def columns(self) -> list[str]:
        """Every key of every item, in first-seen order."""
        if not self._columns:
            self._columns = list(dict.fromkeys(key for item in self.items if isinstance(item, Mapping) for key in item))
        return self._columns

    def records(self) -> Iterator[SourceRecord]:
        """One record per item, numbered from 1."""
        for number, item in enumerate(self.items, start=1):
            if not isinstance(item, Mapping):
                yield SourceRecord(values={}, location=f"{self.name} {self.label} {number}", line=number,
                                   error=f"{self.label} {number} is a {type(item).__name__}, not an object")
                continue
            yield SourceRecord(values=item, location=f"{self.name} {self.label} {number}", line=number)
