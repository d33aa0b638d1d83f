"""Late-seeding: resolve the references deferred during load, by natural key, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from import_pipelines.db.connect import connection
from import_pipelines.db.sql import ident
from import_pipelines.control import ensure_control_schema
from import_pipelines.load.target import read_target_tables
from import_pipelines.templates.model import Template


@dataclass(frozen=True)
class LateSeedOutcome:
    """How many deferred references were resolved, and how many were not (each recorded as an error)."""

    resolved: int
    unresolved: int


def resolve_pending(url: str, *, template: Template, profile: str, run_id: str, source_system: str) -> LateSeedOutcome:
    """Fill every pending reference of ``run_id``; record the unresolvable ones in ``import_errors``.

    Runs as one transaction: either every resolvable reference is written and the pending rows
    are cleared, or (on an error) the target is left as it was before this phase.
    """
    nk = template.natural_key
    resolved = unresolved = 0
    with connection(url) as conn:
        ensure_control_schema(conn)
        with conn.transaction():
            groups = conn.execute("SELECT DISTINCT entity, column_name, ref_entity FROM import_control.pending_references"
                                  " WHERE run_id = %s AND profile = %s", (run_id, profile)).fetchall()
            for entity, column, ref_entity in groups:
                tables = read_target_tables(conn, schema=template.target_schema, tables=[
                    template.entities[entity].target, template.entities[ref_entity].target])
                table = tables[template.entities[entity].target]
                ref = tables[template.entities[ref_entity].target]
                names = dict(t=ident(table.schema, table.name), pk=ident(table.primary_key), col=ident(column),
                             pk_type=sql.SQL(table.columns[table.primary_key].type), r=ident(ref.schema, ref.name),
                             rpk=ident(ref.primary_key), sys=ident(nk.system_column), idc=ident(nk.id_column))
                args = (source_system, run_id, profile, entity, column)
                cur = conn.execute(sql.SQL(
                    "UPDATE {t} AS t SET {col} = r.{rpk} FROM import_control.pending_references AS p"
                    " JOIN {r} AS r ON r.{sys} = %s AND r.{idc} = p.ref_key"
                    " WHERE p.run_id = %s AND p.profile = %s AND p.entity = %s AND p.column_name = %s"
                    " AND t.{pk} = (p.target_id)::{pk_type}").format(**names), args)
                resolved += cur.rowcount
                cur = conn.execute(sql.SQL(
                    "INSERT INTO import_control.import_errors (run_id, profile, entity, source_id, stage, field, message)"
                    " SELECT p.run_id, p.profile, p.entity, p.source_id, 'late_seed', p.column_name,"
                    " format('%%s: no %%s with %%s %%s; left empty', p.column_name, p.ref_entity, {idname}, p.ref_key)"
                    " FROM import_control.pending_references AS p"
                    " WHERE p.run_id = %s AND p.profile = %s AND p.entity = %s AND p.column_name = %s"
                    " AND NOT EXISTS (SELECT 1 FROM {r} AS r WHERE r.{sys} = %s AND r.{idc} = p.ref_key)").format(
                    idname=sql.Literal(nk.id_column), **names), (run_id, profile, entity, column, source_system))
                unresolved += cur.rowcount
            conn.execute("DELETE FROM import_control.pending_references WHERE run_id = %s AND profile = %s",
                         (run_id, profile))
    return LateSeedOutcome(resolved=resolved, unresolved=unresolved)
