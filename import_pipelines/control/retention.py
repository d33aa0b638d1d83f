"""Bounded growth of the control schema: the per-record audit expires, the summaries stay.

``audit_records`` is partitioned by the day a run started. A partition older than the longest
retention of any profile is dropped whole (no row-by-row delete, no bloat); a profile that keeps
its detail for a shorter time has its older rows deleted from the partitions still kept. A
run's before-images live in its audit rows, so a run can be rolled back exactly as long as its
partition exists. Run summaries (every count, unchanged included) and the runs themselves are
kept for ever: the history of every import stays answerable. Scratch that only grows —
``pending_references`` of run groups that never reached their late seed, ``dry_run_records``,
``webhook_deliveries`` — is pruned by age.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from import_pipelines.db.sql import ident

DEFAULT_RETENTION_DAYS = 90
SCRATCH_DAYS = 30
_PARTITION = re.compile(r"^audit_records_(\d{8})$")


@dataclass
class RetentionOutcome:
    """What a retention run removed (or, for a dry run, would remove)."""

    dropped_partitions: list[str] = field(default_factory=list)
    deleted_rows: dict[str, int] = field(default_factory=dict)  # profile -> audit rows deleted
    pruned_scratch: int = 0


def record_profile(conn: psycopg.Connection, *, profile: str, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
    """Remember how long ``profile`` keeps its per-record audit (called with every run)."""
    conn.execute("INSERT INTO import_control.profiles (profile, retention_days) VALUES (%s, %s)"
                 " ON CONFLICT (profile) DO UPDATE SET retention_days = EXCLUDED.retention_days, updated_at = now()"
                 " WHERE profiles.retention_days <> EXCLUDED.retention_days", (profile, retention_days))


def audit_partitions(conn: psycopg.Connection) -> dict[str, dt.date]:
    """The audit's partitions by name, with the day each holds."""
    rows = conn.execute("SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
                        " WHERE i.inhparent = 'import_control.audit_records'::regclass").fetchall()
    return {name: dt.datetime.strptime(match.group(1), "%Y%m%d").date()
            for (name,) in rows if (match := _PARTITION.match(name))}


def apply_retention(conn: psycopg.Connection, *, today: dt.date | None = None,
                    dry_run: bool = False) -> RetentionOutcome:
    """Drop expired audit partitions, delete rows past a shorter profile retention, prune scratch.

    One transaction; with ``dry_run`` nothing is changed and the outcome says what would be.
    """
    today = today or dt.date.today()
    outcome = RetentionOutcome()
    with conn.transaction():
        retention = dict(conn.execute("SELECT profile, retention_days FROM import_control.profiles").fetchall())
        longest = max(retention.values(), default=DEFAULT_RETENTION_DAYS)
        for name, day in sorted(audit_partitions(conn).items(), key=lambda item: item[1]):
            if day < today - dt.timedelta(days=longest):
                outcome.dropped_partitions.append(name)
                if not dry_run:
                    conn.execute(sql.SQL("DROP TABLE {}").format(ident("import_control", name)))
        for profile, days in sorted(retention.items()):
            if days >= longest:
                continue
            # rows of the partitions kept (those older are in the partitions dropped above)
            query = sql.SQL(
                "{} FROM import_control.audit_records WHERE run_day < %s AND run_day >= %s AND stream_id IN"
                " (SELECT stream_id FROM import_control.streams WHERE profile = %s)").format(
                sql.SQL("SELECT count(*)") if dry_run else sql.SQL("DELETE"))
            cur = conn.execute(query, (today - dt.timedelta(days=days), today - dt.timedelta(days=longest), profile))
            count = cur.fetchone()[0] if dry_run else cur.rowcount
            if count:
                outcome.deleted_rows[profile] = count
        outcome.pruned_scratch = sum(prune_scratch(conn, before=today - dt.timedelta(days=SCRATCH_DAYS),
                                                   dry_run=dry_run).values())
    return outcome


# control tables that only grow, and the column that dates their rows
SCRATCH_TABLES = {"pending_references": "recorded_at", "dry_run_records": "created_at",
                  "webhook_deliveries": "recorded_at"}


def prune_scratch(conn: psycopg.Connection, *, before: dt.date | dt.datetime, dry_run: bool = False) -> dict[str, int]:
    """Delete scratch rows dated before ``before``: the pending references of run groups that never
    reached their late seed, the predictions of dry runs, the records of sent notifications. Rows deleted (or, dry, that would be) per table."""
    pruned = {}
    for table, column in SCRATCH_TABLES.items():
        query = sql.SQL("{} FROM {} WHERE {} < %s").format(
            sql.SQL("SELECT count(*)") if dry_run else sql.SQL("DELETE"), ident("import_control", table), ident(column))
        cur = conn.execute(query, (before,))
        pruned[table] = cur.fetchone()[0] if dry_run else cur.rowcount
    return pruned
