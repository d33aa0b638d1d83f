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
