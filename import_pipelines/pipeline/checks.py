"""Set-based checks on a loaded entity (used by the asset checks)."""

from __future__ import annotations

from psycopg import sql

from import_pipelines.db.connect import connection
from import_pipelines.db.sql import ident
from import_pipelines.templates.model import Template


def duplicate_natural_keys(url: str, *, template: Template, entity: str, source_system: str) -> int:
    """How many natural keys occur more than once in the entity's target table."""
    nk = template.natural_key
    table = ident(template.target_schema, template.entities[entity].target)
    with connection(url) as conn:
        return conn.execute(sql.SQL(
            "SELECT count(*) FROM (SELECT 1 FROM {t} WHERE {sys} = %s AND {id} IS NOT NULL GROUP BY {id}"
            " HAVING count(*) > 1) AS d").format(t=table, sys=ident(nk.system_column), id=ident(nk.id_column)),
            (source_system,)).fetchone()[0]


def reconcile(url: str, *, profile: str, entity: str, run_id: str, dry_run: bool = False) -> dict[str, int]:
    """What one run did to one entity, by action (unchanged included); for a dry run, its predictions."""
    with connection(url) as conn:
        if dry_run:
            rows = conn.execute("SELECT action, count(*) FROM import_control.dry_run_records"
                                " WHERE run_id = %s AND profile = %s AND entity = %s GROUP BY action",
                                (run_id, profile, entity)).fetchall()
            return {action: count for action, count in rows}
        row = conn.execute(
            "SELECT m.created, m.updated, m.unchanged, m.skipped, m.failed FROM import_control.run_summaries AS m"
            " JOIN import_control.runs AS r USING (run_seq) JOIN import_control.streams AS s USING (stream_id)"
            " WHERE r.run_id = %s AND s.profile = %s AND s.entity = %s", (run_id, profile, entity)).fetchone()
    if row is None:
        return {}
    return {action: count for action, count in zip(("created", "updated", "unchanged", "skipped", "failed"), row)
            if count}


def unresolved_references(url: str, *, profile: str, entity: str, run_id: str) -> int:
    """Records of one run loaded with an optional reference left empty (their error says which)."""
    with connection(url) as conn:
        return conn.execute("SELECT count(*) FROM import_control.import_records WHERE run_id = %s AND profile = %s"
                            " AND entity = %s AND action IN ('created', 'updated') AND error IS NOT NULL",
                            (run_id, profile, entity)).fetchone()[0]


def record_source_count(conn, *, run_seq: int, stream_id: int, rows: int, how: str) -> None:
    """Keep how many rows the entity's source returned in this run (``snapshot``: the source server's
    count in the extract's own snapshot; ``read``: records a record source yielded)."""
    conn.execute("INSERT INTO import_control.source_counts (run_seq, stream_id, source_rows, how)"
                 " VALUES (%s, %s, %s, %s) ON CONFLICT (run_seq, stream_id) DO UPDATE SET"
                 " source_rows = EXCLUDED.source_rows, how = EXCLUDED.how, counted_at = now()",
                 (run_seq, stream_id, rows, how))
    if not conn.autocommit:
        conn.commit()


RECORDED_ACTIONS = ("created", "updated", "skipped", "failed", "rolled_back")


