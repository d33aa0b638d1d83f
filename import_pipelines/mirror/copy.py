"""Whole-database copy ("mirror"): every table of a source database into a live target.

The source is read in one READ ONLY, REPEATABLE READ transaction (a consistent snapshot across
all tables) and each table streams out with ``COPY (SELECT ...) TO STDOUT`` already in the
staging layout: references arrive as the natural keys of the referenced rows, because ids
differ between the two databases. The target side is :class:`~import_pipelines.mirror.merge.Loader`.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import psycopg

from import_pipelines.db.connect import connect, connection
from import_pipelines.db.introspect import describe_schema
from import_pipelines.db.sql import render
from import_pipelines.engine.graph import Reference
from import_pipelines.mirror.merge import Loader, ProgressCallback, batched_rows
from import_pipelines.mirror.overrides import load_overrides
from import_pipelines.mirror.plan import LoadPlan, build_plan, check_override_keys
from import_pipelines.mirror.report import MirrorError, MirrorReport, Mode

DEFAULT_BATCH_ROWS = 50_000
# two tables at a time: enough to keep a second core busy without starving the source
DEFAULT_WORKERS = 2


def mirror(source_url: str, target_url: str, *, mode: Mode = "upsert", tables: Iterable[str] | None = None,
           overrides: str | Path | Mapping[str, list[str]] | None = None, references: Iterable[Reference] = (),
           schema: str = "public", run_id: str | None = None, batch_rows: int = DEFAULT_BATCH_ROWS,
           workers: int = DEFAULT_WORKERS, on_progress: ProgressCallback | None = None) -> MirrorReport:
    """Copy ``tables`` (default: all) of ``schema`` from the source into the target database.

    Rows are matched by natural key: ``create_only`` skips rows the target already has,
    ``upsert`` updates the ones that differ. References are translated through natural keys,
    cycles and self references are late-seeded. Every row gets an ``import_control.import_records``
    audit row (profile ``mirror``). Up to ``workers`` tables whose referenced tables are done load
    at the same time, each on its own source and target session; all source sessions share one
    snapshot. Raises :class:`MirrorError` before touching the target when the plan is impossible
    (e.g. a table without natural key: name one in ``overrides``).
    """
    run_id = run_id or uuid.uuid4().hex
    started = time.perf_counter()
    natural_keys = load_overrides(overrides)
    with connection(source_url, read_only=True, pinned_text=True) as source, connection(target_url) as target:
        target_schema = describe_schema(target, schema)
        source_schema = describe_schema(source, schema)
        source.commit()
        target.commit()
        wanted = list(tables) if tables is not None else sorted(target_schema.tables)
        absent = [name for name in wanted if name not in source_schema.tables]
        if absent:
            raise MirrorError(f"the source schema {schema!r} has no table {', '.join(map(repr, absent))}")
        plan = build_plan(target_schema, tables=wanted, overrides=natural_keys, references=references,
                          available_columns={name: source_schema.tables[name].column_names for name in wanted})
        check_override_keys(source, plan, side="source")
        check_override_keys(target, plan, side="target")
        loader = Loader(target, plan, mode=mode, run_id=run_id, profile="mirror", batch_rows=batch_rows,
                        on_progress=on_progress, connect=lambda: connect(target_url))
        # one snapshot for every table and every source session, so references between
        # tables agree with each other (what pg_dump --jobs does)
        source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snapshot = source.execute("SELECT pg_export_snapshot()").fetchone()[0] if workers > 1 else None
        sessions = _SourceSessions(source_url, snapshot, main=source)
        try:
            loader.prepare()

            def load(table: str, conn: psycopg.Connection) -> None:
                reader = _TableReader(sessions.get(), plan=plan, table=table, batch_rows=batch_rows)
                reader.start()
                try:
                    loader.load_batches(table, reader.batches(), conn=conn)
                finally:
                    reader.close()

            loader.load_all(load, workers=workers)
            sessions.close()
            report = loader.finish()
        finally:
            sessions.close()
            loader.cleanup()
    report.seconds = time.perf_counter() - started
    return report


class _SourceSessions:
    """Read-only source sessions, one per loading thread, all on the snapshot of ``main``."""

    def __init__(self, url: str, snapshot: str | None, *, main: psycopg.Connection) -> None:
        self.url = url
        self.snapshot = snapshot
        self.main = main
        self.local = threading.local()
        self.opened: list[psycopg.Connection] = []
        self.lock = threading.Lock()
        self.main_taken = False

    def get(self) -> psycopg.Connection:
        """This thread's source session (the main one for the first thread)."""
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            return conn
        with self.lock:
            if not self.main_taken:
                self.main_taken = True
                self.local.conn = self.main
                return self.main
        conn = connect(self.url, read_only=True, pinned_text=True)
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("SET TRANSACTION SNAPSHOT {}".format(_quote_literal(self.snapshot)) if self.snapshot
                     else "SELECT 1")
        with self.lock:
            self.opened.append(conn)
        self.local.conn = conn
        return conn

    def close(self) -> None:
        """End the snapshot transactions and close the extra sessions."""
        with self.lock:
            for conn in self.opened:
                conn.close()
            self.opened.clear()
        if not self.main.closed and self.main.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.main.rollback()


def _quote_literal(value: str | None) -> str:
    # snapshot ids look like 00000003-0000001B-1; quoting keeps anything else inert
    return "'" + (value or "").replace("'", "''") + "'"


class _Stopped(Exception):
    """The consumer went away; the reader leaves its COPY (psycopg cancels it)."""


class _TableReader(threading.Thread):
    """Streams one table from the source in a thread, a few batches ahead of the loader.

    While the target merges batch *n*, the source server already produces batch *n+1*: the
    two sides overlap instead of waiting for each other.
    """

    def __init__(self, conn: psycopg.Connection, *, plan: LoadPlan, table: str, batch_rows: int,
                 depth: int = 2) -> None:
        super().__init__(name=f"mirror-read-{table}", daemon=True)
        self.conn = conn
        self.plan = plan
        self.table = table
        self.batch_rows = batch_rows
        self.queue: queue.Queue[list[bytes] | BaseException | None] = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()

    def run(self) -> None:
        """``COPY (SELECT ...) TO STDOUT`` in batches; ``None`` marks the end."""
        try:
            statement = psycopg.sql.SQL("COPY ({}) TO STDOUT").format(self.plan.select_sql(self.table))
            with self.conn.cursor().copy(statement) as copy:
                # text-format COPY hands out exactly one row per chunk
                for batch in batched_rows(copy, self.batch_rows):
                    self._put(batch)
            self._put(None)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            try:
                self._put(exc)
            except _Stopped:
                return

    def _put(self, item: list[bytes] | BaseException | None) -> None:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def batches(self) -> Iterator[list[bytes]]:
        """The table's batches as they arrive."""
        while True:
            item = self.queue.get()
            if isinstance(item, BaseException):
                if isinstance(item, psycopg.errors.UndefinedColumn | psycopg.errors.UndefinedTable):
                    raise MirrorError(f"reading {self.table!r} from the source failed: {item} (query: "
                                      f"{render(self.plan.select_sql(self.table), self.conn)})") from item
                raise item
            if item is None:
                return
            yield item

    def close(self) -> None:
        """Stop reading (if still running) and wait for the thread."""
        self.stopping.set()
        if self.is_alive():
            self.join()
