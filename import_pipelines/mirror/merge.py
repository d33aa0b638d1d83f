"""The mirror's front end to the engine: a table's merge plan, and loading its rows batch by batch.

Rows arrive in the staging layout (PostgreSQL text COPY lines: plain columns, then every
reference as the referenced row's natural key), from a source database or an archive file.
Each batch is appended to the table's staging table and merged by the engine
(:mod:`import_pipelines.engine.merge`): found by natural key, references resolved through key
relations, compared column by column (``upsert``) or skipped (``create_only``), audited. Tables
load in dependency order, several at a time; the late seed fills in what cycles deferred.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from graphlib import TopologicalSorter
from itertools import islice

import psycopg
from psycopg import sql

from import_pipelines.control import CONTROL_SCHEMA, ensure_control_schema
from import_pipelines.db.connect import configure_bulk_session
from import_pipelines.db.copy import pin_text_format
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import RunRef, record_failure, register_run, register_stream
from import_pipelines.engine.late_seed import TEXT_TYPES, Placeholders, create_placeholders, late_seed
from import_pipelines.engine.load import SessionPool, load_staged
from import_pipelines.engine.merge import MAX_ISOLATED, EngineError, describe_error, id_text, key_text
from import_pipelines.engine.plan import MergePlan, Ref, Value
from import_pipelines.engine.staging import create_staging, drop_staging, index_staging
from import_pipelines.engine.target import TargetTable, target_table
from import_pipelines.mirror.plan import LoadPlan
from import_pipelines.mirror.report import MirrorError, MirrorReport, Mode, ReferenceProblem, TableReport

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 1000

ProgressCallback = Callable[[TableReport], None]


def batched_rows(rows: Iterable[bytes | memoryview], size: int) -> Iterator[list[bytes]]:
    """Group text-format COPY lines into lists of ``size`` rows."""
    rows = iter(rows)
    while batch := [bytes(row) for row in islice(rows, size)]:
        yield batch


def _slot(slot: int) -> sql.Identifier:
    return ident("s", f"c{slot}")


def merge_plan(plan: LoadPlan, table: str, *, targets: dict[str, TargetTable], mode: Mode, profile: str) -> MergePlan:
    """The engine's plan for one mirrored table: its staging slots are ``c0..`` in layout order."""
    tp = plan.tables[table]
    refs: list[Ref] = []
    for group in tp.groups:
        atoms = tuple(_slot(slot) for slot in group.atom_slots)
        names = tuple(atom.name for atom in group.atoms)
        prefix = f"unresolved reference {table}.{group.spec.label} -> {group.ref_table}: no row with natural key "
        refs.append(Ref(
            name=group.spec.name, columns=group.columns, column_types=group.column_types,
            table=targets[group.ref_table], ref_columns=group.spec.ref_columns,
            relation=plan.keys.key_relation(group.ref_table, group.spec.ref_columns, schema_name=plan.schema),
            atoms=atoms, atom_names=names, atom_types=tuple(atom.data_type for atom in group.atoms),
            present=(_slot(group.flag_slot) if group.flag_slot is not None
                     else sql.SQL("{} IS NOT NULL").format(atoms[0])),
            describe_missing=lambda values, prefix=prefix, names=names: sql.SQL("({} || {})").format(
                sql.Literal(prefix), key_text(names, list(values))),
            source_key=id_text(list(atoms)), ref_stream=group.ref_table if group.ref_table in plan.tables else None,
            deferred=group.deferred, not_null=group.not_null))
    key: list[Value] = []
    missing: list[sql.Composable] = []
    seen_groups: set[int] = set()
    for column in tp.natural_key:
        slot = tp.plain_slot(column)
        if slot is not None:
            key.append(Value(column, _slot(slot)))
            missing.append(sql.SQL("{} IS NULL").format(_slot(slot)))
        else:
            gi, k = tp.group_of(column)  # type: ignore[misc]
            key.append(Value(column, ident(f"g{gi}", f"r{k}")))
            if gi not in seen_groups:
                seen_groups.add(gi)
                missing.append(sql.SQL("NOT ({})").format(refs[gi].present))
    return MergePlan(
        profile=profile, entity=table, table=targets[table], key=tuple(key),
        key_message=f"natural key ({', '.join(tp.key_atom_names)}) is NULL",
        key_null=sql.SQL(" OR ").join(missing),
        values=tuple(Value(column.name, _slot(slot)) for slot, column in enumerate(tp.plain)), refs=tuple(refs),
        change="columns" if mode == "upsert" else "none", mode=mode,
        source_id=id_text([_slot(slot) for slot in tp.key_slots]))


