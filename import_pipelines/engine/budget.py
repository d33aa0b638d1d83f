"""The error budget: a load stops when too large a share of its records failed.

A source that went wrong (a changed export format, a column shifted by one) fails most of its
records; loading on only fills the audit with failures. The load judges the budget after every
committed batch: once ``failed / processed`` is above ``max_rate`` (and at least ``floor``
records were processed, so one bad record among the first three does not stop a run), it runs
no further batch and raises :class:`ErrorBudgetExceeded`. Batches already committed stay, with
their audit rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import psycopg
from psycopg import sql

from import_pipelines.engine.audit import RunRef
from import_pipelines.engine.merge import CONTROL, EngineError

TOP_ERRORS = 3
# a value quoted in a message: 'abc' (SQL style, doubled quotes inside) or "abc" (detail lines)
QUOTED_SINGLE = r"'(?:[^']|'')*'…?"  # a value cut short ends in …
QUOTED_DOUBLE = r'"(?:[^"\\]|\\.)*"'
BARE_NUMBER = r"\m[0-9]+(?:\.[0-9]+)?\M"  # an id named without quotes: "no tickets with external_id 144"


class ErrorBudgetExceeded(EngineError):
    """More records of an entity failed than its error budget allows; the load stopped."""

    def __init__(self, message: str, *, rate: float, budget: float, processed: int, failed: int,
                 top_errors: list[tuple[str, int]]):
        super().__init__(message)
        self.rate = rate
        self.budget = budget
        self.processed = processed
        self.failed = failed
        self.top_errors = top_errors


@dataclass(frozen=True)
class ErrorBudget:
    """``max_rate`` of failed records, judged once ``floor`` records were processed.

    The counts judged include the records settled before the merge, by action: those a sync's key
    pass found unchanged without reading them, those an earlier attempt of the run committed. They
    are processed records too: a sync that reads only its 115 new or changed records out of 2,400
    judges 115 failures against 2,400, as the first import did.
    """

    max_rate: float
    floor: int = 100

    def exceeded(self, counts: Counter[str]) -> bool:
        """Whether the counts so far break the budget."""
        processed = sum(counts.values())
        return processed >= max(1, self.floor) and counts["failed"] > self.max_rate * processed

    def error(self, conn: psycopg.Connection, *, entity: str, table: str, run: RunRef, stream_id: int,
              counts: Counter[str]) -> ErrorBudgetExceeded:
        """The stop, with the rate, the budget and the most common errors of the run's failed records."""
        processed, failed = sum(counts.values()), counts["failed"]
        top = common_errors(conn, run=run, stream_id=stream_id)
        listed = "; ".join(f"{count:,} x {message}" for message, count in top) or "none recorded"
        return ErrorBudgetExceeded(
            f"{entity} load stopped: {failed:,} of {processed:,} records failed ({failed / processed:.1%}), above"
            f" the error budget of {self.max_rate:.1%} (max_error_rate); the batches already committed to {table}"
            f" stay. Most common errors: {listed}",
            rate=failed / processed, budget=self.max_rate, processed=processed, failed=failed, top_errors=top)


def common_errors(conn: psycopg.Connection, *, run: RunRef, stream_id: int) -> list[tuple[str, int]]:
    """The run's most frequent failure messages for one stream, values replaced by ``…``.

    Messages name the offending value (``minutes: 'abc' is not a valid integer``, ``no tickets
    with external_id 144``); one kind of error is one line whatever the value.
    """
    conn.rollback()  # a session left in a failed transaction could not read
    return conn.execute(sql.SQL(
        "SELECT kind, count(*) FROM (SELECT regexp_replace(regexp_replace(regexp_replace(coalesce(error,"
        " '(no message)'), %(single)s, %(single_mark)s, 'g'), %(double)s, %(double_mark)s, 'g'),"
        " %(number)s, '…', 'g') AS kind FROM {}.audit_records"
        " WHERE run_day = %(day)s AND run_seq = %(seq)s AND stream_id = %(stream)s AND action = 'failed') AS f"
        " GROUP BY kind ORDER BY count(*) DESC, kind LIMIT %(limit)s").format(CONTROL),
        {"single": QUOTED_SINGLE, "single_mark": "'…'", "double": QUOTED_DOUBLE, "double_mark": '"…"',
         "number": BARE_NUMBER, "day": run.run_day, "seq": run.run_seq, "stream": stream_id,
         "limit": TOP_ERRORS}).fetchall()
