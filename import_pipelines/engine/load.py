"""Run the merge of one staged stream: batches over target sessions, the epilogue, the run summary.

Batches are disjoint ranges of staging rows with distinct natural keys, so several sessions merge
them side by side without contending for the same rows; they shrink towards the end (:func:`batch_ranges`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
from psycopg import sql

from import_pipelines.control import ACTIONS
from import_pipelines.db.connect import configure_bulk_session
from import_pipelines.db.sql import ident
from import_pipelines.engine.audit import RunRef, record_summary
from import_pipelines.engine.budget import ErrorBudget
from import_pipelines.engine.merge import CONTROL, Merger, merge_with_retries
from import_pipelines.engine.plan import MergePlan
from import_pipelines.engine.references import set_based_check_refusal

Log = Callable[[str], None]

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


def percent(done: int, total: int | None) -> str:
    """``45% (4,500 / 10,000)`` — the progress line the run view shows."""
    if not total:
        return f"{done:,} rows"
    return f"{min(100, round(100 * done / total))}% ({done:,} / {total:,})"


def is_small_change(conn: psycopg.Connection, plan: MergePlan, rows: int) -> bool:
    """Whether ``rows`` staged records are few beside the target table (under a quarter of it, by
    the planner's estimate): a sync's changes, merged by index probes in few batches, which leave
    the table's statistics as they were."""
    table_rows = conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                              (ident(plan.table.schema, plan.table.name).as_string(conn),)).fetchone()[0]
    return rows * 4 < table_rows


def is_first_import(conn: psycopg.Connection, plan: MergePlan, *, stream_id: int | None) -> bool:
    """Whether neither the target table nor ``record_state`` holds anything of this stream's source yet.

    Two index probes (the natural key and the state's primary key), taken before the first batch;
    a stream not registered yet (``None``, as the preview may see one) has no state to look at.
    """
    match = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(ident(v.column), v.expr) if isinstance(v.expr, sql.Literal)
        else sql.SQL("{} IS NOT NULL").format(ident(v.column)) for v in plan.key)
    state = (sql.SQL(" OR EXISTS (SELECT 1 FROM {}.record_state WHERE stream_id = {})").format(
        CONTROL, sql.Literal(stream_id)) if plan.change == "hash" and stream_id is not None else sql.SQL(""))
    return not conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {}){}").format(
        ident(plan.table.schema, plan.table.name), match, state)).fetchone()[0]


class SessionPool:
    """Target sessions shared by the merging threads; a broken one is replaced on demand."""

    def __init__(self, connect: Callable[[], psycopg.Connection], *, first: psycopg.Connection | None, size: int):
        self._connect = connect
        self._own = first is None  # whether every session is the pool's (else the first is the caller's)
        self.sessions = [] if first is None else [first]
        try:
            for _ in range(size - len(self.sessions)):
                self.sessions.append(self._open())
        except BaseException:
            self.close()  # those opened before the one that could not be
            raise
        self._idle: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(size):
            self._idle.put(index)

    def _open(self) -> psycopg.Connection:
        conn = self._connect()
        configure_bulk_session(conn)
        return conn

    @contextmanager
    def session(self) -> Iterator[tuple[Callable[[], psycopg.Connection], Callable[[], psycopg.Connection]]]:
        """``(current, reconnect)`` for one idle session, returned to the pool afterwards.

        Only the thread holding a session's index touches it until it is returned."""
        index = self._idle.get()

        def reconnect() -> psycopg.Connection:
            try:
                self.sessions[index].close()
            finally:
                self.sessions[index] = self._open()
            return self.sessions[index]

        try:
            yield (lambda: self.sessions[index]), reconnect
        finally:
            self._idle.put(index)

    def close(self) -> None:
        """Close the pool's own sessions (never the caller's)."""
        for conn in self.sessions[0 if self._own else 1:]:
            conn.close()