@dataclass
class TableLoad:
    """One table's staging table and what has been staged into it."""

    stage: str
    copy_slots: tuple[int, ...]  # order of the layout slots in the incoming lines
    unparsable: int = 0  # lines COPY refused (their audit rows are numbered -1, -2, ...)


class Loader:
    """Loads the tables of a :class:`LoadPlan` into the target through the engine."""

    def __init__(self, conn: psycopg.Connection, plan: LoadPlan, *, mode: Mode, run_id: str, profile: str,
                 batch_rows: int, connect: Callable[[], psycopg.Connection],
                 on_progress: ProgressCallback | None = None) -> None:
        if mode not in ("create_only", "upsert"):
            raise MirrorError(f"mode must be 'create_only' or 'upsert', not {mode!r}")
        if batch_rows < 1:
            raise MirrorError("batch_rows must be at least 1")
        self.conn = conn
        self.plan = plan
        self.mode = mode
        self.run_id = run_id
        self.profile = profile
        self.batch_rows = batch_rows
        self.on_progress = on_progress
        self.connect = connect
        self.report = MirrorReport(run_id=run_id, mode=mode, deferred_references=plan.describe(),
                                   warnings=list(plan.warnings),
                                   tables={table: TableReport(table) for table in plan.order})
        self.run: RunRef | None = None
        self.plans: dict[str, MergePlan] = {}
        self.loads: dict[str, TableLoad] = {}
        self.streams: dict[str, int] = {}
        self.placeholders = Placeholders()
        self._lock = threading.Lock()  # guards the shared report lists when tables load concurrently
        self._started = time.perf_counter()

    # -- sessions ----------------------------------------------------------------------------
    @staticmethod
    def configure(conn: psycopg.Connection) -> None:
        """Session settings for bulk work and the pinned text form of COPY."""
        configure_bulk_session(conn)
        pin_text_format(conn)
        conn.commit()

    def open_session(self) -> psycopg.Connection:
        """A further configured target session (the caller closes it)."""
        conn = self.connect()
        self.configure(conn)
        return conn

    # -- phases ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Control schema, run and streams, merge plans, staging tables and placeholder rows."""
        conn = self.conn
        self.configure(conn)
        ensure_control_schema(conn)
        self.run = register_run(conn, run_id=self.run_id, profile=self.profile)
        schema = self.plan.keys.schema
        names = set(self.plan.order) | {g.ref_table for t in self.plan.order for g in self.plan.tables[t].groups}
        targets = {name: target_table(conn, schema.table(name),
                                      row_key=self.plan.tables[name].row_key if name in self.plan.tables else None)
                   for name in sorted(names)}
        tag = uuid.uuid4().hex[:10]
        self.plans = {table: merge_plan(self.plan, table, targets=targets, mode=self.mode, profile=self.profile)
                      for table in self.plan.order}
        self.streams = {table: register_stream(conn, profile=self.profile, entity=table,
                                               target_table=targets[table].qualified, source=table)
                        for table in self.plan.order}
        self.placeholders = create_placeholders(conn, list(self.plans.values()), marker_column=self._marker_column)
        self.report.placeholders = [name.split(".", 1)[1] for name in self.placeholders.rows]
        with conn.transaction():
            for index, table in enumerate(self.plan.order):
                layout = self.plan.tables[table].layout
                self.loads[table] = TableLoad(stage=f"mirror_{tag}_{index}_stage", copy_slots=tuple(range(len(layout))))
                create_staging(conn, table=self.loads[table].stage, run_id=self.run_id,
                               columns=[(f"c{slot}", column.data_type) for slot, column in enumerate(layout)])
        conn.commit()  # the catalogue reads above opened a transaction the blocks above nested in

    def _marker_column(self, table: str) -> str | None:
        """The first plain text column of the natural key: it carries the placeholder marker."""
        info = self.plan.keys.schema.table(table)
        for kind, value in self.plan.keys.key_elements(table):
            if kind == "column":
                column = info.column(value)
                if column.data_type.split("(")[0] in TEXT_TYPES and not column.is_computed:
                    return value
        return None

    def load_batches(self, table: str, batches: Iterable[list[bytes]], *, conn: psycopg.Connection) -> TableReport:
        """Stage every batch of ``table``'s rows, then merge the table through the engine on ``conn``."""
        report = self.report.tables[table]
        load = self.loads[table]
        started = time.perf_counter()
        for batch in batches:  # never empty (batched_rows)
            self._stage(conn, load, rows=batch, report=report)
        index_staging(conn, load.stage)
        staged = conn.execute(sql.SQL("SELECT coalesce(max(_rn), 0) FROM {}").format(
            ident(CONTROL_SCHEMA, load.stage))).fetchone()[0]
        conn.commit()
        assert self.run is not None
        merger, counts, report.batches = load_staged(
            self.plans[table], conn=conn, connect=self.open_session, staging=load.stage, run=self.run,
            streams=self.streams, rows=staged, batch_rows=self.batch_rows, workers=1, log=log.info,
            placeholders=self.placeholders.rows, on_isolated=lambda rn, sid, message: self._report_error(ReferenceProblem(
                table, sid or "", "*", "", "", "load", f"{table}: the target refused the row: {message}")))
        report.rows += sum(counts.values())
        for action, count in counts.items():
            report.add(action, count)
        if counts.get("failed"):  # structured report entries: natural key, reference, missing key
            with self._lock:
                self.report.error_count += counts["failed"]
                room = MAX_REPORTED_ERRORS - len(self.report.errors)
            for sid, column, ref_table, missing in merger.problems(conn, 0, staged, limit=room) if room > 0 else []:
                self._report_error(ReferenceProblem(table, sid, column, ref_table, missing, "load", (
                    f"{table}: natural key ({column}) is NULL" if not ref_table else
                    f"{table} {sid}: {column} -> {ref_table} has no row with natural key {missing}")))
            conn.commit()
        report.seconds += time.perf_counter() - started
        log.info("%s: %d rows, %d created, %d updated, %d skipped, %d unchanged, %d failed (%.0f rows/s)", table,
                 report.rows, report.created, report.updated, report.skipped, report.unchanged, report.failed,
                 report.rows_per_s)
        if self.on_progress:
            with self._lock:
                self.on_progress(report)
        return report

    def load_all(self, load: Callable[[str, psycopg.Connection], None], *, workers: int) -> None:
        """Call ``load(table, conn)`` for every table, up to ``workers`` tables at a time.

        A table starts once every table it references (other than through a late reference)
        has finished, so its references resolve; extra sessions come from ``connect``. The first
        failure stops new tables from starting and is re-raised once the running ones have ended.
        """
        if workers <= 1 or len(self.plan.order) == 1:
            for table in self.plan.order:
                load(table, self.conn)
            return
        tables = self.plan.tables
        waits_for = {table: {group.ref_table for group in tables[table].groups
                             if not group.deferred and group.ref_table in tables and group.ref_table != table}
                     for table in self.plan.order}
        position = {table: index for index, table in enumerate(self.plan.order)}
        sorter = TopologicalSorter(waits_for)
        sorter.prepare()
        sessions = SessionPool(self.open_session, first=None, size=min(workers, len(self.plan.order)))

        def run(table: str) -> None:
            with sessions.session() as (current, _):
                load(table, current())

        running: dict[Future[None], str] = {}
        failure: BaseException | None = None
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mirror-load") as pool:
                while failure is None and sorter.is_active():
                    for table in sorted(sorter.get_ready(), key=position.__getitem__):
                        running[pool.submit(run, table)] = table
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        sorter.done(running.pop(future))
                        failure = failure or future.exception()
                for future in running:
                    future.cancel()  # a queued table never starts; the running ones end
        finally:
            sessions.close()
        if failure is not None:
            raise failure

    def finish(self) -> MirrorReport:
        """Run the late-seed phase (one transaction) and close the report."""
        assert self.run is not None
        try:
            outcome = late_seed(self.conn, run=self.run, plans=[self.plans[t] for t in self.plan.order],
                                stream_ids=self.streams,
                                placeholders=self.placeholders,
                                max_problems=max(0, MAX_REPORTED_ERRORS - len(self.report.errors)))
        except EngineError as error:
            raise MirrorError(str(error)) from error
        self.report.late_seeded = outcome.resolved
        self.report.error_count += outcome.unresolved
        self.report.warnings.extend(outcome.warnings)
        for table, sid, column, ref_table, key in outcome.problems:
            self.report.errors.append(ReferenceProblem(table, sid, column, ref_table, key, "late_seed",
                                                       f"{table} {sid}: unresolved late reference {column} ->"
                                                       f" {ref_table}: no row with natural key {key}"))
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    def cleanup(self) -> None:
        """Drop the staging tables (also after a failure); never raises."""
        try:
            if self.conn.closed:
                return
            self.conn.rollback()
            with self.conn.transaction():
                for load in self.loads.values():
                    drop_staging(self.conn, load.stage)
            self.loads.clear()
        except psycopg.Error as exc:  # the connection may be gone; the tables are UNLOGGED scratch
            log.warning("could not drop staging tables: %s", exc)

    # -- staging and failures ------------------------------------------------------------------
    def _report_error(self, problem: ReferenceProblem) -> None:
        with self._lock:
            if len(self.report.errors) < MAX_REPORTED_ERRORS:
                self.report.errors.append(problem)

    def _stage(self, conn: psycopg.Connection, load: TableLoad, *, rows: list[bytes], report: TableReport) -> None:
        """Append ``rows`` to the staging table; a line COPY cannot parse is isolated by halving and audited."""
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(  # PostgreSQL text format
            ident(CONTROL_SCHEMA, load.stage), sql.SQL(", ").join(ident(f"c{slot}") for slot in load.copy_slots))
        try:
            with conn.transaction(), conn.cursor().copy(copy_sql) as copy:
                # a few large writes instead of one per row
                for start in range(0, len(rows), 2000):
                    copy.write(b"".join(rows[start:start + 2000]))
            return
        except psycopg.errors.DataError as exc:
            error = exc
        if len(rows) > 1:
            middle = len(rows) // 2
            self._stage(conn, load, rows=rows[:middle], report=report)
            self._stage(conn, load, rows=rows[middle:], report=report)
            return
        table = report.table
        message = (f"{table}: the row could not be read: {describe_error(error)}; line: "
                   f"{rows[0][:200].decode('utf-8', 'replace').rstrip()}")
        load.unparsable += 1
        assert self.run is not None
        with conn.transaction():
            record_failure(conn, run=self.run, stream_id=self.streams[table], record_no=-load.unparsable,
                           message=message)
        report.rows += 1
        report.failed += 1
        with self._lock:
            self.report.error_count += 1
        self._report_error(ReferenceProblem(table, "", "*", "", "", "load", message))
        if load.unparsable > MAX_ISOLATED:
            raise MirrorError(f"{table}: more than {MAX_ISOLATED} rows could not be read; last error: {message}")