def reconciliation(url: str, *, profile: str, entity: str, run_id: str) -> dict[str, int | str | bool] | None:
    """The run's source count against what it recorded for the entity; None when nothing was counted.

    Two sides: the rows the source query returned (counted on the source in the extract's snapshot)
    and the run's outcome: one audit row per record created, updated, skipped or failed (a created
    row the late seed removed is ``rolled_back``), plus the unchanged ones, which the run summary
    counts instead of writing a row each. ``passed`` also needs the run summary to agree, in total
    and action by action, so a lost audit row, an altered count and a changed action all fail.
    """
    with connection(url) as conn:
        row = conn.execute(
            "SELECT c.source_rows, c.how, r.run_seq, r.run_day, s.stream_id, m.created, m.updated, m.unchanged,"
            " m.skipped, m.failed FROM import_control.runs AS r JOIN import_control.streams AS s"
            " ON s.profile = %s AND s.entity = %s"
            " JOIN import_control.source_counts AS c ON c.run_seq = r.run_seq AND c.stream_id = s.stream_id"
            " LEFT JOIN import_control.run_summaries AS m ON m.run_seq = r.run_seq AND m.stream_id = s.stream_id"
            " WHERE r.run_id = %s", (profile, entity, run_id)).fetchone()
        if row is None:
            return None
        source_rows, how, run_seq, run_day, stream_id, *summary = row
        audit = dict(conn.execute(
            "SELECT action, count(*) FROM import_control.audit_records WHERE run_day = %s AND run_seq = %s"
            " AND stream_id = %s AND action = ANY(%s) GROUP BY action",
            (run_day, run_seq, stream_id, list(RECORDED_ACTIONS))).fetchall())
    summary_counts = dict(zip(("created", "updated", "unchanged", "skipped", "failed"),
                              (v or 0 for v in summary))) if summary[0] is not None else {}
    recorded = sum(audit.values()) + summary_counts.get("unchanged", 0)
    summary_total = sum(summary_counts.values())
    # action by action too; a written row later rolled back (late seed, rollback) was created or updated
    agree = bool(summary_counts) and all(audit.get(a, 0) == summary_counts[a] for a in ("skipped", "failed")) and (
        audit.get("created", 0) + audit.get("updated", 0) + audit.get("rolled_back", 0)
        == summary_counts["created"] + summary_counts["updated"])
    return {"source_rows": source_rows, "counted": how, "recorded": recorded, "summary_total": summary_total,
            **{f"audit_{a}": audit.get(a, 0) for a in RECORDED_ACTIONS},
            "unchanged": summary_counts.get("unchanged", 0), "actions_agree": agree,
            "passed": agree and source_rows == recorded == summary_total}


def references_after_late_seed(url: str, *, profile: str, entity: str, run_id: str) -> dict[str, int]:
    """What the run group left unresolved for the entity once the late seed ran.

    ``unresolved``: references the late seed could not resolve (``import_errors``, stage
    ``late_seed``) and deferred ones still pending; ``left_empty``: optional references loaded
    empty because the referenced record is missing (their audit error says which).
    """
    with connection(url) as conn:
        errors = conn.execute("SELECT count(*) FROM import_control.import_errors WHERE run_id = %s AND profile = %s"
                              " AND entity = %s AND stage = 'late_seed'", (run_id, profile, entity)).fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM import_control.pending_references AS p JOIN import_control.streams AS s"
            " USING (stream_id) WHERE s.profile = %s AND s.entity = %s AND p.run_group ="
            " (SELECT run_group FROM import_control.runs WHERE run_id = %s)", (profile, entity, run_id)).fetchone()[0]
    return {"unresolved": errors, "still_pending": pending,
            "left_empty": unresolved_references(url, profile=profile, entity=entity, run_id=run_id)}


def validation_results(url: str, *, profile: str, entity: str, run_id: str) -> list[dict]:
    """The run's validation summary for the entity, per expectation (empty when it was not validated)."""
    with connection(url) as conn:
        rows = conn.execute(
            "SELECT v.position, v.expectation, v.fields, v.engine, v.evaluated, v.failed, v.seconds"
            " FROM import_control.validation_results AS v JOIN import_control.runs AS r USING (run_seq)"
            " JOIN import_control.streams AS s USING (stream_id)"
            " WHERE r.run_id = %s AND s.profile = %s AND s.entity = %s ORDER BY v.position",
            (run_id, profile, entity)).fetchall()
    return [dict(zip(("position", "expectation", "fields", "engine", "evaluated", "failed", "seconds"), r))
            for r in rows]


def counted_source_rows(url: str, *, profile: str, entity: str, run_id: str) -> int | None:
    """The rows the entity's source returned in the run (:func:`record_source_count`), if counted."""
    with connection(url) as conn:
        row = conn.execute(
            "SELECT c.source_rows FROM import_control.source_counts AS c JOIN import_control.runs AS r USING (run_seq)"
            " JOIN import_control.streams AS s USING (stream_id) WHERE r.run_id = %s AND s.profile = %s"
            " AND s.entity = %s", (run_id, profile, entity)).fetchone()
    return row[0] if row else None
