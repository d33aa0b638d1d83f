"""Runs, streams and the run summary: the audit's frame around the per-record rows.

Every run that imports something is a row in ``import_control.runs`` (its ``run_seq`` is what
audit rows carry), every (profile, entity) a row in ``import_control.streams``. The merge writes
one ``audit_records`` row per record it created, updated, skipped or failed; the load writes one
``run_summaries`` row per run and stream with every count, unchanged included, so a sync that
changed nothing adds one row, not one per source record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class RunRef:
    """A registered run: its sequence number, the day its audit rows are filed under, its group."""

    run_id: str
    run_seq: int
    run_day: object  # datetime.date
    run_group: str


def register_run(conn: psycopg.Connection, *, run_id: str, profile: str, run_group: str | None = None,
                 retention_days: int | None = None) -> RunRef:
    """The run's row in ``import_control.runs`` (created on first use) and today's audit partition.

    Idempotent: every step of a run calls it, in whatever process. ``run_group`` is the run this
    one re-executes (Dagster's root run id); it defaults to the run itself. ``retention_days`` is
    how long the profile keeps its per-record audit (:mod:`import_pipelines.control.retention`).
    """
    with conn.transaction():
        row = conn.execute("SELECT run_seq, run_day, run_group FROM import_control.runs WHERE run_id = %s",
                           (run_id,)).fetchone()
        if row is None:
            # partitions are created under the control schema's lock: two runs starting on a new
            # day would otherwise race to create the same one
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('import_control.ddl'))")
            row = conn.execute(
                "INSERT INTO import_control.runs (run_id, run_group, profile) VALUES (%s, %s, %s)"
                " ON CONFLICT (run_id) DO UPDATE SET run_id = EXCLUDED.run_id RETURNING run_seq, run_day, run_group",
                (run_id, run_group or run_id, profile)).fetchone()
            conn.execute("SELECT import_control.audit_partition(%s)", (row[1],))
            from import_pipelines.control.retention import DEFAULT_RETENTION_DAYS, record_profile

            record_profile(conn, profile=profile, retention_days=retention_days or DEFAULT_RETENTION_DAYS)
    return RunRef(run_id=run_id, run_seq=row[0], run_day=row[1], run_group=row[2])


def register_stream(conn: psycopg.Connection, *, profile: str, entity: str, target_table: str,
                    source: str | None = None) -> int:
    """The stream id of (profile, entity), created on first use; its target and source kept current."""
    with conn.transaction():
        return conn.execute(
            "INSERT INTO import_control.streams (profile, entity, target_table, source) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (profile, entity) DO UPDATE SET target_table = EXCLUDED.target_table,"
            " source = coalesce(EXCLUDED.source, streams.source) RETURNING stream_id",
            (profile, entity, target_table, source)).fetchone()[0]


def stream_ids(conn: psycopg.Connection, profile: str) -> dict[str, int]:
    """Every registered stream of ``profile`` by entity name."""
    return dict(conn.execute("SELECT entity, stream_id FROM import_control.streams WHERE profile = %s",
                             (profile,)).fetchall())


def record_summary(conn: psycopg.Connection, *, run: RunRef, stream_id: int, source_rows: int,
                   counts: Mapping[str, int], seconds: float | None = None) -> None:
    """Write (or, for a retried step, replace) what the run did to one stream, and commit: never
    inside a ``conn.transaction()`` block, where psycopg refuses a commit."""
    conn.execute(
        "INSERT INTO import_control.run_summaries (run_seq, stream_id, source_rows, created, updated, unchanged,"
        " skipped, failed, seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (run_seq, stream_id) DO UPDATE SET source_rows = EXCLUDED.source_rows,"
        " created = EXCLUDED.created, updated = EXCLUDED.updated, unchanged = EXCLUDED.unchanged,"
        " skipped = EXCLUDED.skipped, failed = EXCLUDED.failed, seconds = EXCLUDED.seconds, recorded_at = now()",
        (run.run_seq, stream_id, source_rows, counts.get("created", 0), counts.get("updated", 0),
         counts.get("unchanged", 0), counts.get("skipped", 0), counts.get("failed", 0), seconds))
    conn.commit()


def record_failure(conn: psycopg.Connection, *, run: RunRef, stream_id: int, record_no: int, message: str) -> None:
    """One ``failed`` audit row for a record that never reached staging (a line COPY could not parse)."""
    conn.execute("INSERT INTO import_control.audit_records (run_seq, stream_id, record_no, action, error, run_day)"
                 " VALUES (%s, %s, %s, 'failed', %s, %s)", (run.run_seq, stream_id, record_no, message, run.run_day))
