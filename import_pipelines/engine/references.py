"""Whether a merge may check its references set-based instead of through the per-row FK triggers.

A foreign key is enforced by a trigger that runs, for every inserted row, a one-row query that
finds the referenced row and locks it ``FOR KEY SHARE``, so it cannot be deleted before the
inserting transaction commits: an executor start-up, an index probe and a lock per row and key.

The merge already resolves every reference by a join in the same statement, so it can do the
trigger's work for the whole batch at once: lock the distinct referenced rows ``FOR KEY SHARE``
and count them (:class:`~import_pipelines.engine.merge.Merger`). With the count equal to the
number of distinct ids written, each row the batch points at existed and is locked until
commit, which is exactly what the triggers guarantee; the batch then runs with
``session_replication_role = replica`` (transaction-local), the setting logical replication
applies rows with, which skips the triggers.

Only where that skips nothing else: :func:`set_based_check_refusal` refuses (and the triggers
run as usual) when the table is not a plain one (a partitioned table's partitions may carry
triggers it does not list), has triggers or rules of its own, when a foreign key covers a
column the import writes from a plain field rather than a reference, when a key the import
updates is referenced by another table, or when the role may not set the parameter.
"""

from __future__ import annotations

import psycopg

from import_pipelines.engine.plan import MergePlan

_CATALOGUE = """
WITH rel AS (SELECT format('%%I.%%I', %(schema)s::text, %(table)s::text)::regclass AS oid),
fk AS (
  SELECT c.conname, c.conrelid, c.confrelid, rn.nspname AS ref_schema, rc.relname AS ref_table,
         (SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY AS k(num, n)
          JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.num) AS columns,
         (SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY AS k(num, n)
          JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.num) AS ref_columns
  FROM pg_constraint AS c JOIN pg_class AS rc ON rc.oid = c.confrelid JOIN pg_namespace AS rn ON rn.oid = rc.relnamespace
  WHERE c.contype = 'f' AND (c.conrelid = (SELECT oid FROM rel) OR c.confrelid = (SELECT oid FROM rel)))
SELECT
  (SELECT c.relkind::text FROM pg_class AS c WHERE c.oid = (SELECT oid FROM rel)),
  (SELECT array_agg(t.tgname::text ORDER BY t.tgname) FROM pg_trigger AS t
     LEFT JOIN pg_constraint AS c ON c.oid = t.tgconstraint
    WHERE t.tgrelid = (SELECT oid FROM rel) AND NOT (t.tgisinternal AND c.contype IS NOT DISTINCT FROM 'f')),
  (SELECT array_agg(r.rulename::text ORDER BY r.rulename) FROM pg_rewrite AS r WHERE r.ev_class = (SELECT oid FROM rel)),
  (SELECT coalesce(json_agg(json_build_object('name', conname, 'ref_schema', ref_schema, 'ref_table', ref_table,
                                              'columns', columns, 'ref_columns', ref_columns)), '[]')
     FROM fk WHERE conrelid = (SELECT oid FROM rel)),
  (SELECT coalesce(json_agg(json_build_object('name', conname, 'columns', ref_columns)), '[]')
     FROM fk WHERE confrelid = (SELECT oid FROM rel))
"""


def set_based_check_refusal(conn: psycopg.Connection, plan: MergePlan) -> str | None:
    """``None`` when the merge of ``plan`` may check its references set-based; otherwise why not."""
    role, allowed = conn.execute(
        "SELECT current_user, has_parameter_privilege('session_replication_role', 'SET')"
        if conn.info.server_version >= 150000 else "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if not allowed:
        return f"role {role!r} may not set session_replication_role"
    table = plan.table
    kind, triggers, rules, outgoing, incoming = conn.execute(
        _CATALOGUE, {"schema": table.schema, "table": table.name}).fetchone()
    if kind != "r":  # a partition may carry triggers of its own that its parent does not list
        return f"{table.qualified} is not a plain table (relkind {kind!r})"
    if triggers:
        return f"{table.qualified} has triggers of its own ({', '.join(triggers)})"
    if rules:
        return f"{table.qualified} has rules ({', '.join(rules)})"
    checked = {ref.columns: ref for ref in plan.refs}
    inserted = {*table.row_key, *plan.written_columns}
    for fk in outgoing:
        columns = set(fk["columns"])
        ref = checked.get(tuple(fk["columns"]))
        if ref is not None and (fk["ref_schema"], fk["ref_table"]) == (ref.table.schema, ref.table.name) \
                and tuple(fk["ref_columns"]) == ref.ref_columns:
            continue  # the merge resolves and locks what this key points at
        if columns & inserted:
            return f"foreign key {fk['name']} covers {', '.join(sorted(columns & inserted))}, written from a field"
        if any(table.columns[c].has_default for c in columns if c in table.columns):
            return f"foreign key {fk['name']} covers a column with a default, which an insert would fill unchecked"
    keys = {v.column for v in plan.key}
    updated = {*(v.column for v in plan.values), *(c for ref in plan.refs for c in ref.columns), *plan.touch} - keys
    for fk in incoming:
        if updated & set(fk["columns"]):
            return (f"foreign key {fk['name']} references {', '.join(sorted(updated & set(fk['columns'])))},"
                    " which the import updates")
    return None
