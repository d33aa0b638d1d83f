"""The four steps of one entity's import. Dagster ops call these; so do the benchmarks.

Data never travels between steps through Python: extract streams source rows into a staging
table in the target database, and every later step is set-based SQL over that table. What
passes from step to step is a small :class:`Staged` descriptor.
"""

from __future__ import annotations

import queue
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from import_pipelines.db.connect import configure_bulk_session, connect
from import_pipelines.db.sql import ident
from import_pipelines.extract.postgres import stream_to_staging
from import_pipelines.control import ACTIONS, ensure_control_schema
from import_pipelines.load.dry_run import _dry_run_preview, predict_duplicates, write_dry_run_report
from import_pipelines.load.merge import CONTROL, Merger, is_first_import, record_duplicate_states, staging_table_name
from import_pipelines.load.plan import LoadPlan, build_plan
from import_pipelines.load.references import set_based_check_refusal
from import_pipelines.query.compile import compile_query
from import_pipelines.templates.model import Mode, Template

Log = Callable[[str], None]


@dataclass(frozen=True)
class EntityRun:
    """One entity of one profile in one run: what to read, where to write, how."""

    profile: str
    template: Template
    entity_name: str
    run_id: str
    source_url: str
    target_url: str
    source_system: str | None = None
    mode: Mode | None = None
    batch_rows: int | None = None
    workers: int = 2
    dry_run: bool = False

    @property
    def rows_per_batch(self) -> int:
        """Rows per extract chunk and per merge transaction."""
        return self.batch_rows or self.template.batch_rows

    def purpose(self, side: str) -> str:
        """``source of profile x, entity y``: which connection an error is about."""
        return f"{side} of profile {self.profile}, entity {self.entity_name}"

    def plan(self, conn) -> LoadPlan:
        """The entity's load plan, checked against the target schema."""
        return build_plan(conn, template=self.template, entity_name=self.entity_name, profile=self.profile,
                          source_system=self.source_system, mode=self.mode)


@dataclass(frozen=True)
class Staged:
    """What one step hands to the next: the staging table and what has been learned so far."""

    staging: str
    rows: int
    started: float
    invalid: int = 0
    duplicates: int = 0
    extract_seconds: float = 0.0
    matched_target: int = 0
    confidences: tuple[float, ...] = ()


@dataclass(frozen=True)
class LoadResult:
    """The outcome of loading one entity."""

    counts: dict[str, int]
    rows: int
    seconds: float
    duplicates: int
    preview: list[dict] = field(default_factory=list)
    preview_columns: list[str] = field(default_factory=list)
    matched_target: int = 0
    confidences: tuple[float, ...] = ()
    dry_run: bool = False
    report: str | None = None

    @property
    def rows_per_s(self) -> float:
        """Source rows per second, extract to load."""
        return self.rows / self.seconds if self.seconds else 0.0


def percent(done: int, total: int | None) -> str:
    """``45% (4,500 / 10,000)`` — the progress line the run view shows."""
    if not total:
        return f"{done:,} rows"
    return f"{min(100, round(100 * done / total))}% ({done:,} / {total:,})"


def extract(run: EntityRun, *, log: Log = print) -> Staged:
    """Stream the entity's compiled source query into a fresh staging table in the target."""
    started = time.perf_counter()
    entity = run.template.entities[run.entity_name]
    with connect(run.target_url, autocommit=True, purpose=run.purpose("target")) as target:
        ensure_control_schema(target)
        plan = run.plan(target)  # fail on a mapping that does not fit before reading anything
        staging = staging_table_name(plan, run.run_id)
        with connect(run.source_url, read_only=True, purpose=run.purpose("source")) as probe:
            version = probe.info.server_version
        compiled = compile_query(entity.query, entity.fields, server_version=version)
        target.autocommit = False
        invalid: list[int] = []

        def invalid_text(row: int, message: str) -> None:
            invalid.append(row)
            if len(invalid) <= _LOGGED_INVALID_ROWS:
                log(f"{run.entity_name} extract: source row {row:,}: {message}")

        rows = stream_to_staging(
            source_url=run.source_url, target=target, compiled=compiled, schema=CONTROL, table=staging,
            chunk_rows=run.rows_per_batch, purpose=run.purpose("source"),
            on_invalid_text=entity.on_invalid_text or run.template.on_invalid_text, invalid_text=invalid_text,
            progress=lambda done, total: log(f"{run.entity_name} extract: {percent(done, total)}"))
        if len(invalid) > _LOGGED_INVALID_ROWS:
            log(f"{run.entity_name} extract: {len(invalid):,} rows held text that is not valid UTF-8")
        # the load reads the staging table by row-number ranges: indexed and analysed here, while
        # the entities this one references may still be loading, not when its own load begins
        table = ident(CONTROL, staging)
        target.execute(sql.SQL("CREATE INDEX ON {} (_rn)").format(table))
        target.execute(sql.SQL("ANALYZE {}").format(table))
        target.commit()
    seconds = time.perf_counter() - started
    log(f"{run.entity_name} extract: {rows:,} rows staged in {seconds:.2f} s")
    failed_text = 0 if (entity.on_invalid_text or run.template.on_invalid_text) == "replace" else len(invalid)
    return Staged(staging=staging, rows=rows, started=started, extract_seconds=seconds, invalid=failed_text)


