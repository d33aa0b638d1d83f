"""What the API sources share: the report of one read, incremental windows, JSON paths, timestamps.

An API read is incremental when it is given ``since`` (the high-water mark of the last committed
run, see :mod:`import_pipelines.control.cursors`): the source is asked only for records modified
after ``since - lookback``. The look-back re-reads a short overlap on purpose, for records whose
modification became visible at the source after a later one was already read; re-reading them
is harmless because a record whose source hash did not change writes nothing.

After a read, :class:`ReadReport` says what the caller needs next: the greatest modification
time seen (the next high-water mark, to be stored only once the run commits), whether the read
was *complete* (a full read of the whole source that reached its last page, the only kind of
read from which missing records may be taken as deleted), and what the requests cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from import_pipelines.sources.http_session import RequestStats

TimeFormat = Literal["iso8601", "epoch_seconds", "epoch_millis"]

MISSING: Any = object()  # what lookup() returns for a path that is not there (a value may be None)


@dataclass
class ReadReport:
    """The outcome of one read of an API source; filled in while the records stream."""

    source: str
    since: datetime | None = None  # the lower bound asked of the source (since - lookback); None for a full read
    records: int = 0
    failed: int = 0  # records yielded with an error
    pages: int = 0
    max_modified: datetime | None = None  # the next high-water mark; None when nothing carried a modified time
    complete: bool = False  # a full read of the whole source that reached the last page
    mapping_s: float = 0.0  # seconds spent turning answers into records (ours, as opposed to the requests')
    stats: RequestStats = field(default_factory=RequestStats)

    def saw_modified(self, moment: datetime | None) -> None:
        """Keep the greatest modification time seen."""
        if moment is not None and (self.max_modified is None or moment > self.max_modified):
            self.max_modified = moment

    def summary(self) -> str:
        """One line for the run's log: records, requests and every wait."""
        stats = self.stats
        kind = f"modified since {self.since.isoformat()}" if self.since else "full read"
        return (f"{self.source}: {self.records:,} records ({self.failed:,} failed) from {self.pages:,} pages, {kind},"
                f" {'complete' if self.complete else 'not complete'}; {stats.requests:,} requests,"
                f" waited {stats.rate_limited:,} times after HTTP 429 and retried {stats.retried_errors:,} failures"
                f" ({stats.waited_s:.1f} s waiting, {stats.throttled_s:.1f} s paced by the rate limit,"
                f" {stats.request_s:.1f} s in requests, {self.mapping_s:.1f} s mapping); high-water mark "
                f"{self.max_modified.isoformat() if self.max_modified else 'none'}")

    def as_metadata(self) -> dict[str, Any]:
        """The report as plain values (materialisation metadata, benchmark output)."""
        return {"source": self.source, "since": self.since.isoformat() if self.since else None,
                "records": self.records, "failed": self.failed, "pages": self.pages,
                "max_modified": self.max_modified.isoformat() if self.max_modified else None,
                "complete": self.complete, "mapping_s": round(self.mapping_s, 3), **self.stats.as_dict()}


def read_window(since: datetime | None, lookback_s: float) -> datetime | None:
    """The lower bound to ask a source for: ``since - lookback``, in UTC; None for a full read."""
    if since is None:
        return None
    if since.tzinfo is None:
        raise ValueError(f"since {since.isoformat()} has no time zone; a high-water mark must be an instant")
    return (since - timedelta(seconds=lookback_s)).astimezone(UTC)


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` (``data.items``, ``meta.next``, ``items.0.id``), or :data:`MISSING`.

    The empty path is the document itself. A segment of digits indexes a list.
    """
    value = document
    if not path:
        return value
    for key in path.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return MISSING
    return value


def parse_timestamp(value: Any, fmt: TimeFormat = "iso8601") -> datetime:
    """An instant from an API value: ISO 8601 text (``Z`` or an offset; no offset means UTC) or epoch numbers.

    Raises ValueError naming the value and the expected format.
    """
    if fmt == "iso8601":
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ValueError(f"{value!r} is not a number of {'seconds' if fmt == 'epoch_seconds' else 'milliseconds'}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of {fmt.split('_')[1]}") from None
    return datetime.fromtimestamp(number / 1000 if fmt == "epoch_millis" else number, tz=UTC)


def format_timestamp(moment: datetime, fmt: TimeFormat = "iso8601") -> str:
    """An instant as an API parameter: ISO 8601 in UTC with milliseconds and ``Z``, or epoch numbers."""
    moment = moment.astimezone(UTC)
    if fmt == "epoch_seconds":
        return str(int(moment.timestamp()))
    if fmt == "epoch_millis":
        return str(int(moment.timestamp() * 1000))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