def load_staged(plan: MergePlan, *, conn: psycopg.Connection, connect: Callable[[], psycopg.Connection],
                staging: str, run: RunRef, streams: dict[str, int], rows: int, batch_rows: int, workers: int,
                log: Log, dry_run: bool = False, placeholders: dict | None = None,
                epilogue: Callable[[psycopg.Connection], None] | None = None,
                on_isolated: Callable[[int, str | None, str], None] | None = None,
                unread: dict[str, int] | None = None, error_budget: ErrorBudget | None = None,
                merge_on_caller: bool = True) -> tuple[Merger, Counter[str], int]:
    """Merge staging rows ``1..rows`` on up to ``workers`` sessions and record the run's summary of
    them; returns the merger, the counts by action and the number of batches.

    ``conn`` is the caller's session; with ``merge_on_caller`` it is the first merging session
    (each batch commits on it, the first with what the caller left open), otherwise every merging
    session comes from ``connect``, and ``conn``, which may hold a lock, is never one a dropped
    connection takes away. When the batches are handed out, the first session out of work analyses
    the target table (the next entities join against it) and then runs ``epilogue``.

    ``error_budget`` (:mod:`~import_pipelines.engine.budget`) is judged after every batch, never
    in a dry run. ``unread`` counts records decided before staging, by action (a sync's key pass
    found them unchanged, or unchanged duplicates skipped again): the budget and the summary
    include them.
    """
    name, stream_id, unread = plan.entity, streams[plan.entity], unread or {}
    refusal = None if dry_run else set_based_check_refusal(conn, plan)
    if plan.refs and not dry_run:
        log(f"{name} load: references checked "
            + (f"by the foreign-key triggers, row by row ({refusal})" if refusal
               else "set-based: each batch locks the rows it points at FOR KEY SHARE"))
    merger = Merger(plan, staging=staging, run=run, stream_id=stream_id, streams=streams, dry_run=dry_run,
                    first_import=is_first_import(conn, plan, stream_id=stream_id),
                    set_based_references=refusal is None, placeholders=placeholders)
    error_budget = None if dry_run else error_budget
    started = time.perf_counter()
    ranges = batch_ranges(rows, batch_rows=batch_rows, workers=workers)
    merger.probe_joins = is_small_change(conn, plan, rows)
    if merger.probe_joins and len(ranges) > workers:
        # a few changed records against a large table (a sync): every batch hashes the whole table
        # and its state to join them, so as few batches as there are sessions, not shrinking ones
        size = -(-rows // workers)
        ranges = [(lo, min(rows, lo + size)) for lo in range(0, rows, size)]
    pool = SessionPool(connect, first=conn if merge_on_caller else None, size=max(1, min(workers, len(ranges))))

    def refused(rn: int, sid: str | None, message: str) -> None:
        log(f"{name} load: record {sid} (staging row {rn}) refused: {message}")
        if on_isolated is not None:
            on_isolated(rn, sid, message)

    retried = lambda attempt, error: log(f"{name} load: transient failure ({type(error).__name__}: "  # noqa: E731
                                         f"{str(error).strip()[:200]}), retry {attempt} on a new session")

    over_budget = threading.Event()
    judged = Counter(unread)  # what the budget sees: the records decided before the merge, the finished batches
    judging = threading.Lock()

    def merge_range(bounds: tuple[int, int]) -> tuple[int, Counter[str]] | None:
        if over_budget.is_set():
            return None  # the budget ran out while this batch was queued: it never starts
        with pool.session() as (current, reconnect):
            merged = merge_with_retries(merger, current, reconnect, *bounds, on_isolated=refused, on_retry=retried)
        if error_budget is not None:
            with judging:
                judged.update(merged)
                if error_budget.exceeded(judged):
                    over_budget.set()
        return bounds[1] - bounds[0], merged

    def on_session(work: Callable[[psycopg.Connection], object]) -> object:
        with pool.session() as (current, _):
            return work(current())

    counts: Counter[str] = Counter()
    done = 0
    try:
        with ThreadPoolExecutor(max_workers=len(pool.sessions)) as executor:
            merges = [executor.submit(merge_range, bounds) for bounds in ranges]
            # fresh statistics before the next entities join against the table; queued behind
            # the merges, so the first session out of batches takes it while another merges the last
            tail = [executor.submit(on_session, lambda s: s.execute(sql.SQL("ANALYZE {}").format(
                ident(plan.table.schema, plan.table.name))))] if not dry_run and not merger.probe_joins else []
            try:
                for merged in merges:
                    result = merged.result()
                    if result is None:
                        continue
                    counts.update(result[1])
                    done += result[0]
                    log(f"{name} load: {percent(done, rows)} — "
                        + ", ".join(f"{a} {counts[a]:,}" for a in ACTIONS if counts[a]))
            except BaseException:
                # a failed batch or an interrupted step (a cancelled run): no queued batch starts; the
                # ones merging finish, each committing whole with its audit rows, or not at all
                for task in merges + tail:
                    task.cancel()
                raise
            if not over_budget.is_set():
                if epilogue is not None:
                    tail.append(executor.submit(on_session, epilogue))
                for task in tail:
                    task.result()
    finally:
        pool.close()
    counts.update(unread)
    if over_budget.is_set():
        raise error_budget.error(conn, entity=name, table=plan.table.qualified, run=run, stream_id=stream_id,
                                 counts=counts)
    if dry_run:
        merger.predict_duplicates(conn)
    else:
        record_summary(conn, run=run, stream_id=stream_id, source_rows=sum(counts.values()), counts=counts,
                       seconds=time.perf_counter() - started)
    return merger, counts, len(ranges)


def set_aside_merged(conn: psycopg.Connection, *, staging: str, run: RunRef, stream_id: int) -> Counter[str]:
    """Counts of the staged records an earlier attempt already merged, set aside so they are not merged again.

    A load step retried, or re-executed from failure on its parent run's staging table, finds the
    batches the interrupted attempt committed by their audit rows (they commit together): those
    of this stream written by the runs of the group since the run that staged the table. Their
    row numbers are negated: outside every batch range, still in the table for what reads it
    whole (the duplicates' states, a records entity's epilogue). A committed record without an
    audit row was unchanged and is merged again, unchanged again. Returns the earlier attempts'
    counts by action (empty for a first attempt: one probe of the audit).
    """
    table = ident("import_control", staging)
    earlier = sql.SQL(
        "FROM {control}.audit_records AS a JOIN {control}.runs AS r ON r.run_seq = a.run_seq AND r.run_day = a.run_day"
        " WHERE r.run_group = %(group)s AND a.stream_id = %(stream)s AND a.record_no > 0 AND r.run_seq >= (SELECT"
        " c.run_seq FROM {control}.staging_tables AS t JOIN {control}.runs AS c USING (run_id) WHERE t.name = %(name)s)"
    ).format(control=CONTROL)
    params = {"group": run.run_group, "stream": stream_id, "name": staging}
    counts = Counter(dict(conn.execute(sql.SQL("SELECT a.action, count(*) {} GROUP BY a.action").format(earlier),
                                       params).fetchall()))
    if counts:
        with conn.transaction():
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN _rn SET GENERATED BY DEFAULT").format(table))
            conn.execute(sql.SQL("UPDATE {} AS s SET _rn = -s._rn WHERE s._rn IN (SELECT a.record_no {})").format(
                table, earlier), params)
    return counts


def record_duplicate_states(conn: psycopg.Connection, *, staging: str, stream_id: int, run_seq: int,
                            source_id: sql.Composable) -> int:
    """Point each duplicate's source id at the target row its survivor became (for references).

    Its own hash is kept too, so a sync's key pass can tell an unchanged duplicate from a changed
    one (the merge never calls a duplicate unchanged: it is skipped in favour of its survivor).
    """
    cur = conn.execute(sql.SQL(
        "INSERT INTO {control}.record_state (stream_id, source_id, target_id, source_hash, duplicate_of, run_seq)"
        " SELECT {stream}, {sid}, COALESCE(sv.target_id, s._match_tid), s._hash, s._dup_of, {run} FROM {staging} AS s"
        " LEFT JOIN {control}.record_state AS sv ON sv.stream_id = {stream} AND sv.source_id = s._dup_of"
        " WHERE s._dup_of IS DISTINCT FROM {sid} AND s._error IS NULL"
        " AND COALESCE(sv.target_id, s._match_tid) IS NOT NULL AND s._dup_of IS NOT NULL"
        " ON CONFLICT (stream_id, source_id) DO UPDATE SET target_id = EXCLUDED.target_id,"
        " source_hash = EXCLUDED.source_hash, duplicate_of = EXCLUDED.duplicate_of, run_seq = EXCLUDED.run_seq"
        # an unchanged duplicate keeps its state row as it is: a re-run rewrites nothing
        " WHERE (record_state.target_id, record_state.source_hash, record_state.duplicate_of)"
        " IS DISTINCT FROM (EXCLUDED.target_id, EXCLUDED.source_hash, EXCLUDED.duplicate_of)").format(
        control=CONTROL, stream=sql.Literal(stream_id), run=sql.Literal(run_seq), sid=source_id,
        staging=ident("import_control", staging)))
    return cur.rowcount