_LOGGED_INVALID_ROWS = 20  # rows named one by one in the step log; the rest are counted


def map_and_validate(run: EntityRun, staged: Staged, *, log: Log = print) -> Staged:
    """Check every staged row against the target columns (required values, lengths), set-based.

    Rows that break a rule get an error naming the field and the rule; they are recorded as
    ``failed`` by the load step and never reach the target table.
    """
    with connect(run.target_url, autocommit=True, purpose=run.purpose("target")) as conn:
        plan = run.plan(conn)
        checks = []
        for name in plan.write_fields:
            column = plan.table.columns[name]
            if column.not_null:
                checks.append(sql.SQL("CASE WHEN s.{f} IS NULL THEN {m} END").format(
                    f=ident(name), m=sql.Literal(f"{name}: required, but empty ({plan.table.qualified}.{name} is NOT NULL)")))
            if column.max_length:
                checks.append(sql.SQL("CASE WHEN length((s.{f})::text) > {n} THEN {m1} || length((s.{f})::text) || {m2} END"
                                      ).format(f=ident(name), n=sql.Literal(column.max_length),
                                               m1=sql.Literal(f"{name}: "),
                                               m2=sql.Literal(f" characters, {plan.table.qualified}.{name}"
                                                              f" holds {column.max_length}")))
        checks.append(sql.SQL("CASE WHEN s.{f} IS NULL THEN {m} END").format(
            f=ident(plan.entity.source_id), m=sql.Literal(f"{plan.entity.source_id}: the source identifier is empty")))
        invalid = 0
        if checks:
            errors = sql.SQL("NULLIF(concat_ws('; ', {}), '')").format(sql.SQL(", ").join(checks))
            # an error found earlier (extract: text that is not UTF-8) is kept, the field rules' added
            cur = conn.execute(sql.SQL("UPDATE {t} AS s SET _error = concat_ws('; ', s._error, e.msg) FROM"
                                       " (SELECT _rn, {errors} AS msg FROM {t} AS s)"
                                       " AS e WHERE e.msg IS NOT NULL AND s._rn = e._rn").format(
                t=ident(CONTROL, staged.staging), errors=errors))
            invalid = cur.rowcount
    invalid += staged.invalid
    log(f"{run.entity_name} map: {staged.rows - invalid:,} rows valid, {invalid:,} rejected by field rules")
    return replace(staged, invalid=invalid)


