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
    """Import records (or, for a dry run, predictions) of one run by action."""
    table = "dry_run_records" if dry_run else "import_records"
    with connection(url) as conn:
        rows = conn.execute(sql.SQL("SELECT action, count(*) FROM import_control.{}"
                                    " WHERE run_id = %s AND profile = %s AND entity = %s GROUP BY action").format(
            sql.Identifier(table)), (run_id, profile, entity)).fetchall()
    return {action: count for action, count in rows}


def unresolved_references(url: str, *, profile: str, entity: str, run_id: str) -> int:
    """Records of one run loaded with an optional reference left empty (their error says which)."""
    with connection(url) as conn:
        return conn.execute("SELECT count(*) FROM import_control.import_records WHERE run_id = %s AND profile = %s"
                            " AND entity = %s AND action IN ('created', 'updated') AND error IS NOT NULL",
                            (run_id, profile, entity)).fetchone()[0]