def dedupe(run: EntityRun, staged: Staged, *, log: Log = print) -> Staged:
    """Mark duplicates before anything is written.

    Always: rows with the same source identifier collapse (exact, on the natural key; the smallest
    by value survives, so the choice does not depend on the order the source returned them in). With a template ``dedupe`` rule also: records that are the same thing by the rule
    (exact, case-insensitive or fuzzy, weighted confidence, threshold) within the batch, with the
    survivor rule applied, and records matching a row the target already holds.
    """
    from import_pipelines.dedupe.staging import apply_rule

    started = time.perf_counter()
    entity = run.template.entities[run.entity_name]
    table = ident(CONTROL, staged.staging)
    sid = ident(entity.source_id)
    with connect(run.target_url, autocommit=True, purpose=run.purpose("target")) as conn:
        # the rule's blocks are counted and joined in temp tables: hash aggregates, not disk sorts
        configure_bulk_session(conn)
        # hash aggregate first: on a clean source (the usual case) nothing is sorted or rewritten
        repeated = conn.execute(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {sid} IS NOT NULL"
                                        " GROUP BY {sid} HAVING count(*) > 1) AS d").format(t=table, sid=sid)).fetchone()[0]
        duplicates = 0
        if repeated:
            # the survivor is the smallest record by value, not the first to arrive: a source read
            # without an order (a DISTINCT, a hash join) must pick the same survivor every run, or
            # a re-run would "update" a row to another spelling of the same record
            values = sql.SQL("row({})::text").format(sql.SQL(", ").join(ident(f) for f in entity.fields))
            cur = conn.execute(sql.SQL(
                "UPDATE {t} AS s SET _dup_of = (d.first_sid)::text, _confidence = 100 FROM ("
                " SELECT _rn, {sid} AS first_sid, row_number() OVER (PARTITION BY {sid} ORDER BY {values}, _rn) AS k"
                " FROM {t} WHERE {sid} IS NOT NULL) AS d WHERE d.k > 1 AND s._rn = d._rn").format(
                t=table, sid=sid, values=values))
            duplicates = cur.rowcount
        log(f"{run.entity_name} dedupe: {duplicates:,} repeated source ids ({entity.source_id})")
        if entity.dedupe is None:
            return replace(staged, duplicates=duplicates, confidences=(100.0,) * duplicates)
        plan = run.plan(conn)
        nk = run.template.natural_key
        # a second session streams the rows while this one takes in their blocking keys
        with conn.transaction(), connect(run.target_url, read_only=True) as reader:
            outcome = apply_rule(conn, staging=table, target=ident(plan.table.schema, plan.table.name),
                                 primary_key=plan.table.primary_key, natural_key=(nk.system_column, nk.id_column),
                                 source_system=plan.source_system, source_id=entity.source_id, rule=entity.dedupe,
                                 survivor_updated=entity.survivor_updated, reader=reader)
    mean = f", mean confidence {outcome.mean_confidence:.1f}" if outcome.mean_confidence is not None else ""
    log(f"{run.entity_name} dedupe ({entity.dedupe.strategy}): {outcome.within:,} duplicates within the batch,"
        f" {outcome.against_target:,} matching target rows, {outcome.pairs_compared:,} pairs compared{mean}"
        f" in {time.perf_counter() - started:.2f} s")
    return replace(staged, duplicates=duplicates + outcome.within, matched_target=outcome.against_target,
                   confidences=(100.0,) * duplicates + tuple(outcome.confidences))


def load(run: EntityRun, staged: Staged, *, log: Log = print, preview_rows: int = 5) -> LoadResult:
    """Merge the staged rows batch by batch (each batch atomic with its audit rows), then drop staging.

    Batches are disjoint ranges of staging rows with distinct natural keys, so ``run.workers``
    sessions merge them side by side without contending for the same rows.
    """
    counts: Counter[str] = Counter()
    with connect(run.target_url, autocommit=True) as conn:
        configure_bulk_session(conn)
        plan = run.plan(conn)
        refusal = None if run.dry_run else set_based_check_refusal(conn, plan)
        if plan.references and not run.dry_run:
            log(f"{run.entity_name} load: references checked "
                + (f"by the foreign-key triggers, row by row ({refusal})" if refusal
                   else "set-based: each batch locks the rows it points at FOR KEY SHARE"))
        merger = Merger(plan, staging=staged.staging, run_id=run.run_id, dry_run=run.dry_run,
                        first_import=is_first_import(conn, plan), set_based_references=refusal is None)
        staging = ident(CONTROL, staged.staging)
        last = conn.execute(sql.SQL("SELECT coalesce(max(_rn), 0) FROM {}").format(staging)).fetchone()[0]
        ranges = batch_ranges(last, batch_rows=run.rows_per_batch, workers=run.workers)
        refused = lambda rn, msg: log(f"{run.entity_name} load: staging row {rn} refused: {msg}")  # noqa: E731
        sessions = [conn] + [connect(run.target_url, autocommit=True) for _ in range(min(run.workers, len(ranges)) - 1)]
        for extra in sessions[1:]:
            configure_bulk_session(extra)
        idle: queue.SimpleQueue = queue.SimpleQueue()
        for session in sessions:
            idle.put(session)

        def on_session(work: Callable[[psycopg.Connection], object]) -> object:
            session = idle.get()
            try:
                return work(session)
            finally:
                idle.put(session)

        def merge_range(bounds: tuple[int, int]) -> tuple[int, Counter[str]]:
            return bounds[1] - bounds[0], on_session(lambda session: merger.merge(session, *bounds, on_isolated=refused))

        def analyze(table: sql.Identifier) -> None:
            on_session(lambda session: session.execute(sql.SQL("ANALYZE {}").format(table)))

        def record_state_epilogue(session: psycopg.Connection) -> None:
            session.execute(sql.SQL("ANALYZE {}.record_state").format(ident(CONTROL)))
            if plan.entity.dedupe is not None:
                # a duplicate points at the row its survivor became, which any batch may have
                # written; planned on fresh statistics, which know this entity's state rows (stale
                # ones, which do not, made the state lookup scan every row of the entity per duplicate)
                record_duplicate_states(session, plan, staging=staged.staging, run_id=run.run_id)

        done = 0
        try:
            with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
                merges = [pool.submit(merge_range, bounds) for bounds in ranges]
                # fresh statistics before the next entities join against the table; queued behind
                # the merges, so the first session out of batches takes it while the other merges
                # the last one (the planner scales statistics to the table's current size)
                epilogue = [] if run.dry_run else [pool.submit(analyze, ident(plan.table.schema, plan.table.name))]
                for merged in merges:
                    size, batch_counts = merged.result()
                    counts.update(batch_counts)
                    done += size
                    log(f"{run.entity_name} load: {percent(done, last)} — "
                        + ", ".join(f"{a} {counts[a]:,}" for a in ACTIONS if counts[a]))
                if not run.dry_run:
                    epilogue.append(pool.submit(on_session, record_state_epilogue))
                for task in epilogue:
                    task.result()
        finally:
            for extra in sessions[1:]:
                extra.close()
        report = None
        if run.dry_run:
            predict_duplicates(conn, plan, staging=staged.staging, run_id=run.run_id)
            preview, columns = _dry_run_preview(conn, plan, run.run_id, preview_rows)
            report = write_dry_run_report(conn, plan, run_id=run.run_id)
            log(f"{run.entity_name} dry run: nothing written to {plan.table.qualified}; report {report}")
        else:
            preview, columns = _preview(conn, plan, run.run_id, preview_rows)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
    seconds = time.perf_counter() - staged.started
    return LoadResult(counts={a: counts.get(a, 0) for a in ACTIONS if a != "rolled_back"}, rows=staged.rows,
                      seconds=seconds, duplicates=staged.duplicates, preview=preview, preview_columns=columns,
                      matched_target=staged.matched_target, confidences=staged.confidences, dry_run=run.dry_run,
                      report=report)


MIN_GUIDED_BATCH = 10_000  # about 0.2 s of merging on the benchmark machine


def batch_ranges(rows: int, *, batch_rows: int, workers: int) -> list[tuple[int, int]]:
    """Split staging rows ``1..rows`` into ranges ``(lo, hi]`` of at most ``batch_rows``, shrinking.

    Guided self-scheduling: each batch takes a ``workers``-th of the rows still unassigned (at
    most ``batch_rows``, at least :data:`MIN_GUIDED_BATCH`), and sessions take the next batch as
    they finish one. Whatever slows a session down, the others are left waiting at most for one
    small batch at the end, while the first batches stay large enough to amortise the hash joins
    each batch builds over the tables it references.
    """
    floor = min(batch_rows, MIN_GUIDED_BATCH)
    ranges, lo = [], 0
    while lo < rows:
        size = min(batch_rows, max(floor, -(-(rows - lo) // workers)), rows - lo)
        if rows - lo - size < floor:  # no batch smaller than the floor at the end
            size = min(batch_rows, rows - lo)
        ranges.append((lo, lo + size))
        lo += size
    return ranges


def _preview(conn, plan: LoadPlan, run_id: str, limit: int) -> tuple[list[dict], list[str]]:
    columns = [plan.table.primary_key, plan.template.natural_key.id_column, *plan.write_fields,
               *(r.column for r in plan.references)]
    rows = conn.execute(sql.SQL(
        # the audit's text ids are cast to the key's type, so the rows are found by primary key
        "SELECT {cols} FROM {t} WHERE {pk} IN (SELECT (target_id)::{pk_type} FROM {control}.import_records"
        " WHERE run_id = %s AND entity = %s AND action IN ('created', 'updated') LIMIT %s) ORDER BY {pk}").format(
        cols=sql.SQL(", ").join(ident(c) for c in columns), t=ident(plan.table.schema, plan.table.name),
        pk=ident(plan.table.primary_key), pk_type=sql.SQL(plan.table.columns[plan.table.primary_key].type),
        control=ident(CONTROL)), (run_id, plan.entity_name, limit)).fetchall()
    return [dict(zip(columns, r)) for r in rows], columns
